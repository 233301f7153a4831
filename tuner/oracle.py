"""Keras Tuner oracles that only ever propose configurations inside a compute budget.

Every candidate is checked with the analytic `complexity` (well under a
millisecond) and re-drawn until it fits, so an out-of-budget configuration
never costs a trial. The oracles also record each trial (worker, wall time)
into `trials.csv`, print one line per finished trial, and stop the search
with a clear reason after repeated failures instead of raising inside a
gRPC handler.
"""

import os
import time

import keras_tuner
import numpy as np
from keras_tuner import oracles as kt_oracles
from keras_tuner.engine import trial as kt_trial

from keras_regnet.design.sampling import MAX_DRAWS, format_count
from keras_regnet.files import write_json
from tuner import kt_adapter as kt
from tuner.trials import (config_text, short_reason, trial_number, trial_record,
                          write_trials_csv)

# Runs of a trial whose process died (crash or kill) before it is failed.
MAX_ATTEMPTS = 2

synchronized = keras_tuner.synchronized
TrialStatus = kt_trial.TrialStatus


class _QuietDisplay(kt.Display):
    """Keeps Keras Tuner's display state; the oracle prints its own line."""

    def on_trial_begin(self, trial):
        pass

    def on_trial_end(self, trial):
        pass


class _BudgetOracle:
    """Mixin over a Keras Tuner oracle; see the module docstring.

    Args:
        space: the `RegNetDesignSpace` whose budget every trial must meet.
        max_draws: draws per proposal before giving up with an error.
        trials_csv: where to write the per-trial records (`None`: nowhere).
    """

    def __init__(self, *args, space, max_draws=MAX_DRAWS, trials_csv=None,
                 **kwargs):
        super().__init__(*args, **kwargs)
        self.space = space
        self.max_draws = max_draws
        self.trials_csv = trials_csv
        # Candidates drawn and candidates accepted, for the budget's acceptance rate.
        self.draws = 0
        self.accepted = 0
        self.stop_reason = None
        # trial_id -> {"tuner_id", "start", "attempts", "wall_time_s"}; saved
        # with the oracle.
        self.records = {}
        self._derived_cache = {}
        # This process's share of the search, for the time left.
        self._started = None
        self._ended_here = 0
        self._display = _QuietDisplay(oracle=self)

    def _random_values(self):
        """A new configuration drawn by the space's sampler, inside the budget.

        The space's sampler meets its constraints by construction and draws
        by the paper's distributions; only the budget rejects draws. The
        learning rate and weight decay are drawn as Keras Tuner draws them.
        Draws are seeded from the oracle's saved state, so a resumed search
        goes on as it would have.
        """
        collisions = 0
        for _ in range(self.max_draws):
            rng = np.random.default_rng([self.seed or 0, kt.next_seed(self)])
            values = self.space.sample(rng)
            self.draws += 1
            if not self.space.fits(values):
                continue
            self.accepted += 1
            for hp in self.hyperparameters.space:
                if hp.name not in values:
                    values[hp.name] = hp.random_sample(kt.next_seed(self))
            if not kt.is_duplicate(self, values):
                return values
            collisions += 1
            if collisions > kt.max_collisions(self):
                return None  # every configuration that fits has run
        if self.trials:
            return None
        raise self.space.infeasible_error(self.max_draws)

    @synchronized
    def create_trial(self, tuner_id):
        resumed = tuner_id in self.ongoing_trials
        if not resumed:
            self._fail_doomed_retries()
        if self.stop_reason is not None and not resumed:
            self.tuner_ids.discard(tuner_id)
            return kt_trial.Trial(self.get_space(), status=TrialStatus.STOPPED)
        trial = super().create_trial(tuner_id)
        if self._started is None:
            self._started = time.time()
        if trial.status == TrialStatus.RUNNING and not resumed:
            record = self.records.setdefault(trial.trial_id, {})
            record.update(tuner_id=tuner_id, start=time.time(),
                          attempts=record.get("attempts", 0) + 1)
            # Saved now: if this process dies, the next run knows the attempt.
            self.save()
        return trial

    def _fail_doomed_retries(self):
        """Fails the unfinished trials of dead processes that died on them before.

        A resumed search re-runs the trials that were running when it was
        killed; one whose process died `MAX_ATTEMPTS` times (for instance a
        crash in native code) is recorded as failed instead of run again.
        """
        retries = kt.retry_queue(self)
        while retries:
            trial_id = retries[-1]
            attempts = self.records.get(trial_id, {}).get("attempts", 0)
            if attempts < MAX_ATTEMPTS:
                return
            retries.pop()
            self.records[trial_id].pop("start", None)  # No meaningful wall time.
            self._fail(self.trials[trial_id],
                       f"The process running this trial died {attempts} "
                       "times (a crash, or killed); not retried.")

    @synchronized
    def worker_died(self, tuner_id, message):
        """Counts the death of `tuner_id`'s process against its ongoing trial.

        The worker is restarted with the same tuner id, and the restart
        resumes the trial: another attempt, counted in the saved records so
        that a restarted chief knows it too. A trial whose worker died
        `MAX_ATTEMPTS` times is failed with `message` instead.

        Returns:
            The trial the worker was running, or `None`.
        """
        trial = self.ongoing_trials.get(tuner_id)
        if trial is None:
            return None
        record = self.records.setdefault(trial.trial_id, {})
        if record.get("attempts", 0) >= MAX_ATTEMPTS:
            self._fail(trial, message)
        else:
            record["attempts"] = record.get("attempts", 0) + 1
            self.save()
        return trial

    def _fail(self, trial, message):
        """Ends a trial whose process died as failed."""
        trial.status = TrialStatus.FAILED
        trial.message = message
        self.end_trial(trial)

    @synchronized
    def end_trial(self, trial):
        record = self.records.setdefault(trial.trial_id, {})
        record["wall_time_s"] = time.time() - record.get("start", time.time())
        super().end_trial(trial)  # saves the oracle, records included
        # Saved again now that the trial has left the ongoing ones (Keras
        # Tuner saves before): a resume after a fault in what follows keeps it.
        self.save()
        self._ended_here += 1
        self.write_csv()
        print(self._trial_line(self.trials[trial.trial_id]), flush=True)

    def _check_consecutive_failures(self):
        limit = self.max_consecutive_failed_trials
        run = 0
        for trial_id in self.end_order:
            failed = self.trials[trial_id].status == TrialStatus.FAILED
            run = run + 1 if failed else 0
        if limit and run >= limit:
            last = self.trials[self.end_order[-1]]
            self.stop_reason = (
                f"Search stopped: {run} consecutive trials failed (limit "
                f"{limit}). Last failure, trial {trial_number(last.trial_id)}: "
                f"{short_reason(last.message)}")

    def write_csv(self):
        if self.trials_csv is None:
            return
        rows = [trial_record(self.trials[t], self._derived(t), self.records.get(t, {}))
                for t in self.start_order if t in self.trials]
        write_trials_csv(self.trials_csv, rows,
                         [p.name for p in self.space.hyperparameters()])

    def _derived(self, trial_id):
        """Space, block, stages, complexity and e_fit of a trial (cached)."""
        if trial_id not in self._derived_cache:
            values = self.trials[trial_id].hyperparameters.values
            derived = {"space": self.space.name,
                       "block": self.space.block_type.upper()}
            if all(p.name in values for p in self.space.hyperparameters()):
                derived.update(self.space.describe(values))
            self._derived_cache[trial_id] = derived
        return self._derived_cache[trial_id]

    def _trial_line(self, trial):
        cx = self._derived(trial.trial_id)
        wall = self.records.get(trial.trial_id, {}).get("wall_time_s", 0.0)
        total = f"/{self.max_trials}" if self.max_trials else ""
        head = (f"trial {trial_number(trial.trial_id)}{total} | "
                f"{config_text(trial.hyperparameters.values, cx)} | ")
        if "flops" in cx:
            head += f"{format_count(cx['flops'])}F {format_count(cx['params'])}P | "
        if trial.status == TrialStatus.COMPLETED:
            result = f"{self.objective.name} {trial.score:.4f}"
        else:
            result = f"{trial.status}: {short_reason(trial.message)}"
        best = self.get_best_trials(1)
        best = (f"best {best[0].score:.4f} (trial {trial_number(best[0].trial_id)})"
                if best and best[0].status == TrialStatus.COMPLETED else "best -")
        return f"{head}{result} | {wall:.1f}s | {best} | {self._progress()}"

    def _progress(self):
        """`"1:05 elapsed, ~2:10 left"`: this process's time since its first
        trial, and the rest at the rate of the trials it ended."""
        elapsed = time.time() - (self._started or time.time())
        text = f"{_clock(elapsed)} elapsed"
        left = (self.max_trials or 0) - len(self.end_order)
        if self.max_trials and self._ended_here:
            text += (f", ~{_clock(elapsed / self._ended_here * left)} left"
                     if left > 0 else ", done")
        return text

    # Keras Tuner rewrites its state files in place: a process killed
    # mid-write would leave a project that cannot be resumed.
    def save(self):
        write_json(kt.oracle_state_path(self), self.get_state())

    def _save_trial(self, trial):
        write_json(os.path.join(kt.trial_dir(self, trial.trial_id), "trial.json"),
                   trial.get_state())

    def get_state(self):
        state = super().get_state()
        state["regnet_records"] = self.records
        return state

    def set_state(self, state):
        super().set_state(state)
        self.records = state.get("regnet_records", {})


