"""`python -m tuner search|report|worker`: the design-space search from the shell.

Arguments are parsed and checked before TensorFlow is imported, so `--help`
and bad input answer at once; `report` never imports TensorFlow.
"""

import argparse
import dataclasses
import os
import signal
import sys
import warnings

from keras_regnet.design.spaces import SPACE_NAMES
from keras_regnet.files import check_target, os_error_text
from tuner import flags, folder
from tuner.config import BLOCKS, DEFAULT_ADDRESS, REGNET_RANGES, TUNERS, SearchConfig
from tuner.errors import DamagedRun, SearchStopped
from tuner.stopping import SIGNALS, raise_if_stopped, stop_on_signals

DEFAULTS = SearchConfig()


CHOICE_FLAGS = ("bottleneck_ratio", "group_width")


def _shown(name, value):
    """A range or the allowed values as typed: `12-28`, `1,2,4`."""
    return (",".join(map(str, value)) if name in CHOICE_FLAGS
            else f"{value[0]:g}-{value[1]:g}")


class _Parser(argparse.ArgumentParser):
    """Reports a usage error as one line and exit code 2."""

    def error(self, message):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


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
    s.add_argument("--space", default=str(DEFAULTS.space), choices=SPACE_NAMES,
                   help="design space: the six-parameter RegNet space, or an "
                        "AnyNetX space of the paper's progression (A: 16 free "
                        "per-stage parameters ... E: shared b and g, widths "
                        "and depths non-decreasing) (default: %(default)s)")
    s.add_argument("--dataset", default=str(DEFAULTS.dataset),
                   help="'digits' (bundled scikit-learn digits, offline), a "
                        "TensorFlow Datasets name, or a folder with one "
                        "sub-folder of images per class (default: %(default)s)")
    s.add_argument("--block", default=DEFAULTS.block,
                   choices=[*BLOCKS, *map(str.lower, BLOCKS)],
                   help="X, Y (X with squeeze-and-excitation) or, in the regnet "
                        "space, Z (RegNetZ) blocks (default: %(default)s)")
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
                       ("bottleneck_ratio", "b: allowed values (Z blocks: 0.25,0.5,1)"),
                       ("group_width", "g: allowed values")):
        s.add_argument(f"--{flag.replace('_', '-')}", default=None,
                       help=f"{what}; --space regnet only (default: "
                            f"{_shown(flag, REGNET_RANGES[flag])}, the paper's)")
    s.add_argument("--learning-rate", default=str(DEFAULTS.learning_rate),
                   help="SGD learning rate, fixed or LO-HI (log-scaled) "
                        "(default: %(default)s)")
    s.add_argument("--weight-decay", default=str(DEFAULTS.weight_decay),
                   help="weight decay, fixed or LO-HI (default: %(default)s)")
    s.add_argument("--tuner", default=DEFAULTS.tuner, choices=TUNERS,
                   help="random search, Bayesian optimisation (Gaussian process) "
                        "or Hyperband (default: %(default)s)")
    s.add_argument("--max-trials", default=str(DEFAULTS.max_trials),
                   help="models to train (Hyperband: at most) (default: %(default)s)")
    s.add_argument("--epochs", default=str(DEFAULTS.epochs),
                   help="epochs per trial (Hyperband: the most per model) "
                        "(default: %(default)s)")
    s.add_argument("--batch-size", default=str(DEFAULTS.batch_size),
                   help="training and validation batch size (default: %(default)s)")
    s.add_argument("--image-size", default=None,
                   help="training image side (default: 32 for digits, the "
                        "dataset's size for TFDS, 224 for folders)")
    s.add_argument("--out", default="runs/search",
                   help="output folder, new or empty; missing folders are "
                        "made (default: %(default)s)")
    s.add_argument("--keep-checkpoints", default=str(DEFAULTS.keep_checkpoints), metavar="N",
                   help="keep the trial checkpoints of the best N trials, for "
                        "`get_best_models`; 0 keeps all (Hyperband always "
                        "keeps all) (default: %(default)s)")
    s.add_argument("--resume", action="store_true",
                   help="continue the search in --out with the same flags, "
                        "keeping completed trials")
    s.add_argument("--seed", default=str(DEFAULTS.seed),
                   help="seed of the configurations drawn, the data order and "
                        "the initial weights (default: %(default)s)")
    s.add_argument("--mixed-precision", action="store_true",
                   help="mixed_float16 on GPU, mixed_bfloat16 on CPU")
    s.add_argument("--jit-compile", action="store_true", help="XLA-compile training")
    s.add_argument("--workers", default=str(DEFAULTS.workers),
                   help="local worker processes (0: train in this process) "
                        "(default: %(default)s)")
    s.add_argument("--trials-per-worker", default=str(DEFAULTS.trials_per_worker),
                   help="trials before a worker process is replaced "
                        "(default: %(default)s)")
    s.add_argument("--oracle-address", default=DEFAULT_ADDRESS,
                   help="HOST:PORT the chief serves on with --workers (port 0: a "
                        "free one); use 0.0.0.0:PORT for workers on other "
                        "machines (default: %(default)s)")
    s.add_argument("--max-failures", default=str(DEFAULTS.max_failures),
                   help="consecutive failed trials that stop the search; 0 "
                        "never stops (default: %(default)s)")
    s.add_argument("--verbose", default=str(DEFAULTS.verbose), choices=["0", "1", "2"],
                   help="0: one line per trial; 1: and Keras' progress bar; 2: one line "
                        "per epoch, and TensorFlow's own log messages (default: %(default)s)")

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
    """The `SearchConfig` of the search flags; `ValueError` in the flags' words."""
    def budget(text, name):
        if text.strip().lower() == "none":
            return None
        value = flags.parse_range(text, name)
        if not isinstance(value, tuple):
            raise ValueError(f"Invalid `--{name}`: {text!r}. Expected LO-HI, LO- or -HI.")
        return value

    def integer(name):
        return flags.number(getattr(args, name), name.replace("_", "-"), integer=True)

    values = {
        "space": args.space, "dataset": args.dataset, "block": args.block,
        "flops": budget(args.flops, "flops"), "params": budget(args.params, "params"),
        "learning_rate": flags.parse_range(args.learning_rate, "learning-rate"),
        "weight_decay": flags.parse_range(args.weight_decay, "weight-decay"),
        "tuner": args.tuner, "mixed_precision": args.mixed_precision,
        "jit_compile": args.jit_compile, "oracle_address": args.oracle_address,
        "verbose": int(args.verbose),
        "image_size": None if args.image_size is None else integer("image_size"),
        **{name: integer(name) for name in (
            "epochs", "batch_size", "max_trials", "seed", "workers",
            "trials_per_worker", "max_failures", "keep_checkpoints")}}
    for name in REGNET_RANGES:
        text = getattr(args, name)
        if text is not None and name in CHOICE_FLAGS:
            values[name] = flags.parse_choices(text, name.replace("_", "-"),
                                               integer=name == "group_width")
        elif text is not None:
            values[name] = flags.parse_range(text, name, integer=name in ("depth", "w0"))
    try:
        return SearchConfig(**values)
    except ValueError as e:
        raise flags.in_user_words(e, flags_typed(args)) from None


