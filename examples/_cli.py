"""What the examples' command lines share: one-line errors, `--model`,
`--weights`, `--seed` and `--verbose`."""

import argparse
import os


class Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit code 2, no usage dump
        self.exit(2, f"{self.prog}: error: {message}\n")


def weights_arg(value):
    """`none` -> None; `imagenet` or an existing file as given."""
    if value.lower() == "none":
        return None
    if value != "imagenet" and not os.path.isfile(value):
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a file; expected 'imagenet', 'none' or the "
            "path to a weights file")
    return value


def seed_arg(value):
    """A non-negative integer, for `keras.utils.set_random_seed`."""
    if not value.isdigit():
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number >= 0")
    return int(value)


def add_seed(parser):
    """`--seed`: short trainings swing with the initial weights; 0 makes
    every run give the same figures on a machine."""
    parser.add_argument("--seed", type=seed_arg, default=0,
                        help="seed of the initial weights and the batch order "
                        "(default 0)")


def add_model_and_weights(parser, default_model):
    """`--model NAME` (a published RegNet) and `--weights`."""
    import keras_regnet

    parser.add_argument("--model", default=default_model, metavar="NAME",
                        choices=keras_regnet.MODEL_NAMES,
                        help=f"a published RegNet (default {default_model})")
    parser.add_argument("--weights", default="imagenet", type=weights_arg,
                        help="'imagenet' (default), 'none' (random) or the "
                        "path to a weights file")


def add_verbose(parser):
    """`--verbose`: show TensorFlow's own log lines (hidden by default, as
    on `python -m tuner`)."""
    parser.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's own log lines")


def start(args):
    """Imports Keras quietly (unless `--verbose`), seeds it with `--seed`
    where the example has one; returns `keras`."""
    import importlib

    from keras_regnet import runtime

    keras = runtime.import_keras(args.verbose)
    # The builders' modules load before the seed is set, so that the first
    # model built after it is the same as in any process seeded alike.
    importlib.import_module("keras_regnet.models.regnet")
    if hasattr(args, "seed"):
        keras.utils.set_random_seed(args.seed)
    return keras
