"""`python -m tuner search|report|worker`: the design-space search from the shell.

Arguments are parsed and checked before TensorFlow is imported, so `--help`
and bad input answer at once; `report` never imports TensorFlow.
"""

import argparse
import json
import math
import os
import re
import signal
import sys
import time
import warnings

from keras_regnet.design.sampling import format_count
from keras_regnet.design.spaces import SPACE_NAMES
from keras_regnet.files import (atomic_path, check_folder_creatable, check_target,
                                write_json)
from tuner.errors import SearchStopped
from tuner.stopping import SIGNALS, raise_if_stopped, stop_on_signals

SEARCH_JSON = "search.json"
PROJECT = "kt_project"
BEST_KERAS = "best_model.keras"
BEST_SAVEDMODEL = "best_savedmodel"
LOGS = "logs"
DEFAULT_ADDRESS = "127.0.0.1:0"
# The RegNet space's range flags (--space regnet only) and their defaults.
REGNET_FLAGS = {"depth": "12-28", "w0": "8-256", "wa": "8-256", "wm": "1.5-3",
                "bottleneck_ratio": "1,2,4", "group_width": "1,2,4,8,16,32"}
# Flags that define a search, and so its results; `--resume` must repeat
# them. The others (--max-trials may also grow) only say how to run it.
IDENTITY = ("space", "dataset", "image_size", "block", *REGNET_FLAGS, "flops",
            "params", "learning_rate", "weight_decay", "tuner", "epochs",
            "batch_size", "seed", "mixed_precision", "jit_compile", "max_failures")
MAX_WORKERS = 256
KEEP_CHECKPOINTS = 1
MAX_IMAGE_SIZE = 2048
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


def _number(text, name, integer=False):
    m = re.fullmatch(r"\s*([-+]?[0-9.]+(?:e[-+]?[0-9]+)?)\s*([kKmMgG]?)\s*", str(text))
    try:
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    except (AttributeError, ValueError):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected a number "
                         "(suffixes K, M, G allowed).") from None
    if not math.isfinite(value):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected a finite number.")
    if integer:
        if not value.is_integer():
            raise ValueError(f"Invalid `--{name}`: {text!r}. Expected an integer.")
        return int(value)
    return value


def parse_range(text, name, integer=False):
    """`"12-28"` -> `(12, 28)`; `"13"` -> `13`; `"200M-"` -> `(2e8, None)`."""
    parts = re.split(r"(?<![eE])-", text)
    if len(parts) == 1:
        return _number(parts[0], name, integer)
    if len(parts) != 2 or not any(p.strip() for p in parts):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI, "
                         "LO- or -HI (e.g. 200M-400M) or a single number.")
    lo, hi = (_number(p, name, integer) if p.strip() else None for p in parts)
    if lo is not None and hi is not None and lo > hi:
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI with "
                         "LO <= HI.")
    return lo, hi


def in_user_words(error, flags):
    """`error` of a design space (`Invalid `depth`: (1, 100000). Expected
    ...`) restated with the flag and what the user typed, where `flags`
    (config key -> the flag's text) has its name."""
    m = re.match(r"Invalid `(\w+)`: .*?\. (Expected .*)$", str(error), re.S)
    if not m or m.group(1) not in flags:
        return error
    return ValueError(f"Invalid `--{m.group(1).replace('_', '-')}`: "
                      f"{flags[m.group(1)]!r}. {m.group(2)}")


def parse_choices(text, name):
    """`"1,2,4"` -> `[1, 2, 4]`; `"8"` -> `8`."""
    values = [_number(p, name, integer=True) for p in text.split(",")]
    return values[0] if len(values) == 1 else values


def _int_at_least(text, name, low, high=None):
    value = _number(text, name, integer=True)
    if value < low or (high is not None and value > high):
        allowed = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected {allowed}.")
    return value


