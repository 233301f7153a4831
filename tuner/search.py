"""The RegNet tuner: a Keras Tuner `Tuner` driven by a budgeted oracle."""

import json
import os
import warnings

import keras
import keras_tuner
import numpy as np
from keras_tuner import oracles as kt_oracles
from keras_tuner.engine.tuner import maybe_distribute

from keras_regnet.design.checks import invalid
from keras_regnet.design.sampling import MAX_DRAWS
from keras_regnet.files import atomic_path, write_json
from tuner import kt_adapter as kt
from tuner.errors import DamagedRun, SearchStopped, WorkerRecycle  # noqa: F401 - public
from tuner.oracle import ORACLES
from tuner.stopping import raise_if_stopped


class RegNetTuner(keras_tuner.Tuner):
    """Runs RegNet trials proposed by one of the oracles of `tuner.oracle`.

    Honours Hyperband's `tuner/epochs` and `tuner/initial_epoch` (continuing
    from the previous round's best checkpoint), reports the epochs actually
    trained (EarlyStopping) next to the best-epoch metrics, and raises
    `SearchStopped` when the oracle gave up after repeated failures.

    Args:
        hypermodel: a `RegNetHyperModel`.
        oracle: an oracle from `tuner.oracle`.
        max_trials_per_process: if set, `search` raises `WorkerRecycle`
            after this many trials, so that a supervisor can replace the
            process (TensorFlow keeps some memory per trial).
        keep_checkpoints: if set, only the checkpoints of the best this
            many completed trials are kept (`get_best_models(n)` needs
            n <= keep_checkpoints); the others are deleted as trials end.
            Hyperband keeps them all: its later rounds continue from them.
        **kwargs: `keras_tuner.Tuner` arguments (`directory`,
            `project_name`, `overwrite`, `distribution_strategy`, ...).
    """

    def __init__(self, hypermodel, oracle, max_trials_per_process=None,
                 keep_checkpoints=None, **kwargs):
        super().__init__(oracle=oracle, hypermodel=hypermodel, **kwargs)
        self.max_trials_per_process = max_trials_per_process
        self.keep_checkpoints = keep_checkpoints
        self.trials_run = 0

    def search(self, *fit_args, **fit_kwargs):
        super().search(*fit_args, **fit_kwargs)
        reason = getattr(self.oracle, "stop_reason", None)
        if reason:
            raise SearchStopped(reason)

    def run_trial(self, trial, *args, **kwargs):
        values = trial.hyperparameters.values
        if "tuner/epochs" in values:
            kwargs["epochs"] = values["tuner/epochs"]
            kwargs["initial_epoch"] = values["tuner/initial_epoch"]
        checkpoint = SaveBestEpochAtEnd(self.oracle.objective,
                                        kt.checkpoint_path(self, trial.trial_id),
                                        include_optimizer=self._hyperband())
        callbacks = kwargs.pop("callbacks", None) or []
        histories = []
        for execution in range(self.executions_per_trial):
            copied = kt.fit_callbacks(self, callbacks, trial, execution)
            copied += [kt.TunerCallback(self, trial), checkpoint]
            try:
                histories.append(kt.build_and_fit(
                    self, trial, *args, **{**kwargs, "callbacks": copied}))
            except OSError as e:  # the machine's fault: the next trial would fail too
                raise kt.fatal(e) from None
        metrics = kt.convert_to_metrics_dict(histories, self.oracle.objective)
        metrics["epochs"] = float(np.mean([len(h.epoch) for h in histories]))
        return metrics

    def _build_hypermodel(self, hp):
        model = super()._build_hypermodel(hp)
        if "tuner/trial_id" in hp.values:
            # A later Hyperband round continues from the earlier round's best
            # epoch; with the optimizer built, its momentum is restored too.
            with maybe_distribute(self.distribution_strategy):
                model.optimizer.build(model.trainable_variables)
                model.load_weights(kt.checkpoint_path(self, hp.values["tuner/trial_id"]))
        return model

    # Keras Tuner rewrites its state file in place, and a kill mid-write
    # left one that `--resume` could not read. Its state is empty; the
    # oracle's (written whole) is what a resumed search needs.
    def save(self):
        write_json(kt.tuner_state_path(self), self.get_state())

    def reload(self):
        if kt.is_worker(self):
            return
        if not os.path.exists(kt.oracle_state_path(self.oracle)):
            # A fault stopped the search before its oracle was first saved:
            # no trial ended, so it starts over.
            if any(s == "COMPLETED" for s in _trial_states(self.project_dir)):
                raise DamagedRun(f"Invalid run: {self.project_dir!r} has completed "
                                 "trials but no oracle.json. Nothing was changed; "
                                 "restore the folder, or start the search anew in "
                                 "another --out.")
            kt.populate_initial_space(self)
            return
        try:
            self.oracle.reload()
        except (ValueError, KeyError, TypeError, AttributeError, IndexError,
                RuntimeError) as e:
            raise DamagedRun(
                f"Invalid run: the Keras Tuner state in {self.project_dir!r} "
                f"(oracle.json, trial_*/trial.json) is damaged: {type(e).__name__}: "
                f"{str(e).splitlines()[0] if str(e) else ''}. Nothing was changed; "
                "restore the folder, or start the search anew in another --out."
            ) from None

    def pre_create_trial(self):
        if self.max_trials_per_process and self.trials_run >= self.max_trials_per_process:
            raise WorkerRecycle()

    def on_trial_end(self, trial):
        super().on_trial_end(trial)
        self.trials_run += 1
        if self.keep_checkpoints and not self._hyperband():
            self._delete_checkpoints(self.keep_checkpoints)

    def _hyperband(self):
        """Whether later trials continue from earlier ones' checkpoints."""
        return isinstance(kt.served_oracle(self.oracle), kt_oracles.HyperbandOracle)

    def load_model(self, trial):
        # Checkpoints hold no optimizer state outside Hyperband: the fresh
        # model's optimizer is left as built, which Keras warns about.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Skipping variable loading for optimizer")
            return super().load_model(trial)

    def _delete_checkpoints(self, keep):
        """Deletes the checkpoints of the ended trials outside the best `keep`."""
        best = {t.trial_id for t in self.oracle.get_best_trials(keep)}
        # From the folder: a worker's oracle is a client, without the trials.
        for name in os.listdir(self.project_dir):
            trial_id = name[len("trial_"):]
            path = kt.checkpoint_path(self, trial_id)
            if (name.startswith("trial_") and trial_id not in best
                    and os.path.isfile(path)
                    and self.oracle.get_trial(trial_id).status != "RUNNING"):
                os.remove(path)


