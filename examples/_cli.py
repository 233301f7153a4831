"""What the examples' command lines share: one-line errors, `--model`,
`--weights` and `--seed`."""

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