def build_parser():
    parser = _Parser(
        prog="python -m tuner",
        description="Keras Tuner search of the RegNet and AnyNetX design spaces "
                    "(Radosavovic et al., 2020).")
    sub = parser.add_subparsers(dest="command", required=True,
                                parser_class=_Parser)

    s = sub.add_parser(
        "search", help="run (or resume) a search",
        description="Searches a design space inside a compute budget: every "
                    "trial trains one model; --out gets trials.csv, plots and "
                    "the best model. Numbers take the suffixes K, M, G.")
    s.add_argument("--space", default="regnet", choices=SPACE_NAMES,
                   help="design space: the six-parameter RegNet space, or an "
                        "AnyNetX space of the paper's progression (A: 16 free "
                        "per-stage parameters ... E: shared b and g, widths "
                        "and depths non-decreasing) (default: %(default)s)")
    s.add_argument("--dataset", default="digits",
                   help="'digits' (bundled scikit-learn digits, offline), a "
                        "TensorFlow Datasets name, or a folder with one "
                        "sub-folder of images per class (default: %(default)s)")
    s.add_argument("--block", default="X", choices=["X", "Y", "x", "y"],
                   help="X blocks, or Y blocks (X with squeeze-and-excitation, "
                        "ratio 0.25) (default: %(default)s)")
    s.add_argument("--flops", default="-20M",
                   help="budget LO-HI in multiply-adds at --image-size "
                        "(e.g. 200M-400M; LO- or -HI for one end, 'none' for "
                        "no budget) (default: %(default)s)")
    s.add_argument("--params", default="-5M",
                   help="budget LO-HI in trainable parameters (default: %(default)s)")
    for flag, what in (("depth", "d: LO-HI or a fixed value"),
                       ("w0", "w0: LO-HI (multiples of 8) or fixed"),
                       ("wa", "wa: LO-HI (log-scaled) or fixed"),
                       ("wm", "wm: LO-HI (log-scaled) or fixed"),
                       ("bottleneck_ratio", "b: allowed values"),
                       ("group_width", "g: allowed values")):
        s.add_argument(f"--{flag.replace('_', '-')}", default=None,
                       help=f"{what}; --space regnet only (default: "
                            f"{REGNET_FLAGS[flag]}, the paper's)")
    s.add_argument("--learning-rate", default="0.1",
                   help="SGD learning rate, fixed or LO-HI (log-scaled) "
                        "(default: %(default)s)")
    s.add_argument("--weight-decay", default="5e-5",
                   help="weight decay, fixed or LO-HI (default: %(default)s)")
    s.add_argument("--tuner", default="random", choices=["random", "bayes", "hyperband"],
                   help="random search, Bayesian optimisation (Gaussian process) "
                        "or Hyperband (default: %(default)s)")
    s.add_argument("--max-trials", default="10",
                   help="models to train (Hyperband: at most) (default: %(default)s)")
    s.add_argument("--epochs", default="3",
                   help="epochs per trial (Hyperband: the most per model) "
                        "(default: %(default)s)")
    s.add_argument("--batch-size", default="32",
                   help="training and validation batch size (default: %(default)s)")
    s.add_argument("--image-size", default=None,
                   help="training image side (default: 32 for digits, the "
                        "dataset's size for TFDS, 224 for folders)")
    s.add_argument("--out", default="runs/search",
                   help="output folder, new or empty; missing folders are "
                        "made (default: %(default)s)")
    s.add_argument("--keep-checkpoints", default=str(KEEP_CHECKPOINTS), metavar="N",
                   help="keep the trial checkpoints of the best N trials, for "
                        "`get_best_models`; 0 keeps all (Hyperband always "
                        "keeps all) (default: %(default)s)")
    s.add_argument("--resume", action="store_true",
                   help="continue the search in --out with the same flags, "
                        "keeping completed trials")
    s.add_argument("--seed", default="0",
                   help="seed of the configurations drawn, the data order and "
                        "the initial weights (default: %(default)s)")
    s.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on GPU, mixed_bfloat16 on CPU")
    s.add_argument("--jit-compile", action="store_true", help="XLA-compile training")
    s.add_argument("--workers", default="0",
                   help="local worker processes (0: train in this process) "
                        "(default: %(default)s)")
    s.add_argument("--trials-per-worker", default="10",
                   help="trials before a worker process is replaced "
                        "(default: %(default)s)")
    s.add_argument("--oracle-address", default=DEFAULT_ADDRESS,
                   help="HOST:PORT the chief serves on with --workers (port 0: a "
                        "free one); use 0.0.0.0:PORT for workers on other "
                        "machines (default: %(default)s)")
    s.add_argument("--max-failures", default="3",
                   help="consecutive failed trials that stop the search; 0 "
                        "never stops (default: %(default)s)")
    s.add_argument("--verbose", default="1", choices=["0", "1", "2"],
                   help="0: one line per trial; 1: and Keras' progress bar; "
                        "2: one line per epoch, and TensorFlow's own log "
                        "messages (default: %(default)s)")

    # Numbers are parsed in check_report, so that a bad value is one line.
    r = sub.add_parser("report", help="rebuild plots and print a summary of runs",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("dirs", nargs="+", metavar="DIR",
                   help="run folders (the --out of searches), each with trials.csv")
    r.add_argument("--out", default="edf_compare.png", metavar="PNG",
                   help="the runs' overlaid EDFs (written with 2 or more DIRs)")
    r.add_argument("--edf", default="normalized", metavar="{error,normalized}",
                   help="'normalized': each run's models reweighted to the same "
                        "flops distribution (Radosavovic et al. 2019), so that "
                        "bigger models do not decide the comparison; 'error': "
                        "plain error EDFs")
    r.add_argument("--bootstrap", default="10000", metavar="N",
                   help="resamples of the bootstrap of the best model and of "
                        "the bands in trends.png")
    r.add_argument("--seed", default="0", metavar="N", help="seed of the bootstrap")
    r.add_argument("--top", default="5", metavar="N",
                   help="best trials listed, and drawn in block_widths.png")

    w = sub.add_parser("worker", help="run trials for a chief (KERASTUNER_* env)")
    w.add_argument("--out", required=True, help="the search's shared output directory")
    return parser


def search_config(args):
    """Parses and validates the search flags into a JSON-able config."""
    def budget(text, name):
        if text.strip().lower() == "none":
            return None
        value = parse_range(text, name)
        if not isinstance(value, tuple):
            raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI, LO- or -HI.")
        return list(value)

    def listify(v):
        return list(v) if isinstance(v, tuple) else v

    def optimizer_value(text, name, zero):
        value = parse_range(text, name)
        lo, hi = value if isinstance(value, tuple) else (value, value)
        if lo is None or hi is None or not (lo <= hi and (lo > 0 or zero and hi == 0)):
            raise ValueError(
                f"Invalid `--{name}`: {text!r}. Expected a number > 0"
                f"{' (or 0)' if zero else ''} or a range LO-HI with 0 < LO <= HI.")
        return listify(value)

    given = [f for f in REGNET_FLAGS if getattr(args, f) is not None]
    if args.space != "regnet" and given:
        flag = given[0].replace("_", "-")
        raise ValueError(f"Invalid `--{flag}`: {getattr(args, given[0])!r}. It "
                         f"narrows the RegNet space; --space {args.space} has "
                         "per-stage depths, widths, b and g (leave it out).")
    ranges = {f: getattr(args, f) or REGNET_FLAGS[f] for f in REGNET_FLAGS}
    host, _, port = args.oracle_address.rpartition(":")
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"Invalid `--oracle-address`: {args.oracle_address!r}. "
                         "Expected HOST:PORT with a port in [0, 65535].")
    image_size = (None if args.image_size is None else
                  _int_at_least(args.image_size, "image-size", 8, MAX_IMAGE_SIZE))
    config = {
        "space": args.space, "dataset": args.dataset, "image_size": image_size,
        "block": args.block.upper(),
        "flops": budget(args.flops, "flops"), "params": budget(args.params, "params"),
        "learning_rate": optimizer_value(args.learning_rate, "learning-rate", False),
        "weight_decay": optimizer_value(args.weight_decay, "weight-decay", True),
        "tuner": args.tuner,
        "epochs": _int_at_least(args.epochs, "epochs", 1),
        "batch_size": _int_at_least(args.batch_size, "batch-size", 1, 2**16),
        "max_trials": _int_at_least(args.max_trials, "max-trials", 1),
        "seed": _int_at_least(args.seed, "seed", 0, 2**32 - 1),
        "mixed_precision": args.mixed_precision, "jit_compile": args.jit_compile,
        "workers": _int_at_least(args.workers, "workers", 0, MAX_WORKERS),
        "trials_per_worker": _int_at_least(args.trials_per_worker,
                                           "trials-per-worker", 1),
        "oracle_address": args.oracle_address,
        "max_failures": _int_at_least(args.max_failures, "max-failures", 0),
        "keep_checkpoints": _int_at_least(args.keep_checkpoints, "keep-checkpoints", 0),
        "verbose": int(args.verbose),
    }
    if args.space == "regnet":
        config.update({
            "depth": listify(parse_range(ranges["depth"], "depth", integer=True)),
            "w0": listify(parse_range(ranges["w0"], "w0", integer=True)),
            "wa": listify(parse_range(ranges["wa"], "wa")),
            "wm": listify(parse_range(ranges["wm"], "wm")),
            "bottleneck_ratio": parse_choices(ranges["bottleneck_ratio"],
                                              "bottleneck-ratio"),
            "group_width": parse_choices(ranges["group_width"], "group-width")})
    return config


