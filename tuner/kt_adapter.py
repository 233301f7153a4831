"""Every Keras Tuner and Keras internal the tuner relies on, in one place.

Keras Tuner exposes no public API for a tuner's checkpoint paths, the
oracle's seed and retry state, its trial display or its gRPC service, and
Keras none for saving weights without the optimizer; these helpers reach
them for keras-tuner 1.4 (setup.py pins `<1.5`) and Keras 3. Besides, the
subclasses in `oracle.py` and `search.py` override the Keras Tuner methods
named in `HOOKS` (their documented extension points have private names).
A new Keras Tuner is checked by the suite: `tests/test_architecture.py`
allows private Keras Tuner names nowhere else.
"""

import warnings

import keras_tuner
from keras.src.saving import saving_lib
from keras_tuner.src.engine import tuner_utils
from keras_tuner.src.engine.oracle import Display

SUPPORTED = "1.4."
# Keras Tuner methods the oracles and the tuner override.
HOOKS = ("_random_values", "_save_trial", "_build_hypermodel", "_save_model")

if not keras_tuner.__version__.startswith(SUPPORTED):
    warnings.warn(f"tuner was written for keras-tuner {SUPPORTED}x; found "
                  f"{keras_tuner.__version__}. Install `keras-tuner>=1.4,<1.5`.",
                  stacklevel=2)

class FatalOSError(keras_tuner.errors.FatalError, OSError):
    """An `OSError` in a trial (a full disk, a vanished folder): it ends the
    search, as Keras Tuner ends it for a `FatalError`, instead of failing
    the trial and going on to fail the next ones."""


def fatal(error):
    """`error` (an `OSError`) as a `FatalOSError` with the same fields."""
    return FatalOSError(error.errno, error.strerror, error.filename)


TunerCallback = tuner_utils.TunerCallback
SaveBestEpoch = tuner_utils.SaveBestEpoch
convert_to_metrics_dict = tuner_utils.convert_to_metrics_dict
__all__ = ["Display", "TunerCallback", "SaveBestEpoch", "convert_to_metrics_dict"]


# The oracle.

def next_seed(oracle):
    """The oracle's next seed (saved with its state, so a resumed search
    draws what it would have)."""
    seed = oracle._seed_state
    oracle._seed_state += 1
    return seed


def is_duplicate(oracle, values):
    return oracle._duplicate(values)


def max_collisions(oracle):
    return oracle._max_collisions


def retry_queue(oracle):
    """The ids of the trials to run again (their process died), last first."""
    return oracle._retry_queue


def oracle_state_path(oracle):
    return oracle._get_oracle_fname()


def trial_dir(oracle, trial_id):
    return oracle._get_trial_dir(trial_id)


def random_populate_space(oracle):
    return oracle._random_populate_space()


def vectorize_trials(oracle):
    """Bayesian optimisation's `(x, y)` of the completed trials."""
    return oracle._vectorize_trials()


def nonfixed_space(oracle):
    return oracle._nonfixed_space()


def served_oracle(oracle):
    """The oracle behind a worker's gRPC client (the oracle itself elsewhere)."""
    return getattr(oracle, "_oracle", oracle)


def serve(oracle, server):
    """Adds Keras Tuner's oracle service for `oracle` to a gRPC `server`;
    returns the servicer."""
    from keras_tuner.src import protos
    from keras_tuner.src.distribute.oracle_chief import OracleServicer

    servicer = OracleServicer(oracle)
    protos.get_service_grpc().add_OracleServicer_to_server(servicer, server)
    return servicer


# The tuner.

def populate_initial_space(tuner):
    """What a tuner without saved state does first (Keras Tuner's start)."""
    tuner._populate_initial_space()


def checkpoint_path(tuner, trial_id):
    return tuner._get_checkpoint_fname(trial_id)


def tuner_state_path(tuner):
    return tuner._get_tuner_fname()


def is_worker(tuner):
    return tuner._is_worker()


def fit_callbacks(tuner, callbacks, trial, execution):
    """Copies of the user's callbacks for one execution, TensorBoard's log
    folder set per trial as Keras Tuner does."""
    copied = tuner._deepcopy_callbacks(callbacks)
    tuner._configure_tensorboard_dir(copied, trial, execution)
    return copied


def build_and_fit(tuner, trial, *args, **kwargs):
    return tuner._build_and_fit_model(trial, *args, **kwargs)


# Keras.

def save_weights_without_optimizer(model, path):
    """`model.save_weights(path)` without the optimizer's variables."""
    saving_lib.save_weights_only(model, path, objects_to_skip=[model.optimizer])


def build_compiled_metrics(model, y_true, y_pred):
    """Builds a compiled model's loss and metrics containers for these
    (symbolic) targets and predictions."""
    for compiled in (model._compile_loss, model._compile_metrics):
        if compiled is not None and not compiled.built:
            compiled.build(y_true, y_pred)
