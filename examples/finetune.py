"""Fine-tunes a new head on a frozen pretrained RegNet backbone.

    python examples/finetune.py                     # ImageNet weights, downloaded once
    python examples/finetune.py --weights none      # offline: a random, frozen backbone
    python examples/finetune.py --weights regnetx002_pycls.h5

The data are scikit-learn's bundled handwritten digits (1,797 8x8 images,
offline), upsampled to 64x64 RGB in [0, 255]; the backbone's own
preprocessing layer takes it from there. `--weights` is `imagenet` (the
Keras 2 ImageNet weights, downloaded once into the Keras cache), a weights
file, or `none`: random backbone weights, which need no download and still
reach well above chance, though below the pretrained backbone. About 30 s on
2 CPU cores.
"""


import keras_regnet  # before Keras: it sets TensorFlow's CPU options
from _cli import Parser, add_model_and_weights, add_seed, add_verbose, start

SIZE = 64


def digits():
    """Digits as (N, SIZE, SIZE, 3) float32 in [0, 255], split 75/25."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    images = data.images[..., np.newaxis] * (255.0 / 16.0)
    images = np.repeat(images, 3, axis=-1).astype("float32")
    images = keras.ops.convert_to_numpy(
        keras.ops.image.resize(images, (SIZE, SIZE), interpolation="bilinear"))
    return train_test_split(images, data.target, test_size=0.25,
                            random_state=0, stratify=data.target)


def main():
    parser = Parser(description=__doc__.splitlines()[0])
    add_model_and_weights(parser, "RegNetX002")
    parser.add_argument("--epochs", type=int, default=20,
                        help="epochs of head training (default 20)")
    add_seed(parser)
    add_verbose(parser)
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"argument --epochs: {args.epochs} is not >= 1")

    keras = start(args)
    try:
        backbone = getattr(keras_regnet, args.model)(
            weights=args.weights, include_top=False, pooling="avg",
            input_shape=(SIZE, SIZE, 3))
    except keras_regnet.weights.DownloadError as e:
        parser.error(f"{e} Here: --weights FILE, or --weights none for "
                     "random weights.")
    except (ValueError, ImportError) as e:
        parser.error(str(e))
    backbone.trainable = False  # also keeps its BatchNorm in inference mode

    # Frozen and fed unaugmented images, the backbone gives the same features
    # in every epoch: compute them once and train only the head on them.
    x_train, x_test, y_train, y_test = digits()
    features = [backbone.predict(x, batch_size=64, verbose=0)
                for x in (x_train, x_test)]
    head = keras.Sequential([
        keras.Input(features[0].shape[1:]),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax"),
    ], name="digits")
    head.compile(optimizer=keras.optimizers.Adam(1e-3),
                 loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    head.fit(features[0], y_train, validation_data=(features[1], y_test),
             epochs=args.epochs, batch_size=64, verbose=2)

    # One model from images to digits, to save or use as any Keras model.
    model = keras.Sequential([keras.Input((SIZE, SIZE, 3)), backbone, head])
    predictions = model.predict(x_test, batch_size=64, verbose=0)
    accuracy = (predictions.argmax(axis=-1) == y_test).mean()
    weights = "random" if args.weights is None else args.weights
    print(f"test accuracy with a frozen {args.model} backbone ({weights} "
          f"weights): {accuracy:.3f} (chance: 0.100)")


if __name__ == "__main__":
    main()