def flags_typed(args):
    """Config field -> the text the user typed for its flag."""
    fields = [f.name for f in dataclasses.fields(SearchConfig)]
    return {name: getattr(args, name) for name in fields
            if name != "dataset" and isinstance(getattr(args, name, None), str)}


def check_search(args):
    """Validates the flags and `--out` before Keras loads; `ValueError` on
    bad input. Returns the search's config."""
    config = search_config(args)
    folder.check_out(args.out, config, args.resume, ignore=("image_size",))
    return config


def prepare_search(args, config):
    """Validates the rest (dataset, design space) before any training;
    `ValueError` in the flags' words."""
    from tuner import run

    try:
        return run.prepare(config, args.out, args.resume)
    except ValueError as e:
        # A dataset's error names the file at fault, not what was typed.
        e = ValueError(str(e).replace("Invalid `dataset`", "Invalid `--dataset`", 1))
        raise flags.in_user_words(e, flags_typed(args)) from None


def check_report(args):
    """Validates the report's flags and targets; returns `(runs, samples,
    seed, top)`, `runs` a list of `(folder, rows)`."""
    from tuner import analysis

    if args.edf not in analysis.EDF_KINDS:
        raise ValueError(f"Invalid `--edf`: {args.edf!r}. Expected one of "
                         f"{', '.join(analysis.EDF_KINDS)}.")
    samples, seed, top = (flags.number(getattr(args, k), k, integer=True)
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


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(flags.attach_open_ranges(sys.argv[1:] if argv is None else argv))

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
            from tuner.analysis.report import report_runs

            report_runs(*checked(check_report, args), args.edf, args.out)
            return 0
        stop_on_signals()
        from keras_regnet import runtime
        from tuner import run

        if args.command == "search":
            verbose = int(args.verbose)
            config = checked(check_search, args)
            runtime.import_keras(verbose >= 2)
            if verbose < 2:
                warnings.filterwarnings("ignore", module="keras_tuner")
            info, hypermodel = checked(prepare_search, args, config)
            raise_if_stopped()  # a signal while TensorFlow loaded
            run.search_prepared(config, args.out, info, hypermodel)
        else:
            checked(folder.check_worker, args.out)
            runtime.import_keras(False)
            raise_if_stopped()
            from tuner.distributed import worker_main

            return worker_main(args.out)
    except SearchStopped as e:
        parser.exit(1, f"error: {e}\n")
    except DamagedRun as e:
        parser.exit(2, f"error: {e}\n")
    except OSError as e:  # the machine's fault, not the user's: exit code 1
        kept = ""
        if args.command != "report":
            started = os.path.exists(os.path.join(args.out, folder.SEARCH_JSON))
            kept = ("; completed trials are kept: continue with --resume once the "
                    "cause is gone" if started else "; run the search again once the "
                    "cause is gone")
        parser.exit(1, f"error: {os_error_text(e)}{kept}.\n")
    except KeyboardInterrupt:
        parser.exit(130, "Interrupted; completed trials are kept. Continue "
                         "with --resume.\n")
    return 0
