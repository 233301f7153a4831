"""Budgeted oracles: every proposed trial fits the budget, for all three tuners
(issue 4). The oracles are driven directly, with synthetic scores, so no
model is trained."""

import math
import os

import keras
import pytest

from tuner import AnyNetHyperModel, RegNetHyperModel, build_tuner
from tuner.oracle import TrialStatus

# A budget that rejects most of the paper's space at 32x32 (CIFAR stem).
FLOPS = (10e6, 20e6)


def _hypermodel(**kwargs):
    return RegNetHyperModel((32, 32, 3), 10, flops=FLOPS, **kwargs)


def _drive(oracle, n, score):
    """Creates and ends up to `n` trials; returns the trials that ran."""
    trials = []
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        if trial.status == TrialStatus.IDLE:
            continue
        trials.append(trial)
        oracle.update_trial(trial.trial_id, {"val_accuracy": score(trial)})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return trials


def _resumed_oracle(directory):
    """A new tuner on a saved project reloads the oracle, as `--resume` does."""
    search = build_tuner(_hypermodel(), "random", max_trials=5, seed=0,
                         directory=str(directory), project_name="p")
    search.save()
    return search.oracle


def _score(trial):
    # Prefers ~15 MFLOPs-like configurations, so the GP has a signal.
    v = trial.hyperparameters.values
    return 1.0 / (1.0 + abs(math.log(v["wa"] / 30.0)) + abs(v["depth"] - 16) / 8)


@pytest.mark.parametrize("kind, n, kwargs", [
    ("random", 150, {}),
    ("bayes", 12, {}),
    ("hyperband", 150, {"max_epochs": 9}),
])
def test_every_trial_fits_the_budget(tmp_path, kind, n, kwargs):
    hypermodel = _hypermodel()
    search = build_tuner(hypermodel, kind, max_trials=n, seed=1,
                         directory=str(tmp_path), project_name="p", **kwargs)
    oracle = search.oracle
    if kind == "bayes":
        oracle.num_initial_points = 5
    trials = _drive(oracle, n, _score)
    assert len(trials) >= 12
    flops = [hypermodel.space.complexity(t.hyperparameters.values)["flops"]
             for t in trials]
    assert all(FLOPS[0] <= f <= FLOPS[1] for f in flops)
    # The budget rejected candidates: they were re-drawn, not run.
    assert oracle.draws > oracle.accepted >= len({t.trial_id for t in trials
                                                   if "tuner/trial_id" not in
                                                   t.hyperparameters.values})
    if kind == "hyperband":
        epochs = [t.hyperparameters.values["tuner/epochs"] for t in trials]
        assert set(epochs) == {1, 3, 9}
    else:
        assert len(trials) == n  # GP proposals after the 5 random ones fit too.
    assert oracle.draws >= 100


def test_search_ends_when_every_configuration_in_budget_has_run(tmp_path):
    """Keras Tuner keeps drawing the configurations outside the budget once
    those inside have all run: the space is exhausted, not the budget wrong."""
    fixed = dict(depth=4, w0=16, wa=16.0, wm=2.0, bottleneck_ratio=1)
    widths = (1, 2, 4, 8, 16)
    hypermodel = RegNetHyperModel((32, 32, 3), 10, group_width=widths,
                                  flops=(None, 2.6e6), **fixed)
    inside = [g for g in widths if hypermodel.space.fits(dict(fixed, group_width=g))]
    assert inside == [1, 2, 4]  # 2.27, 2.34, 2.49 MFLOPs; 8 and 16 are over
    search = build_tuner(hypermodel, "random", max_trials=6, seed=0,
                         directory=str(tmp_path), project_name="p")
    search.oracle.max_draws = 200
    trials = _drive(search.oracle, 6, lambda trial: 0.5)
    assert sorted(t.hyperparameters.values["group_width"] for t in trials) == inside
    assert search.oracle.create_trial("tuner0").status == TrialStatus.STOPPED


