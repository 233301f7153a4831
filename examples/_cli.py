"""What the examples' command lines share: one-line errors, `--model` and
`--weights`."""

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


def add_model_and_weights(parser, default_model):
    """`--model NAME` (a published RegNet) and `--weights`."""
    import keras_regnet

    parser.add_argument("--model", default=default_model, metavar="NAME",
                        choices=keras_regnet.MODEL_NAMES,
                        help=f"a published RegNet (default {default_model})")
    parser.add_argument("--weights", default="imagenet", type=weights_arg,
                        help="'imagenet' (default), 'none' (random) or the "
                        "path to a weights file")
