"""The keras-hub image classification task on a `RegNetBackbone`."""

import keras
import keras_hub

from keras_regnet.design.checks import check_choice
from keras_regnet.hub import timm_layout
from keras_regnet.hub.backbone import RegNetBackbone
from keras_regnet.models.anynet import IMAGENET_MEAN, IMAGENET_STD

# A weights source's input convention (`WeightsPlan.preprocessing`) as
# `ImageConverter(scale, offset)`: `x * scale + offset` on [0, 255] pixels.
CONVENTIONS = {
    "rescale": {"scale": 1 / 255, "offset": None},
    "imagenet": {"scale": [1 / (255 * s) for s in IMAGENET_STD],
                 "offset": [-m / s for m, s in zip(IMAGENET_MEAN, IMAGENET_STD)]},
}


@keras.saving.register_keras_serializable(package="keras_regnet")
class RegNetImageConverter(keras_hub.layers.ImageConverter):
    """Resizes and scales images for a `RegNetBackbone`.

    `RegNetImageConverter.for_weights("imagenet", image_size=(224, 224))`
    gives the scaling a weights source was trained with: `"rescale"`
    (Keras 2's ImageNet weights: `x / 255`) or `"imagenet"` (pycls,
    torchvision and timm weights: `x / 255`, then ImageNet mean/std).
    """

    backbone_cls = RegNetBackbone

    @classmethod
    def for_weights(cls, preprocessing, image_size=None, **kwargs):
        check_choice("preprocessing", preprocessing, tuple(CONVENTIONS))
        return cls(image_size=image_size, **CONVENTIONS[preprocessing], **kwargs)


@keras.saving.register_keras_serializable(package="keras_regnet")
class RegNetImageClassifierPreprocessor(keras_hub.models.ImageClassifierPreprocessor):
    """keras-hub's image classifier preprocessing with a `RegNetImageConverter`."""

    backbone_cls = RegNetBackbone
    image_converter_cls = RegNetImageConverter


@keras.saving.register_keras_serializable(package="keras_regnet")
class RegNetImageClassifier(timm_layout.TimmLayoutPresets,
                            keras_hub.models.ImageClassifier):
    """keras-hub's `ImageClassifier` on a `RegNetBackbone`.

    Example:

    ```python
    keras_regnet.hub.save_preset("RegNetY016", "regnety016", weights="imagenet")
    classifier = keras_hub.models.ImageClassifier.from_preset("regnety016")
    ```
    """

    backbone_cls = RegNetBackbone
    preprocessor_cls = RegNetImageClassifierPreprocessor

    @classmethod
    def from_weights(cls, model, weights="imagenet", classes=1000, image_size=None,
                     **kwargs):
        """The classifier of a published model with its weights: outputs
        equal to `getattr(keras_regnet, model)(weights=weights,
        classifier_activation=None)`'s on the same images.

        Args:
            model: a model name, e.g. `"RegNetY016"`.
            weights: `"imagenet"`, a timm tag, the path to a weights file
                with a top, or None.
            classes: the classes of the weights' top.
            image_size: the side the preprocessor resizes images to; None:
                the side the weights were trained at.
            **kwargs: `ImageClassifier` arguments (`activation`, ...).
        """
        backbone, source = RegNetBackbone.from_weights(model, weights, classes)
        size = image_size or source.plan.input_size
        converter = RegNetImageConverter.for_weights(source.plan.preprocessing,
                                                     image_size=(size, size))
        classifier = cls(backbone=backbone, num_classes=classes,
                         preprocessor=RegNetImageClassifierPreprocessor(converter),
                         **kwargs)
        classifier.get_layer("predictions").set_weights(
            source.get_layer("predictions").get_weights())
        return classifier

    @classmethod
    def from_timm(cls, checkpoint, **kwargs):
        """The classifier of a `timm_layout.TimmCheckpoint`."""
        return cls.from_weights(checkpoint.model, checkpoint.weights, checkpoint.classes,
                                checkpoint.image_size, **kwargs)
