"""`python -m tuner search|report|worker`: the design-space search from the shell."""

import argparse
import json
import os
import re
import sys
import time
import warnings

from keras_regnet.files import atomic_path, write_json

SEARCH_JSON = "search.json"
PROJECT = "kt_project"
BEST_KERAS = "best_model.keras"
BEST_SAVEDMODEL = "best_savedmodel"
LOGS = "logs"
DEFAULT_ADDRESS = "127.0.0.1:0"
# Arguments that define a search; `--resume` must repeat them.
IDENTITY = ("dataset", "image_size", "block", "depth", "w0", "wa", "wm",
            "bottleneck_ratio", "group_width", "flops", "params",
            "learning_rate", "weight_decay", "tuner", "epochs", "batch_size")
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9}


def _number(text, name, integer=False):
    m = re.fullmatch(r"\s*([0-9.]+(?:e-?[0-9]+)?)\s*([kKmMgG]?)\s*", text)
    try:
        value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    except (AttributeError, ValueError):
        raise ValueError(f"Invalid `--{name}`: {text!r}. Expected a number "
                         "(suffixes K, M, G allowed).") from None
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
    return tuple(_number(p, name, integer) if p.strip() else None for p in parts)


def parse_choices(text, name):
    """`"1,2,4"` -> `[1, 2, 4]`; `"8"` -> `8`."""
    values = [_number(p, name, integer=True) for p in text.split(",")]
    return values[0] if len(values) == 1 else values


def build_parser():
    parser = argparse.ArgumentParser(
        prog="python -m tuner",
        description="Keras Tuner search of the RegNet design space.")
    sub = parser.add_subparsers(dest="command", required=True)

    s = sub.add_parser("search", help="run (or resume) a search",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    s.add_argument("--dataset", default="digits",
                   help="'digits' (bundled scikit-learn digits, offline), a "
                        "TensorFlow Datasets name, or a folder with one "
                        "sub-folder of images per class")
    s.add_argument("--block", default="X", choices=["X", "Y", "x", "y"])
    s.add_argument("--flops", default="-20M",
                   help="budget LO-HI in multiply-adds at --image-size "
                        "(e.g. 200M-400M; LO- or -HI for one end, 'none' for no budget)")
    s.add_argument("--params", default="-5M", help="budget LO-HI in trainable parameters")
    s.add_argument("--depth", default="12-28", help="d: LO-HI or a fixed value")
    s.add_argument("--w0", default="8-256", help="w0: LO-HI (multiples of 8) or fixed")
    s.add_argument("--wa", default="8-256", help="wa: LO-HI (log-scaled) or fixed")
    s.add_argument("--wm", default="1.5-3", help="wm: LO-HI (log-scaled) or fixed")
    s.add_argument("--bottleneck-ratio", default="1,2,4", help="b: allowed values")
    s.add_argument("--group-width", default="1,2,4,8,16,32", help="g: allowed values")
    s.add_argument("--learning-rate", default="0.1", help="SGD learning rate, fixed or LO-HI")
    s.add_argument("--weight-decay", default="5e-5", help="weight decay, fixed or LO-HI")
    s.add_argument("--tuner", default="random", choices=["random", "bayes", "hyperband"])
    s.add_argument("--max-trials", type=int, default=10)
    s.add_argument("--epochs", type=int, default=3,
                   help="epochs per trial (Hyperband: the most per model)")
    s.add_argument("--batch-size", type=int, default=32)
    s.add_argument("--image-size", type=int, default=None,
                   help="training image side (default: 32 for digits, the "
                        "dataset's size for TFDS, 224 for folders)")
    s.add_argument("--out", default="runs/search", help="output directory")
    s.add_argument("--resume", action="store_true",
                   help="continue the search in --out, keeping completed trials")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on GPU, mixed_bfloat16 on CPU")
    s.add_argument("--jit-compile", action="store_true", help="XLA-compile training")
    s.add_argument("--workers", type=int, default=0,
                   help="local worker processes (0: train in this process)")
    s.add_argument("--trials-per-worker", type=int, default=10,
                   help="trials before a worker process is replaced")
    s.add_argument("--oracle-address", default=DEFAULT_ADDRESS,
                   help="HOST:PORT the chief serves on with --workers (port 0: a "
                        "free one); use 0.0.0.0:PORT for workers on other machines")
    s.add_argument("--max-failures", type=int, default=3,
                   help="consecutive failed trials that stop the search")
    s.add_argument("--verbose", type=int, default=1, choices=[0, 1, 2],
                   help="Keras progress output inside a trial")

    r = sub.add_parser("report", help="rebuild plots and print a summary of runs")
    r.add_argument("dirs", nargs="+", metavar="DIR")
    r.add_argument("--out", default="edf_compare.png",
                   help="overlaid EDF of several runs")

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

    for name in ("max_trials", "epochs", "batch_size", "trials_per_worker"):
        if getattr(args, name) < 1:
            raise ValueError(f"Invalid `--{name.replace('_', '-')}`: "
                             f"{getattr(args, name)}. Expected an integer >= 1.")
    if args.workers < 0:
        raise ValueError(f"Invalid `--workers`: {args.workers}. Expected >= 0.")
    host, _, port = args.oracle_address.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Invalid `--oracle-address`: {args.oracle_address!r}. "
                         "Expected HOST:PORT.")
    return {
        "dataset": args.dataset, "image_size": args.image_size,
        "block": args.block.upper(),
        "depth": listify(parse_range(args.depth, "depth", integer=True)),
        "w0": listify(parse_range(args.w0, "w0", integer=True)),
        "wa": listify(parse_range(args.wa, "wa")),
        "wm": listify(parse_range(args.wm, "wm")),
        "bottleneck_ratio": parse_choices(args.bottleneck_ratio, "bottleneck-ratio"),
        "group_width": parse_choices(args.group_width, "group-width"),
        "flops": budget(args.flops, "flops"), "params": budget(args.params, "params"),
        "learning_rate": listify(parse_range(args.learning_rate, "learning-rate")),
        "weight_decay": listify(parse_range(args.weight_decay, "weight-decay")),
        "tuner": args.tuner, "epochs": args.epochs, "batch_size": args.batch_size,
        "max_trials": args.max_trials, "seed": args.seed,
        "mixed_precision": args.mixed_precision, "jit_compile": args.jit_compile,
        "workers": args.workers, "trials_per_worker": args.trials_per_worker,
        "oracle_address": args.oracle_address, "max_failures": args.max_failures,
        "verbose": args.verbose,
    }


