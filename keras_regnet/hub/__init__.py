"""RegNet as a keras-hub citizen: backbone, classifier, presets.

`import keras_regnet.hub` registers the classes, after which keras-hub's own
`keras_hub.models.Backbone.from_preset(dir)` and
`keras_hub.models.ImageClassifier.from_preset(dir)` load RegNet presets.
Needs keras-hub: `pip install "keras-regnet[hub]"`.
"""

from keras_regnet.runtime import native_logs_hidden

try:
    with native_logs_hidden():  # TensorFlow's start-up lines, if it loads now
        import keras_hub  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the install
    raise ImportError(
        "keras_regnet.hub needs keras-hub: pip install \"keras-regnet[hub]\" "
        f"({e})") from None

from keras_regnet.hub.backbone import RegNetBackbone
from keras_regnet.hub.classifier import (RegNetImageClassifier,
                                         RegNetImageClassifierPreprocessor,
                                         RegNetImageConverter)
from keras_regnet.hub.saving import save_preset

__all__ = ["RegNetBackbone", "RegNetImageClassifier",
           "RegNetImageClassifierPreprocessor", "RegNetImageConverter",
           "save_preset"]
