"""Saving a published model with its weights as a keras-hub preset."""

from keras_regnet.files import atomic_path, check_target
from keras_regnet.hub.classifier import RegNetImageClassifier


def save_preset(model, directory, weights="imagenet", classes=1000, image_size=None):
    """Writes a keras-hub preset of a published model with its weights.

    The folder holds keras-hub's `config.json` (a `RegNetBackbone`),
    `task.json` (a `RegNetImageClassifier` with its preprocessor, which
    resizes to `image_size` and scales as the weights need), the weights
    and `preprocessor.json`. It is written whole (a new path, or a preset
    this function wrote before, which is replaced).

    Example:

    ```python
    keras_regnet.hub.save_preset("RegNetY016", "regnety016")
    classifier = keras_hub.models.ImageClassifier.from_preset("regnety016")
    backbone = keras_hub.models.Backbone.from_preset("regnety016")
    ```

    Args:
        model: a model name, e.g. `"RegNetY016"`.
        directory: the preset folder to write.
        weights: `"imagenet"`, a timm tag, the path to a weights file with
            a top, or None.
        classes: the classes of the weights' top.
        image_size: the preprocessor's image side; None: the weights'.

    Returns:
        The `RegNetImageClassifier` that was saved.
    """
    check_target(directory, "directory")
    classifier = RegNetImageClassifier.from_weights(model, weights, classes, image_size)
    with atomic_path(directory, "directory") as tmp:
        classifier.save_to_preset(tmp)
    return classifier