def _tupled(v):
    return tuple(v) if isinstance(v, list) else v


def make_hypermodel(config, info):
    from tuner.hypermodel import RegNetHyperModel

    return RegNetHyperModel(
        info.input_shape, info.classes, config["block"],
        depth=_tupled(config["depth"]), w0=_tupled(config["w0"]),
        wa=_tupled(config["wa"]), wm=_tupled(config["wm"]),
        bottleneck_ratio=config["bottleneck_ratio"],
        group_width=config["group_width"], flops=_tupled(config["flops"]),
        params=_tupled(config["params"]),
        learning_rate=_tupled(config["learning_rate"]),
        weight_decay=_tupled(config["weight_decay"]),
        mixed_precision=config["mixed_precision"],
        jit_compile=True if config["jit_compile"] else "auto",
        seed=config["seed"])


def make_tuner(config, out, hypermodel, max_trials_per_process=None):
    from tuner.search import build_tuner

    return build_tuner(
        hypermodel, config["tuner"], max_trials=config["max_trials"],
        max_epochs=config["epochs"], seed=config["seed"],
        trials_csv=os.path.join(out, "trials.csv"),
        max_consecutive_failed_trials=config["max_failures"] or None,
        max_trials_per_process=max_trials_per_process,
        directory=out, project_name=PROJECT)


def prepare_out_dir(out, config, resume):
    """Checks `--out` against `--resume` before any work."""
    saved_path = os.path.join(out, SEARCH_JSON)
    if os.path.isfile(saved_path):
        with open(saved_path, encoding="utf-8") as f:
            saved = json.load(f)
        if not resume:
            raise ValueError(f"Invalid `--out`: {out!r} holds a search already. "
                             "Pass --resume to continue it, or choose another --out.")
        diff = [k for k in IDENTITY if saved.get(k) != config[k]]
        if diff:
            detail = "; ".join(f"--{k.replace('_', '-')} was {saved.get(k)!r}, "
                               f"now {config[k]!r}" for k in diff)
            raise ValueError(f"Invalid `--resume`: {out!r} holds a different "
                             f"search ({detail}). Repeat the original flags or "
                             "choose another --out.")
        return
    if os.path.isdir(out) and os.listdir(out):
        raise ValueError(f"Invalid `--out`: {out!r} is not empty and holds no "
                         f"search ({SEARCH_JSON} missing). Choose a new or empty folder.")
    if os.path.exists(out) and not os.path.isdir(out):
        raise ValueError(f"Invalid `--out`: {out!r} is a file. Expected a folder.")
    if resume:
        raise ValueError(f"Invalid `--resume`: {out!r} holds no search to resume.")