def _tupled(v):
    return tuple(v) if isinstance(v, list) else v


def make_hypermodel(config, info):
    from tuner.hypermodel import AnyNetHyperModel, RegNetHyperModel

    common = dict(
        flops=_tupled(config["flops"]), params=_tupled(config["params"]),
        learning_rate=_tupled(config["learning_rate"]),
        weight_decay=_tupled(config["weight_decay"]),
        mixed_precision=config["mixed_precision"],
        jit_compile=True if config["jit_compile"] else "auto",
        seed=config["seed"])
    space = config.get("space", "regnet")
    if space != "regnet":
        return AnyNetHyperModel(info.input_shape, info.classes, space,
                                config["block"], **common)
    return RegNetHyperModel(
        info.input_shape, info.classes, config["block"],
        depth=_tupled(config["depth"]), w0=_tupled(config["w0"]),
        wa=_tupled(config["wa"]), wm=_tupled(config["wm"]),
        bottleneck_ratio=config["bottleneck_ratio"],
        group_width=config["group_width"], **common)


def make_tuner(config, out, hypermodel, max_trials_per_process=None):
    from tuner.search import build_tuner

    return build_tuner(
        hypermodel, config["tuner"], max_trials=config["max_trials"],
        max_epochs=config["epochs"], seed=config["seed"],
        trials_csv=os.path.join(out, "trials.csv"),
        max_consecutive_failed_trials=config["max_failures"] or None,
        max_trials_per_process=max_trials_per_process,
        keep_checkpoints=config.get("keep_checkpoints", KEEP_CHECKPOINTS) or None,
        directory=out, project_name=PROJECT)