def _clock(seconds):
    """`"1:05"`, `"1:02:05"`."""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RandomSearchOracle(_BudgetOracle, kt_oracles.RandomSearchOracle):
    """Random search inside a compute budget.

    Args:
        space: the `RegNetDesignSpace` (usually `RegNetHyperModel.space`).
        max_draws: draws per proposal before giving up with an error.
        trials_csv: path of the per-trial CSV, or `None`.
        **kwargs: `keras_tuner.oracles.RandomSearchOracle` arguments.
    """


class HyperbandOracle(_BudgetOracle, kt_oracles.HyperbandOracle):
    """Hyperband inside a compute budget; `max_trials` caps the trial count.

    Args:
        space, max_draws, trials_csv: as for `RandomSearchOracle`.
        max_trials: optional cap on the number of trials.
        **kwargs: `keras_tuner.oracles.HyperbandOracle` arguments.
    """

    def __init__(self, *args, max_trials=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.max_trials = max_trials


class BayesianOptimizationOracle(_BudgetOracle,
                                 kt_oracles.BayesianOptimizationOracle):
    """Bayesian optimisation inside a compute budget.

    After the random initial points, the Gaussian process' upper confidence
    bound is maximised over `num_candidates` in-budget random configurations
    (instead of over the unconstrained unit cube), so the proposal always
    fits the budget; where the budget accepts few draws, over those found
    in `max_draws` draws.

    Args:
        space, max_draws, trials_csv: as for `RandomSearchOracle`.
        num_candidates: in-budget candidates scored per proposal.
        **kwargs: `keras_tuner.oracles.BayesianOptimizationOracle` arguments.
    """

    def __init__(self, *args, num_candidates=100, **kwargs):
        super().__init__(*args, **kwargs)
        self.num_candidates = num_candidates

    def populate_space(self, trial_id):
        completed = [t for t in self.trials.values()
                     if t.status == TrialStatus.COMPLETED]
        initial = self.num_initial_points or max(
            3 * len(self.hyperparameters.space), 3)
        if len(completed) < initial:
            return kt.random_populate_space(self)
        x, y = kt.vectorize_trials(self)
        self.gpr.fit(np.nan_to_num(x, posinf=0, neginf=0),
                     np.nan_to_num(y, posinf=0, neginf=0))
        candidates, draws = [], self.draws
        # Where the budget accepts few draws, fewer candidates: a proposal
        # stops drawing after `max_draws` draws (about 3 s) once it has one.
        while len(candidates) < self.num_candidates and (
                not candidates or self.draws - draws < self.max_draws):
            values = self._random_values()
            if values is None:
                break
            candidates.append(values)
        if not candidates:
            return {"status": TrialStatus.STOPPED, "values": None}
        vectors = np.array([[hp.value_to_prob(c[hp.name]) for hp in kt.nonfixed_space(self)]
                            for c in candidates])
        mu, sigma = self.gpr.predict(vectors, return_std=True)
        best = int(np.argmin(np.ravel(mu) - self.beta * np.ravel(sigma)))
        return {"status": TrialStatus.RUNNING, "values": candidates[best]}


ORACLES = {"random": RandomSearchOracle, "bayes": BayesianOptimizationOracle,
           "hyperband": HyperbandOracle}