def _trial_states(project_dir):
    """The statuses in a project's `trial_*/trial.json` files that read."""
    states = []
    for name in os.listdir(project_dir):
        try:
            with open(os.path.join(project_dir, name, "trial.json"), encoding="utf-8") as f:
                states.append(json.load(f).get("status"))
        except (OSError, ValueError, AttributeError):
            continue
    return states


class SaveBestEpochAtEnd(kt.SaveBestEpoch):
    """Keras Tuner's checkpoint of the best epoch, written once per trial.

    The best epoch's weights (and optimizer state, for Hyperband's next
    round) are kept in memory and written when training ends, instead of
    at every epoch that improves: each write of a RegNet's several hundred
    variables takes about a second.

    Args:
        objective, filepath: as for Keras Tuner's `SaveBestEpoch`.
        include_optimizer: also write the optimizer's state (SGD's momentum:
            as large as the model), which only a continued trial needs.
    """

    def __init__(self, objective, filepath, include_optimizer=True):
        super().__init__(objective, filepath)
        self.include_optimizer = include_optimizer

    def on_train_begin(self, logs=None):
        self._best = None

    def _save_model(self):
        self._best = [v.numpy() for v in self._variables()]

    def on_train_end(self, logs=None):
        if self._best is not None:
            for variable, value in zip(self._variables(), self._best):
                variable.assign(value)
            # Written whole: a kill mid-write leaves the previous file or none.
            with atomic_path(self.filepath) as tmp:
                if self.include_optimizer or self.model.optimizer is None:
                    self.model.save_weights(tmp)
                else:
                    kt.save_weights_without_optimizer(self.model, tmp)

    def _variables(self):
        optimizer = self.model.optimizer
        return [*self.model.variables, *(optimizer.variables if optimizer else [])]



class StopOnSignal(keras.callbacks.Callback):
    """Ends `fit` with `KeyboardInterrupt` at the next batch once Ctrl-C or
    SIGTERM has asked the command-line search to stop (`tuner.stopping`)."""

    def on_train_batch_begin(self, batch, logs=None):
        raise_if_stopped()

    def on_test_batch_begin(self, batch, logs=None):
        raise_if_stopped()

def build_tuner(hypermodel, tuner="random", *, max_trials=10, max_epochs=None,
                objective="val_accuracy", seed=None, trials_csv=None,
                max_consecutive_failed_trials=3, max_draws=MAX_DRAWS,
                max_trials_per_process=None, keep_checkpoints=None, **kwargs):
    """A `RegNetTuner` whose oracle only proposes configurations within the budget.

    Args:
        hypermodel: a `RegNetHyperModel`; its `space` holds the budget.
        tuner: `"random"`, `"bayes"` or `"hyperband"`.
        max_trials: trial count (a cap for Hyperband).
        max_epochs: Hyperband's maximum epochs per model (required for it).
        objective: Keras Tuner objective.
        seed: oracle seed.
        trials_csv: path of the per-trial CSV (`None`: `trials.csv` in the
            project directory).
        max_consecutive_failed_trials: failed trials in a row that stop the
            search with `SearchStopped`.
        max_draws: draws per proposal before an impossible budget is reported.
        max_trials_per_process, keep_checkpoints: see `RegNetTuner`.
        **kwargs: `keras_tuner.Tuner` arguments.
    """
    if tuner not in ORACLES:
        raise invalid("tuner", tuner, f"one of {sorted(ORACLES)}")
    # Keras Tuner takes a seed of 0 for "no seed"; shifting keeps every seed.
    oracle_seed = None if seed is None else seed + 1
    oracle_kwargs = dict(objective=objective, seed=oracle_seed, space=hypermodel.space,
                         max_draws=max_draws, max_trials=max_trials,
                         max_consecutive_failed_trials=max_consecutive_failed_trials)
    if tuner == "hyperband":
        if not (isinstance(max_epochs, int) and max_epochs >= 1):
            raise invalid("max_epochs", max_epochs, "an integer >= 1 for Hyperband")
        oracle_kwargs["max_epochs"] = max_epochs
    oracle = ORACLES[tuner](**oracle_kwargs)
    search = RegNetTuner(hypermodel, oracle, max_trials_per_process=max_trials_per_process,
                         keep_checkpoints=keep_checkpoints, **kwargs)
    oracle.trials_csv = trials_csv or f"{search.project_dir}/trials.csv"
    return search