def prepare_out_dir(out, config, resume, ignore=()):
    """Checks `--out` against `--resume` before any work (`ignore`: flags
    not resolved yet)."""
    saved_path = os.path.join(out, SEARCH_JSON)
    if os.path.isfile(saved_path):
        try:
            with open(saved_path, encoding="utf-8") as f:
                saved = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f"Invalid `--out`: {out!r}: its {SEARCH_JSON} cannot "
                             f"be read ({e}).") from None
        if not resume:
            raise ValueError(f"Invalid `--out`: {out!r} holds a search already. "
                             "Pass --resume to continue it, or choose another --out.")
        saved.setdefault("space", "regnet")  # searches of version 0.1
        diff = [k for k in IDENTITY if k in saved and k not in ignore
                and saved[k] != config.get(k)]
        if diff:
            detail = "; ".join(f"--{k.replace('_', '-')} was {saved[k]!r}, "
                               f"now {config.get(k)!r}" for k in diff)
            raise ValueError(f"Invalid `--resume`: {out!r} holds a different "
                             f"search ({detail}). Repeat the original flags or "
                             "choose another --out.")
        if config["max_trials"] < saved.get("max_trials", 0):
            raise ValueError(f"Invalid `--max-trials`: {config['max_trials']}. "
                             f"The search in {out!r} had {saved['max_trials']}; "
                             "a resumed search may only grow.")
        return
    if os.path.lexists(out) and not os.path.isdir(out):
        raise ValueError(f"Invalid `--out`: {out!r} is a file. Expected a folder.")
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"Invalid `--out`: {out!r} is not empty and holds no "
                         f"search ({SEARCH_JSON} missing). Choose a new or empty folder.")
    check_folder_creatable(out, "--out")
    if resume:
        raise ValueError(f"Invalid `--resume`: {out!r} holds no search to resume.")