def test_params_budget_checked_against_built_models(tmp_path):
    params = (50e3, 150e3)
    hypermodel = RegNetHyperModel((16, 16, 1), 10, depth=(2, 8), w0=(8, 64),
                                  wa=(8, 64), params=params)
    search = build_tuner(hypermodel, "random", max_trials=6, seed=0,
                         directory=str(tmp_path), project_name="p")
    trials = _drive(search.oracle, 6, lambda t: 0.5)
    assert len(trials) == 6
    for trial in trials:
        model = hypermodel.build(trial.hyperparameters)
        trainable = sum(math.prod(w.shape) for w in model.trainable_weights)
        assert params[0] <= trainable <= params[1]
        keras.backend.clear_session()


def test_defaults_fit_the_budget(tmp_path):
    hypermodel = _hypermodel(block="Y")
    search = build_tuner(hypermodel, "random", max_trials=1,
                         directory=str(tmp_path), project_name="p")
    values = search.oracle.get_space().values
    assert FLOPS[0] <= hypermodel.space.complexity(values)["flops"] <= FLOPS[1]


def test_bad_hypermodel_arguments_fail_before_any_trial():
    with pytest.raises(ValueError, match=r"Invalid budget flops=\(1, 2\)"):
        RegNetHyperModel((32, 32, 3), 10, flops=(1, 2))
    with pytest.raises(ValueError, match="`input_shape`.*>= 32 with the imagenet stem"):
        RegNetHyperModel((16, 16, 3), 10, stem_type="imagenet")
    with pytest.raises(ValueError, match="`learning_rate`"):
        RegNetHyperModel((32, 32, 3), 10, learning_rate=(0.5, 0.1))
    with pytest.raises(ValueError, match="`block`: 'W'. Expected one of .'X', 'Y', 'Z'"):
        RegNetHyperModel((32, 32, 3), 10, block="W")
    with pytest.raises(ValueError, match=r"`block`: 'Z'. Expected one of \('X', 'Y'\)\.$"):
        AnyNetHyperModel((32, 32, 3), 10, block="Z")
    with pytest.raises(ValueError, match="`bottleneck_ratio`"):
        RegNetHyperModel((32, 32, 3), 10, block="Z", bottleneck_ratio=2)


def test_consecutive_failures_stop_the_search(tmp_path):
    search = build_tuner(_hypermodel(), "random", max_trials=10,
                         max_consecutive_failed_trials=2,
                         directory=str(tmp_path), project_name="p")
    oracle = search.oracle
    for _ in range(2):
        trial = oracle.create_trial("tuner0")
        trial.status = TrialStatus.FAILED
        trial.message = "Traceback ...\nValueError: simulated"
        oracle.end_trial(trial)
    assert oracle.create_trial("tuner0").status == TrialStatus.STOPPED
    assert "2 consecutive trials failed" in oracle.stop_reason
    assert "ValueError: simulated" in oracle.stop_reason


def test_a_trial_whose_process_died_twice_is_failed_on_resume(tmp_path):
    oracle = _resumed_oracle(tmp_path)
    first = oracle.create_trial("tuner0")  # The process dies during this trial...
    oracle = _resumed_oracle(tmp_path)
    second = oracle.create_trial("tuner0")
    # ...which is run again, and dies again.
    assert second.trial_id == first.trial_id
    assert oracle.records[first.trial_id]["attempts"] == 2
    oracle = _resumed_oracle(tmp_path)
    third = oracle.create_trial("tuner0")
    assert third.trial_id != first.trial_id
    assert oracle.trials[first.trial_id].status == TrialStatus.FAILED
    assert "died 2 times" in oracle.trials[first.trial_id].message


