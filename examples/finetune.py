"""Fine-tunes a new head on a frozen pretrained RegNet backbone.

    python examples/finetune.py                       # ImageNet weights
    python examples/finetune.py --weights regnetx002_pycls.h5

The data are scikit-learn's bundled handwritten digits (1,797 8x8 images,
offline), upsampled to 64x64 RGB in [0, 255]; the backbone's own
preprocessing layer takes it from there. Takes well under a minute on a CPU.
"""

import argparse

import keras
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import keras_regnet

SIZE = 64


def digits():
    """Digits as (N, SIZE, SIZE, 3) float32 in [0, 255], and their labels."""
    data = load_digits()
    images = data.images[..., np.newaxis] * (255.0 / 16.0)
    images = np.repeat(images, 3, axis=-1).astype("float32")
    images = keras.ops.convert_to_numpy(
        keras.ops.image.resize(images, (SIZE, SIZE), interpolation="bilinear"))
    return train_test_split(images, data.target, test_size=0.25,
                            random_state=0, stratify=data.target)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="RegNetX002",
                        choices=keras_regnet.MODEL_NAMES)
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' or the path to a weights file")
    parser.add_argument("--epochs", type=int, default=5)
    args = parser.parse_args()

    x_train, x_test, y_train, y_test = digits()
    backbone = getattr(keras_regnet, args.model)(
        weights=args.weights, include_top=False, pooling="avg",
        input_shape=(SIZE, SIZE, 3))
    backbone.trainable = False  # also keeps its BatchNorm in inference mode

    inputs = keras.Input((SIZE, SIZE, 3))
    features = backbone(inputs, training=False)
    features = keras.layers.BatchNormalization(momentum=0.9)(features)
    features = keras.layers.Dropout(0.2)(features)
    outputs = keras.layers.Dense(10, activation="softmax", name="digits")(features)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_test, y_test),
              epochs=args.epochs, batch_size=64, verbose=2)
    _, accuracy = model.evaluate(x_test, y_test, verbose=0)
    print(f"test accuracy with a frozen {args.model} backbone: {accuracy:.3f}")


if __name__ == "__main__":
    main()