def export_best(search, out):
    """Saves the best model as `.keras` and, on the TensorFlow and JAX
    backends, as a SavedModel, atomically.

    Returns:
        `(trial, what)`: the best trial (None if none completed) and a text
        listing what was written.
    """
    import keras

    from keras_regnet.models.inference import write_savedmodel

    best = search.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        return None, ""
    trained = search.load_model(best[0])
    # The model alone, uncompiled: the optimizer's state (as large as the
    # model) serves no one after the search; compile it to train on.
    model = keras.Model(trained.inputs, trained.outputs, name=trained.name)
    keras_file = os.path.join(out, BEST_KERAS)
    with atomic_path(keras_file) as tmp:
        model.save(tmp)
    if keras.backend.backend() not in ("tensorflow", "jax"):
        # Keras exports torch models through torch.export, which fails on them.
        return best[0], (f"{keras_file} (no SavedModel on the "
                         f"{keras.backend.backend()} backend: load it under "
                         "TensorFlow or JAX to export)")
    with atomic_path(os.path.join(out, BEST_SAVEDMODEL)) as tmp:
        write_savedmodel(model, tmp)
    return best[0], f"{keras_file}, {os.path.join(out, BEST_SAVEDMODEL)}/ (SavedModel)"


def check_search(args):
    """Validates the flags and `--out` before Keras loads; `ValueError` on
    bad input. Returns the search's config."""
    config = search_config(args)
    prepare_out_dir(args.out, config, args.resume, ignore=("image_size",))
    return config


def prepare_search(args, config):
    """Validates the rest (dataset, design space) before any training;
    `ValueError` on bad input."""
    from tuner.data import describe_dataset

    try:
        info = describe_dataset(config["dataset"], config["image_size"])
    except ValueError as e:  # in the flag's name
        raise ValueError(str(e).replace("Invalid `dataset`", "Invalid `--dataset`", 1)) from None
    config["image_size"] = info.input_shape[0]
    prepare_out_dir(args.out, config, args.resume)  # now with the image size
    flags = {name: getattr(args, name) or REGNET_FLAGS.get(name)
             for name in ("flops", "params", "learning_rate", "weight_decay",
                          *REGNET_FLAGS)}
    try:
        return config, info, make_hypermodel(config, info)
    except ValueError as e:
        raise in_user_words(e, flags) from None


# What the README's main job measured per trial against the tensorflow
# backend on the same 2-core CPU (see the README's speed section).
CPU_BACKEND_NOTES = {
    "jax": "on a CPU, jax trains these models 3-14x slower than tensorflow "
           "(grouped convolutions the most): KERAS_BACKEND=tensorflow is the "
           "fast choice here",
    "torch": "on a CPU, torch trains these models about 2x slower than "
             "tensorflow: KERAS_BACKEND=tensorflow is the fast choice here",
}


