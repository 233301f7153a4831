"""A search folder (`--out`): its layout, its checks before a search starts
or resumes, and what a chief and its workers both build from it: the
hypermodel and the tuner of a config, the fit, and the export of the best
model."""

import os

from keras_regnet.design.checks import invalid
from keras_regnet.files import (atomic_path, check_folder_creatable, is_dead_temp,
                                own_folders_by, read_json, write_json)
from tuner.config import IDENTITY, SearchConfig
from tuner.trials import TRIALS_CSV, trial_number

SEARCH_JSON = "search.json"
PROJECT = "kt_project"
BEST_KERAS = "best_model.keras"
BEST_SAVEDMODEL = "best_savedmodel"
LOGS = "logs"
# What a worker process needs in its environment (Keras Tuner's names).
WORKER_ENV = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


def is_search_json(path):
    """Whether `path` is a search's `search.json`."""
    try:
        config = read_json(path)
    except (OSError, ValueError):
        return False
    return isinstance(config, dict) and {"dataset", "tuner", "max_trials"} <= set(config)


own_folders_by(SEARCH_JSON, is_search_json)


def read_config(out):
    """The `SearchConfig` of the search in `out`; `ValueError` naming the
    file if it is missing or damaged."""
    path = os.path.join(out, SEARCH_JSON)
    try:
        values = read_json(path)
        if isinstance(values, dict):
            values.setdefault("space", "regnet")  # searches of version 0.1
        return SearchConfig.from_json(values)
    except (OSError, ValueError) as e:
        raise ValueError(f"Invalid `--out`: {out!r}: its {SEARCH_JSON} cannot be "
                         f"read ({e}).") from None


def write_config(out, config):
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, SEARCH_JSON), config.to_json())


def check_out(out, config, resume, ignore=()):
    """Checks the folder `out` for a new search (`resume=False`: new or
    empty) or for resuming the same search (`ignore`: fields not resolved
    yet, e.g. the dataset's image size). `ValueError` before any work."""
    if os.path.isfile(os.path.join(out, SEARCH_JSON)):
        saved = read_config(out).to_json()
        if not resume:
            raise ValueError(f"Invalid `--out`: {out!r} holds a search already. "
                             "Pass --resume to continue it, or choose another --out.")
        now = config.to_json()
        diff = [k for k in IDENTITY if k not in ignore and saved[k] != now[k]]
        if diff:
            detail = "; ".join(f"--{k.replace('_', '-')} was {saved[k]!r}, "
                               f"now {now[k]!r}" for k in diff)
            raise ValueError(f"Invalid `--resume`: {out!r} holds a different "
                             f"search ({detail}). Repeat the original flags or "
                             "choose another --out.")
        if config.max_trials < saved["max_trials"]:
            raise ValueError(f"Invalid `--max-trials`: {config.max_trials}. "
                             f"The search in {out!r} had {saved['max_trials']}; "
                             "a resumed search may only grow.")
        return
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ValueError(f"Invalid `--out`: {out!r} is a file. Expected a folder.")
    if os.path.isdir(out) and [n for n in os.listdir(out)
                               if not is_dead_temp(os.path.join(out, n))]:
        raise ValueError(f"Invalid `--out`: {out!r} is not empty and holds no "
                         f"search ({SEARCH_JSON} missing). Choose a new or empty folder.")
    check_folder_creatable(out, "--out")
    if resume:
        raise ValueError(f"Invalid `--resume`: {out!r} holds no search to resume.")


def make_hypermodel(config, info):
    """The hypermodel of `config` for the dataset described by `info`."""
    from tuner.hypermodel import AnyNetHyperModel, RegNetHyperModel

    common = dict(flops=config.flops, params=config.params,
                  learning_rate=config.learning_rate, weight_decay=config.weight_decay,
                  mixed_precision=config.mixed_precision,
                  jit_compile=True if config.jit_compile else "auto", seed=config.seed)
    if config.space != "regnet":
        return AnyNetHyperModel(info.input_shape, info.classes, config.space,
                                config.block, **common)
    return RegNetHyperModel(
        info.input_shape, info.classes, config.block, depth=config.depth,
        w0=config.w0, wa=config.wa, wm=config.wm,
        bottleneck_ratio=config.bottleneck_ratio, group_width=config.group_width,
        **common)


def make_tuner(config, out, hypermodel, max_trials_per_process=None):
    """The tuner of `config`, its project in `out`."""
    from tuner.search import build_tuner

    return build_tuner(
        hypermodel, config.tuner, max_trials=config.max_trials,
        max_epochs=config.epochs, seed=config.seed,
        trials_csv=os.path.join(out, TRIALS_CSV),
        max_consecutive_failed_trials=config.max_failures or None,
        max_trials_per_process=max_trials_per_process,
        keep_checkpoints=config.keep_checkpoints or None,
        directory=out, project_name=PROJECT)


def fit(search, data, config):
    """`search.search` on a dataset; `shuffle=False`: the pipeline shuffles.
    Stops at the next batch after Ctrl-C or SIGTERM (`tuner.stopping`)."""
    from tuner.search import StopOnSignal

    search.search(data.train, validation_data=data.val, epochs=config.epochs,
                  verbose=config.verbose, shuffle=False, callbacks=[StopOnSignal()])


def export_best(search, out):
    """Saves the best model as `.keras` and, on the TensorFlow and JAX
    backends, as a SavedModel, atomically.

    A trial whose checkpoint cannot be read (damaged, deleted) is skipped,
    with a line saying so, for the next best.

    Returns:
        `(trial, what)`: the trial exported (None if none completed or no
        checkpoint could be read) and a text listing what was written (or
        why nothing was).
    """
    import keras

    from keras_regnet.models.inference import write_savedmodel

    trained, skipped = None, []
    for best in search.oracle.get_best_trials(len(search.oracle.trials)):
        if best.status != "COMPLETED":
            break
        try:
            trained = search.load_model(best)
            break
        except (OSError, ValueError) as e:  # a damaged or deleted checkpoint
            text = (str(e).strip().splitlines() or [type(e).__name__])[0]
            skipped.append(f"trial {trial_number(best.trial_id)}'s checkpoint cannot "
                           f"be read ({text})")
    if trained is None:
        return None, "; ".join(skipped)
    if skipped:
        print("Exporting the best trial with a readable checkpoint: "
              + "; ".join(skipped), flush=True)
    # The model alone, uncompiled: the optimizer's state (as large as the
    # model) serves no one after the search; compile it to train on.
    model = keras.Model(trained.inputs, trained.outputs, name=trained.name)
    keras_file = os.path.join(out, BEST_KERAS)
    with atomic_path(keras_file) as tmp:
        model.save(tmp)
    if keras.backend.backend() not in ("tensorflow", "jax"):
        # Keras exports torch models through torch.export, which fails on them.
        return best, (f"{keras_file} (no SavedModel on the "
                         f"{keras.backend.backend()} backend: load it under "
                         "TensorFlow or JAX to export)")
    with atomic_path(os.path.join(out, BEST_SAVEDMODEL)) as tmp:
        write_savedmodel(model, tmp)
    return best, f"{keras_file}, {os.path.join(out, BEST_SAVEDMODEL)}/ (SavedModel)"


def check_worker(out):
    """A worker's environment and folder, before Keras loads."""
    for name in WORKER_ENV:
        if name not in os.environ:
            raise ValueError(
                f"the worker needs {name} in its environment; workers are "
                "started by `python -m tuner search --workers N`")
    if not os.path.isfile(os.path.join(out, SEARCH_JSON)):
        raise invalid("--out", out, f"the folder of a search (with {SEARCH_JSON})")
