"""Searches in this process on tiny models: callbacks, failed trials,
Hyperband epochs and the options (issue 4)."""

import json
import re

import keras
import numpy as np
import pytest
import tensorflow as tf

from tuner import RegNetHyperModel, SearchStopped, build_tuner
from tuner.data import describe_dataset, load_dataset
from tuner.trials import read_trials_csv

# Tiny RegNets on the 8x8 digits: a trial takes a few seconds.
TINY = dict(depth=(1, 3), w0=(8, 16), wa=(8.0, 16.0), group_width=(4, 8))


@pytest.fixture(scope="module")
def digits():
    return load_dataset(describe_dataset("digits", image_size=8), batch_size=64)


class Recorder(keras.callbacks.Callback):
    """Appends the epochs fit runs to a JSON-lines file (callbacks are deep-copied)."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_begin(self, epoch, logs=None):
        with open(self.path, "a") as f:
            f.write(json.dumps({"epoch": epoch, "of": self.params["epochs"]}) + "\n")


class FlakyHyperModel(RegNetHyperModel):
    """Trial 2 gets NaN inputs, trial 3 raises, the others train normally."""

    fits = 0

    def fit(self, hp, model, x, *args, **kwargs):
        FlakyHyperModel.fits += 1
        if self.fits == 2:
            x = x.map(lambda image, label: (image * np.nan, label))
        if self.fits == 3:
            raise RuntimeError("simulated out of memory")
        return super().fit(hp, model, x, *args, **kwargs)


def test_callbacks_reach_fit_and_failed_trials_are_recorded(tmp_path, digits):
    log = tmp_path / "epochs.jsonl"
    FlakyHyperModel.fits = 0
    hypermodel = FlakyHyperModel(digits.info.input_shape, 10, **TINY)
    search = build_tuner(
        hypermodel, "random", max_trials=4, seed=0, directory=str(tmp_path),
        project_name="p", distribution_strategy=tf.distribute.OneDeviceStrategy("/cpu:0"))
    # No gain in accuracy exceeds min_delta=2: EarlyStopping stops every trial
    # after two epochs (Keras never stops after the first).
    stop = keras.callbacks.EarlyStopping("val_accuracy", min_delta=2.0, patience=0)
    search.search(digits.train, validation_data=digits.val, epochs=3,
                  callbacks=[Recorder(str(log)), stop], verbose=0)

    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED", "FAILED", "FAILED", "COMPLETED"]
    assert re.fullmatch(r"FailedTrialError: (Loss|Weights) became nan .*",
                        rows[1]["message"], re.IGNORECASE)
    assert rows[2]["message"] == "RuntimeError: simulated out of memory"
    # Three trials reached fit with the user's callbacks: EarlyStopping ended
    # the good ones after two of three epochs, the divergence check the NaN one
    # within its first epoch.
    two, one = [{"epoch": 0, "of": 3}, {"epoch": 1, "of": 3}], [{"epoch": 0, "of": 3}]
    assert [json.loads(line) for line in log.read_text().splitlines()] == two + one + two
    for row in rows[::3]:
        assert row["epochs"] == 2
        assert 0 < row["val_accuracy"] <= 1 and row["error"] == pytest.approx(
            1 - row["val_accuracy"])
        assert row["wall_time_s"] > 0 and row["tuner_id"] == "tuner0"
        assert row["flops"] > 0 and row["params"] > 0 and row["acts"] > 0
        assert row["depths"] and row["widths"]


def test_repeated_failures_stop_with_a_clear_message(tmp_path, digits):
    class Broken(RegNetHyperModel):
        def fit(self, hp, model, *args, **kwargs):
            raise ValueError("bad configuration")

    search = build_tuner(Broken(digits.info.input_shape, 10, **TINY), "random",
                         max_trials=10, max_consecutive_failed_trials=2,
                         directory=str(tmp_path), project_name="p")
    with pytest.raises(SearchStopped, match="2 consecutive trials failed.*"
                       "ValueError: bad configuration"):
        search.search(digits.train, validation_data=digits.val, epochs=1, verbose=0)
    assert len(search.oracle.trials) == 2


def test_hyperband_epochs_and_initial_epoch_are_honoured(tmp_path, digits):
    log = tmp_path / "epochs.jsonl"
    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, **TINY)
    # max_epochs=3, factor 3: three 1-epoch trials, then the best goes on to epoch 3.
    search = build_tuner(hypermodel, "hyperband", max_trials=4, max_epochs=3,
                         seed=0, directory=str(tmp_path), project_name="p")
    search.search(digits.train, validation_data=digits.val, epochs=99,
                  callbacks=[Recorder(str(log))], verbose=0)
    epochs = [json.loads(line) for line in log.read_text().splitlines()]
    assert epochs == [{"epoch": 0, "of": 1}] * 3 + [{"epoch": 1, "of": 3},
                                                     {"epoch": 2, "of": 3}]
    rows = read_trials_csv(tmp_path / "p" / "trials.csv")
    assert [r["epochs"] for r in rows] == [1, 1, 1, 2]
    best_first = max(rows[:3], key=lambda r: r["val_accuracy"])
    assert rows[3]["tuner/trial_id"] == int(best_first["trial_id"])
    assert all(r["status"] == "COMPLETED" for r in rows)


def test_cosine_schedule_starts_from_the_learning_rate_hyperparameter(digits):
    """A resumed Hyperband round restores the optimizer's decayed rate from
    its checkpoint; the schedule must still start from the hyperparameter."""
    import keras_tuner

    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, learning_rate=0.2, **TINY)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    model.optimizer.learning_rate = 0.01  # as restored from a checkpoint
    rates = []
    seen = keras.callbacks.LambdaCallback(on_epoch_begin=lambda epoch, logs: rates.append(
        float(model.optimizer.learning_rate)))
    hypermodel.fit(hp, model, digits.train, epochs=2, callbacks=[seen], verbose=0)
    assert rates == pytest.approx([0.2, 0.1])  # cosine over 2 epochs


def test_mixed_precision_and_jit_compile_options(digits):
    # jit_compile's default, "auto", is False on a CPU: ask for True.
    hypermodel = RegNetHyperModel(digits.info.input_shape, 10, mixed_precision=True,
                                  jit_compile=True, **TINY)
    previous = keras.mixed_precision.global_policy()
    try:
        import keras_tuner

        model = hypermodel.build(keras_tuner.HyperParameters())
        assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
        conv = model.get_layer("stem_conv")
        assert conv.compute_dtype == "bfloat16" and conv.variable_dtype == "float32"
        assert model.jit_compile is True
    finally:
        keras.mixed_precision.set_global_policy(previous)
