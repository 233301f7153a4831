"""The design spaces in the tuner: AnyNetX A-E and RegNet through the same
oracles, hypermodels and trials.csv; stock Keras Tuner tuners; the user's
learning-rate schedule (issues 14 and 15)."""

import keras
import keras_tuner
import numpy as np
import pytest

from keras_regnet.design import design_space, fit_regnet
from tuner import AnyNetHyperModel, RegNetHyperModel, build_tuner
from tuner.data import describe_dataset, load_dataset
from tuner.oracle import TrialStatus
from tuner.trials import read_trials_csv

ANYNET = ("anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e")
# Accepts 2-8 % of the AnyNetX draws at 32x32: the constraints are tested,
# not the rejection rate.
BUDGET = dict(flops=(None, 100e6), params=(None, 5e6))


def _drive(oracle, n):
    trials = []
    for _ in range(n):
        trial = oracle.create_trial("tuner0")
        if trial.status == TrialStatus.STOPPED:
            break
        trials.append(trial)
        oracle.update_trial(trial.trial_id, {"val_accuracy": 0.5})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return trials


def _stages(values, name, shared):
    return [values[name]] * 4 if shared else [values[f"{name}_{i}"] for i in range(1, 5)]


@pytest.mark.parametrize("space", ANYNET)
@pytest.mark.parametrize("kind", ["random", "bayes"])
def test_anynet_trials_keep_every_constraint_and_the_budget(tmp_path, space, kind):
    hypermodel = AnyNetHyperModel((32, 32, 1), 10, space, **BUDGET)
    search = build_tuner(hypermodel, kind, max_trials=12, seed=3,
                         directory=str(tmp_path), project_name="p")
    if kind == "bayes":
        search.oracle.num_initial_points = 4
    trials = _drive(search.oracle, 12)
    assert len(trials) == 12
    for trial in trials:
        v = trial.hyperparameters.values
        d = _stages(v, "depth", False)
        w = _stages(v, "width", False)
        b = _stages(v, "bottleneck_ratio", space != "anynetx_a")
        g = _stages(v, "group_width", space not in ("anynetx_a", "anynetx_b"))
        assert all(1 <= x <= 16 for x in d) and all(8 <= x <= 1024 and x % 8 == 0 for x in w)
        assert all((wi // bi) % gi == 0 and wi % bi == 0 for wi, bi, gi in zip(w, b, g))
        if space in ("anynetx_d", "anynetx_e"):
            assert w == sorted(w)
        if space == "anynetx_e":
            assert d == sorted(d)
        cx = hypermodel.space.complexity(v)
        assert cx["flops"] <= 100e6 and cx["params"] <= 5e6
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [r["space"] for r in rows] == [space] * 12
    first = trials[0].hyperparameters.values
    assert rows[0]["depths"] == "-".join(map(str, _stages(first, "depth", False)))
    # e_fit: the RegNet fit of the per-block widths, recomputed here.
    blocks = [w for w, n in zip(_stages(first, "width", False),
                                _stages(first, "depth", False)) for _ in range(n)]
    assert rows[0]["e_fit"] == pytest.approx(fit_regnet(blocks)["e_fit"])


def test_trials_csv_columns(tmp_path):
    hypermodel = AnyNetHyperModel((32, 32, 1), 10, "anynetx_c", **BUDGET)
    search = build_tuner(hypermodel, "random", max_trials=2, seed=0,
                         directory=str(tmp_path), project_name="p")
    _drive(search.oracle, 2)
    header = (tmp_path / "p" / "trials.csv").read_text().splitlines()[0].split(",")
    params = [p.name for p in hypermodel.space.hyperparameters()]
    assert header[:5] == ["trial", "trial_id", "status", "tuner_id", "space"]
    assert header[5:5 + len(params)] == params
    for column in ("depths", "widths", "bottleneck_ratios", "group_widths", "e_fit",
                   "flops", "params", "error", "wall_time_s", "message"):
        assert column in header
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [r["trial"] for r in rows] == [1, 2]  # counted from 1


@pytest.fixture(scope="module")
def digits():
    return load_dataset(describe_dataset("digits", image_size=8), batch_size=64)


TINY = dict(depth=(1, 3), w0=(8, 16), wa=(8.0, 16.0), group_width=(4, 8))


def test_stock_keras_tuner_with_a_budget_spends_no_trial_outside_it(tmp_path, digits):
    """A stock tuner ignores the budget; the hypermodel replaces an
    out-of-budget proposal by an in-budget draw and records it."""
    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, flops=(None, 60e3),
                                  depth=(1, 6), w0=(8, 32), wa=(8.0, 32.0))
    space = hypermodel.space
    rng = np.random.default_rng(0)
    draws = [{k: rng.choice(v) if isinstance(v, tuple) and len(v) > 2 else
              (rng.integers(v[0], v[1] + 1) if isinstance(v[0], int) else rng.uniform(*v))
              for k, v in space.ranges.items()} for _ in range(200)]
    assert np.mean([space.fits(d) for d in draws]) < 0.7  # the budget bites
    search = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy",
                                      max_trials=4, seed=1, directory=str(tmp_path),
                                      project_name="stock")
    search.search(digits.train, validation_data=digits.val, epochs=1, verbose=0)
    trials = list(search.oracle.trials.values())
    assert len(trials) == 4
    for trial in trials:
        assert trial.status == "COMPLETED"
        assert space.fits(trial.hyperparameters.values)


@pytest.mark.parametrize("callback", [
    keras.callbacks.LearningRateScheduler(lambda epoch: 0.03),
    keras.callbacks.ReduceLROnPlateau("loss", factor=0.5, patience=0, min_delta=10),
])
def test_a_users_learning_rate_schedule_wins(digits, callback):
    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, learning_rate=0.2, **TINY)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    rates = []
    seen = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rates.append(
        float(model.optimizer.learning_rate)))
    hypermodel.fit(hp, model, digits.train, epochs=3, callbacks=[callback, seen],
                   verbose=0)
    # ReduceLROnPlateau halves the rate after each epoch from the second on
    # (min_delta=10: no epoch improves); with the cosine schedule still
    # applied at each epoch's start they would read 0.2, 0.075, 0.025.
    expected = ([0.03] * 3 if isinstance(callback, keras.callbacks.LearningRateScheduler)
                else [0.2, 0.1, 0.05])
    assert rates == pytest.approx(expected)


def test_lr_schedule_none_keeps_the_learning_rate(digits):
    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, learning_rate=0.2,
                                  lr_schedule=None, **TINY)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    rates = []
    seen = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: rates.append(
        float(model.optimizer.learning_rate)))
    hypermodel.fit(hp, model, digits.train, epochs=2, callbacks=[seen], verbose=0)
    assert rates == pytest.approx([0.2, 0.2])
    with pytest.raises(ValueError, match="`lr_schedule`"):
        RegNetHyperModel((8, 8, 1), 10, lr_schedule="linear", **TINY)


def test_anynet_hypermodel_builds_the_sampled_network():
    hypermodel = AnyNetHyperModel((32, 32, 1), 10, "anynetx_e", block="Y", **BUDGET)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    spec = hypermodel.space.spec(hp.values)
    assert spec == design_space("anynetx_e", block_type="y", stem_type="cifar",
                                input_size=32, channels=1, classes=10).spec(hp.values)
    built = sum(1 for layer in model.layers if layer.name.endswith("_out"))
    assert built == sum(spec.depths)
    assert any(layer.name.endswith("_se_reduce") for layer in model.layers)
    with pytest.raises(ValueError, match="`space`"):
        AnyNetHyperModel((32, 32, 1), 10, "anynetx_f")