def test_a_trial_whose_worker_died_twice_is_failed_across_chief_restarts(tmp_path):
    oracle = _resumed_oracle(tmp_path)
    trial = oracle.create_trial("worker1")
    assert oracle.worker_died("worker2", "no trial") is None
    # The chief restarts the worker, which resumes the trial: a second attempt...
    assert oracle.worker_died("worker1", "crashed").trial_id == trial.trial_id
    assert oracle.trials[trial.trial_id].status == TrialStatus.RUNNING
    assert oracle.records[trial.trial_id]["attempts"] == 2
    # ...saved at once, so a restarted chief knows it.
    assert _resumed_oracle(tmp_path).records[trial.trial_id]["attempts"] == 2
    oracle.worker_died("worker1", "worker1 crashed 2 times running this trial")
    assert oracle.trials[trial.trial_id].status == TrialStatus.FAILED
    assert "worker1" not in oracle.ongoing_trials
    assert "crashed 2 times" in _resumed_oracle(tmp_path).trials[trial.trial_id].message


def test_trials_without_a_wall_time_leave_the_cell_empty(tmp_path):
    """Other workers' running trials have no wall time yet: no `nan` in the
    CSV, and the report's total skips them."""
    import keras_tuner
    from tuner.analysis import summary
    from tuner.trials import read_trials_csv, trial_record, write_trials_csv

    trials = [keras_tuner.engine.trial.Trial(keras_tuner.HyperParameters(),
                                             trial_id=str(i), status=status)
              for i, status in enumerate(["COMPLETED", "RUNNING"])]
    rows = [trial_record(trials[0], {}, {"wall_time_s": 12.345}),
            trial_record(trials[1], {}, {})]
    write_trials_csv(tmp_path / "trials.csv", rows)
    walls = [r["wall_time_s"] for r in read_trials_csv(tmp_path / "trials.csv")]
    assert walls == [12.35, ""]
    assert "12 s of trials" in summary("p", read_trials_csv(tmp_path / "trials.csv"))


def test_state_files_are_replaced_not_rewritten_in_place(tmp_path):
    # A hard link keeps the old file: it changes too if the file is rewritten
    # in place (which a process killed mid-write leaves truncated), and stays
    # as it was if the file is replaced by a rename.
    search = build_tuner(_hypermodel(), "random", max_trials=5, seed=0,
                         directory=str(tmp_path), project_name="p")
    search.save()
    trial = search.oracle.create_trial("tuner0")
    project = tmp_path / "p"
    files = [project / "oracle.json", project / f"trial_{trial.trial_id}" / "trial.json"]
    before = [f.read_text() for f in files]
    for f in files:
        os.link(f, f"{f}.before")
    search.oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
    trial.status = TrialStatus.COMPLETED
    search.oracle.end_trial(trial)
    for f, old in zip(files, before):
        assert f.read_text() != old, f
        assert open(f"{f}.before").read() == old, f
    assert [p.name for p in project.rglob(".*")] == []
    reloaded = _resumed_oracle(tmp_path)
    assert reloaded.trials[trial.trial_id].score == 0.5
    assert reloaded.records[trial.trial_id]["attempts"] == 1


def test_summary_lists_the_best_trials_by_error():
    from tuner.analysis import summary

    errors = [0.30, 0.10, 0.50, 0.20, 0.05, 0.40, 0.15]
    rows = [dict(trial_id=str(i), status="COMPLETED", error=e, depth=13, w0=24,
                 wa=36.0, wm=2.5, bottleneck_ratio=1, group_width=8, flops=2e8,
                 params=3e6, epochs=1, wall_time_s=1.0) for i, e in enumerate(errors)]
    rows.append(dict(trial_id="7", status="FAILED", message="out of memory"))
    text = summary("run", rows, top=3).splitlines()
    assert text[0] == "run: 8 trials, 7 completed, 1 failed, 7 s of trials"
    assert "best 5.00, median 20.00, worst 50.00; the best 3" in text[1]
    listed = [line.split()[:2] for line in text[3:6]]
    assert listed == [["4", "5.00"], ["1", "10.00"], ["6", "15.00"]]
    assert text[6] == "  failed trial 7: out of memory"
