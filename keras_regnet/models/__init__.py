"""Keras 3 builders of AnyNet and RegNet models."""


def load_model(filepath, **kwargs):
    """Loads a `.keras` file holding keras_regnet layers.

    `keras.saving.load_model` with this package's layers and optimizer
    registered first, so that a fresh process can load a saved model or a
    search's `best_model.keras`.

    Args:
        filepath: path of the `.keras` file.
        **kwargs: passed on to `keras.saving.load_model` (`compile`,
            `safe_mode`, `custom_objects`).

    Returns:
        A Keras model.
    """
    import keras

    import keras_regnet.models.layers  # noqa: F401 - registers the layers
    import keras_regnet.training  # noqa: F401 - registers the optimizer

    return keras.saving.load_model(filepath, **kwargs)
