"""Resolving and loading weights (minimal; extended by the weights issue)."""

import os


class WeightsPlan:
    """What a `weights` argument needs from the model and how to load it.

    Attributes:
        padding: `"same"` (Keras convention) or `"symmetric"` (PyTorch).
        preprocessing: `"rescale"` (x / 255) or `"imagenet"` (then ImageNet
            mean/std normalisation).
        channels: input channels the weights require, or None.
    """

    def __init__(self, path=None, padding="same", preprocessing="rescale",
                 channels=None):
        self.path = path
        self.padding = padding
        self.preprocessing = preprocessing
        self.channels = channels

    def load(self, model):
        if self.path is not None:
            model.load_weights(self.path)


def resolve(weights, model_name=None, include_top=True, classes=1000):
    """Checks a `weights` argument and returns its `WeightsPlan`."""
    if weights is None:
        return WeightsPlan()
    if isinstance(weights, (str, os.PathLike)) and weights != "imagenet":
        if not os.path.exists(weights):
            raise ValueError(
                f"Invalid `weights`: {weights!r}. The file does not exist; "
                "expected None, 'imagenet' or the path to a weights file.")
        return WeightsPlan(path=os.fspath(weights))
    raise ValueError(
        f"Invalid `weights`: {weights!r}. Expected None or the path to a "
        "weights file.")