def export_best(search, out):
    """Saves the best model as `.keras` and as a SavedModel, atomically."""
    best = search.oracle.get_best_trials(1)
    if not best or best[0].status != "COMPLETED":
        return None
    with warnings.catch_warnings():
        # The trial checkpoint holds optimizer variables the fresh model lacks.
        warnings.simplefilter("ignore", UserWarning)
        model = search.load_model(best[0])
    # Saved with built optimizer variables, so that loading the file is quiet.
    model.optimizer.build(model.trainable_variables)
    with atomic_path(os.path.join(out, BEST_KERAS)) as tmp:
        model.save(tmp)
    with atomic_path(os.path.join(out, BEST_SAVEDMODEL)) as tmp:
        model.export(tmp, verbose=False)
    return best[0]


def prepare_search(args):
    """Validates everything before any training; `ValueError` on bad input."""
    from tuner.data import describe_dataset

    config = search_config(args)
    info = describe_dataset(config["dataset"], config["image_size"])
    config["image_size"] = info.input_shape[0]
    prepare_out_dir(args.out, config, args.resume)
    return config, info, make_hypermodel(config, info)


def run_search(args, config, info, hypermodel):
    out = args.out
    os.makedirs(out, exist_ok=True)
    write_json(os.path.join(out, SEARCH_JSON), config)
    search = make_tuner(config, out, hypermodel)
    search.save()
    search.oracle.write_csv()
    space = hypermodel.space
    print(f"Searching RegNet{config['block']} on {info.name} "
          f"({'x'.join(map(str, info.input_shape))}, {info.classes} classes, "
          f"{space.stem_type} stem): ranges {space.ranges}, budget "
          f"{ {k: v for k, v in space.budget.items() if v} }, {config['tuner']} "
          f"search, {config['max_trials']} trials -> {out}", flush=True)
    start = time.time()
    try:
        if config["workers"] or config["oracle_address"] != DEFAULT_ADDRESS:
            from tuner.distributed import run_chief

            run_chief(search, config, out)
        else:
            from tuner.data import load_dataset

            data = load_dataset(info, config["batch_size"], config["seed"])
            fit(search, data, config)
    finally:
        _finish(search, out, time.time() - start)


def fit(search, data, config):
    """`search.search` on a dataset; `shuffle=False`: the pipeline shuffles."""
    search.search(data.train, validation_data=data.val, epochs=config["epochs"],
                  verbose=config["verbose"], shuffle=False)


def _finish(search, out, seconds):
    from tuner import analysis

    rows = analysis.load_run(out)
    if rows:
        analysis.write_plots(out, rows)
    best = export_best(search, out)
    print(analysis.summary(out, rows))
    if best is not None:
        print(f"Search time {seconds:.0f} s. Best: trial {best.trial_id}, "
              f"{search.oracle.objective.name} {best.score:.4f} -> "
              f"{os.path.join(out, BEST_KERAS)}, {os.path.join(out, BEST_SAVEDMODEL)}/ "
              f"(SavedModel), {os.path.join(out, 'edf.png')}", flush=True)


def run_worker(args):
    from tuner.distributed import worker_main

    return worker_main(args.out)


def run_report(args):
    from tuner import analysis

    runs = []
    for d in args.dirs:
        try:
            rows = analysis.load_run(d)
        except ValueError as e:
            sys.exit(f"error: {e}")
        analysis.write_plots(d, rows)
        runs.append((os.path.basename(os.path.normpath(d)), rows))
        print(analysis.summary(d, rows))
        print(f"  plots: {os.path.join(d, analysis.EDF_PNG)}, "
              f"{os.path.join(d, analysis.PARAMS_PNG)}")
    if len(runs) > 1:
        analysis.plot_edf(runs, args.out)
        print(f"EDF overlay of {len(runs)} runs: {args.out}")


def main(argv=None):
    from tuner.search import SearchStopped

    # TensorFlow 2.21's oneDNN AVX-512 kernels corrupt the heap (SIGSEGV,
    # "double free") while training some small RegNets on CPU, e.g. stages of
    # widths (8, 24) at 32x32; the AVX2 kernels do not. oneDNN reads this
    # when it first runs a kernel, so it still applies here; a user's own
    # setting wins, and workers inherit it.
    os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "search":
            try:
                prepared = prepare_search(args)
            except ValueError as e:
                parser.exit(2, f"error: {e}\n")
            run_search(args, *prepared)
        elif args.command == "report":
            run_report(args)
        else:
            return run_worker(args)
    except SearchStopped as e:
        parser.exit(1, f"error: {e}\n")
    except KeyboardInterrupt:
        parser.exit(130, "interrupted; continue with --resume\n")
    return 0
