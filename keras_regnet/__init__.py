"""RegNetX/Y for Keras 3, generated from the six RegNet parameters.

Importing the package is cheap: the design math (`keras_regnet.design`) is
plain Python, and Keras (with its backend) loads when a model-building name
such as `keras_regnet.RegNetY016` is first used.
"""

import importlib
import os
import platform
import sys


def _prefer_onednn():
    # TensorFlow reads this once, when it is imported. It turns oneDNN on by
    # default only on CPUs with AVX-512 VNNI/BF16 or AMX; elsewhere (AVX2
    # CPUs, AMD EPYC among them) grouped convolutions then have no correct
    # native gradient and train 2x slower (see NativeConv2D). A user's own
    # setting wins.
    if ("tensorflow" not in sys.modules
            and platform.machine().lower() in ("x86_64", "amd64")):
        os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


_prefer_onednn()

from keras_regnet.design import (AnyNetSpec, complexity,  # noqa: E402
                                 design_space, fit_regnet, regnet_spec, scale,
                                 zoo_spec)
from keras_regnet.design.zoo import FAMILY_NAMES, MODEL_NAMES  # noqa: E402

__version__ = "0.2.0"

# Names that need Keras, imported on first use.
_LAZY = {
    "AnyNet": "keras_regnet.models.anynet",
    "feature_model": "keras_regnet.models.anynet",
    "export_inference": "keras_regnet.models.inference",
    "inference_model": "keras_regnet.models.inference",
    "load_model": "keras_regnet.models",
    "DropPath": "keras_regnet.models.layers",
    "NativeConv2D": "keras_regnet.models.layers",
    "RegNet": "keras_regnet.models.regnet",
    "preprocess_input": "keras_regnet.models.regnet",
    "decode_predictions": "keras_regnet.models.regnet",
    **{name: "keras_regnet.models.regnet" for name in (*MODEL_NAMES, *FAMILY_NAMES)},
}
_SUBPACKAGES = ("design", "files", "models", "weights")

__all__ = ["AnyNetSpec", "MODEL_NAMES", "FAMILY_NAMES", "complexity",
           "design_space", "fit_regnet", "regnet_spec", "scale", "zoo_spec", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    if name in _SUBPACKAGES:
        return importlib.import_module(f"keras_regnet.{name}")
    raise AttributeError(f"module 'keras_regnet' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY, *_SUBPACKAGES})