def header(config, info, space, out):
    """The lines a search starts with: what it searches, and on what."""
    from keras_regnet import runtime

    def shown(name, value):
        if name in ("bottleneck_ratio", "group_width"):  # allowed values
            return ",".join(map(str, value))
        return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}-{value[1]:g}"

    budget = ", ".join(f"{m} {format_count(b[0])}-{format_count(b[1])}"
                       for m, b in space.budget.items() if b)
    rt = runtime.describe()
    conv = {"native": "native (oneDNN)" if rt["onednn"] else "native",
            "portable": "portable: oneDNN is off, training about 2x slower; "
                        "set TF_ENABLE_ONEDNN_OPTS=1",
            "keras": "Keras' own"}[rt["grouped_conv"]]
    lines = [
        f"Searching the {space.name} space ({config['block']} blocks) on "
        f"{info.name} ({'x'.join(map(str, info.input_shape))}, {info.classes} "
        f"classes, {space.stem_type} stem) with {config['tuner']} search, "
        f"{config['max_trials']} trials x {config['epochs']} epochs -> {out}",
        "  ranges " + ", ".join(f"{k} {shown(k, v)}" for k, v in space.ranges.items())
        + f"; budget {budget or 'none'}",
        f"  Keras {rt['keras']} on {rt['backend']}, {rt['device']} "
        f"({rt['cpu']}); grouped convolutions: {conv}"]
    note = CPU_BACKEND_NOTES.get(rt["backend"].split()[0])
    if rt["device"] == "CPU" and note:
        lines.append("  " + note)
    return "\n".join(lines)


def run_search(args, config, info, hypermodel):
    out = args.out
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, SEARCH_JSON), config)
    search = make_tuner(config, out, hypermodel)
    search.save()
    search.oracle.write_csv()
    print(header(config, info, hypermodel.space, out), flush=True)
    start = time.time()
    try:
        if config["workers"] or config["oracle_address"] != DEFAULT_ADDRESS:
            from tuner.distributed import run_chief

            run_chief(search, config, out)
        else:
            from tuner.data import load_dataset

            data = load_dataset(info, config["batch_size"], config["seed"])
            fit(search, data, config)
    except KeyboardInterrupt:
        print("\nInterrupted: writing the summary and the best model so far "
              "(completed trials are kept; continue with --resume).", flush=True)
        _finish(search, out, time.time() - start)
        raise
    _finish(search, out, time.time() - start)


def fit(search, data, config):
    """`search.search` on a dataset; `shuffle=False`: the pipeline shuffles.
    Stops at the next batch after Ctrl-C or SIGTERM (`tuner.stopping`)."""
    from tuner.search import StopOnSignal

    search.search(data.train, validation_data=data.val, epochs=config["epochs"],
                  verbose=config["verbose"], shuffle=False, callbacks=[StopOnSignal()])


def _finish(search, out, seconds):
    from tuner import analysis
    from tuner.trials import trial_number

    rows = analysis.load_run(out)
    plots = analysis.write_plots(out, rows) if rows else []
    start = time.time()
    best, written = export_best(search, out)
    print(analysis.summary(out, rows))
    if best is not None:
        print(f"Search time {seconds:.0f} s, export {time.time() - start:.0f} s. "
              f"Best: trial {trial_number(best.trial_id)}, "
              f"{search.oracle.objective.name} {best.score:.4f} -> {written}")
    for line in analysis.plots_left_out(rows):
        print(line)
    print(f"Plots: {', '.join(plots) or 'none (no trial ended)'}", flush=True)


def import_keras(verbose):
    """Imports Keras and TensorFlow, their start-up log lines hidden unless
    `verbose` >= 2 (`keras_regnet.runtime.import_keras`)."""
    from keras_regnet import runtime

    runtime.import_keras(verbose >= 2)


def check_worker(args):
    """The worker's environment and folder, before Keras loads."""
    from tuner.distributed import WORKER_ENV

    for name in WORKER_ENV:
        if name not in os.environ:
            raise ValueError(
                f"the worker needs {name} in its environment; workers are "
                "started by `python -m tuner search --workers N`")
    if not os.path.isfile(os.path.join(args.out, SEARCH_JSON)):
        raise ValueError(f"Invalid `--out`: {args.out!r}. Expected the folder of "
                         f"a search (with {SEARCH_JSON}).")


def run_worker(args):
    from tuner.distributed import worker_main

    return worker_main(args.out)


def check_report(args):
    """Validates the report's flags and targets; returns `(runs, samples,
    seed, top)`, `runs` a list of `(folder, rows)`."""
    from tuner import analysis

    if args.edf not in analysis.EDF_KINDS:
        raise ValueError(f"Invalid `--edf`: {args.edf!r}. Expected one of "
                         f"{', '.join(analysis.EDF_KINDS)}.")
    samples, seed, top = (_number(getattr(args, k), k, integer=True)
                          for k in ("bootstrap", "seed", "top"))
    for name, value in (("bootstrap", samples), ("top", top)):
        if value < 1:
            raise ValueError(f"Invalid `--{name}`: {value}. Expected an "
                             "integer >= 1.")
    runs = [(os.path.normpath(d), analysis.load_run(d)) for d in args.dirs]
    for d, rows in runs:
        for name in analysis.plot_files(rows):
            check_target(os.path.join(d, name))
    if len(runs) > 1:
        check_target(args.out, "--out", parents=True)
    return runs, samples, seed, top


def run_report(args, runs, samples, seed, top):
    from tuner import analysis

    for d, rows in runs:
        written = analysis.write_plots(d, rows, samples, seed, top)
        print(analysis.summary(d, rows, top))
        print(analysis.bootstrap_summary(rows, samples, seed=seed))
        for line in analysis.plots_left_out(rows):
            print(f"  {line}")
        print(f"  plots: {', '.join(written)}")
    if len(runs) > 1:
        edf, note = analysis.comparable_edf(runs, args.edf)
        if note:
            print(f"note: {note}")
        analysis.plot_edf(runs, args.out, edf)
        print(analysis.ks_table(runs, edf))
        print(f"{'Flops-normalized e' if edf == 'normalized' else 'E'}rror EDFs "
              f"of the {len(runs)} runs: {args.out}")


def os_error_text(error):
    """An `OSError` in one line: `No space left on device: '/runs/x/trials.csv'`."""
    if error.strerror:
        where = f": {error.filename!r}" if error.filename else ""
        return f"{error.strerror}{where}"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _attach_open_ranges(argv):
    """`--flops -20M` -> `--flops=-20M`: argparse takes a value starting with
    '-' for an option."""
    out, i = [], 0
    while i < len(argv):
        if (argv[i].startswith("--") and "=" not in argv[i] and i + 1 < len(argv)
                and re.fullmatch(r"-[0-9.][0-9.eE+-]*[kKmMgG]?", argv[i + 1])):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(_attach_open_ranges(sys.argv[1:] if argv is None else argv))

    def checked(step, *step_args):
        """`step(*step_args)`; its `ValueError` is a user error: one line, exit 2."""
        try:
            return step(*step_args)
        except ValueError as e:
            parser.exit(2, f"error: {e}\n")

    try:
        if args.command == "report":
            if hasattr(signal, "pthread_sigmask"):  # blocked by __main__
                signal.pthread_sigmask(signal.SIG_UNBLOCK, SIGNALS)
            run_report(args, *checked(check_report, args))
            return 0
        stop_on_signals()
        if args.command == "search":
            verbose = int(args.verbose)
            config = checked(check_search, args)
            import_keras(verbose)
            if verbose < 2:
                warnings.filterwarnings("ignore", module="keras_tuner")
            prepared = checked(prepare_search, args, config)
            raise_if_stopped()  # a signal while TensorFlow loaded
            run_search(args, *prepared)
        else:
            checked(check_worker, args)
            import_keras(0)
            raise_if_stopped()
            return run_worker(args)
    except SearchStopped as e:
        parser.exit(1, f"error: {e}\n")
    except OSError as e:  # the machine's fault, not the user's: exit code 1
        kept = ("; completed trials are kept: continue with --resume once the "
                "cause is gone" if args.command != "report" else "")
        parser.exit(1, f"error: {os_error_text(e)}{kept}.\n")
    except KeyboardInterrupt:
        parser.exit(130, "Interrupted; completed trials are kept. Continue "
                         "with --resume.\n")
    return 0
