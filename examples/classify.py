"""Classifies an image with a pretrained RegNet and prints the top 5.

    python examples/classify.py elephant.jpg
    python examples/classify.py --demo                   # a generated image
    python examples/classify.py --demo --weights none    # offline, random weights (seeded)
    python examples/classify.py elephant.jpg --model RegNetY016 --weights regnety016_pycls.h5

`--weights` is `imagenet` (the Keras 2 ImageNet weights, downloaded once
into the Keras cache), a weights file, e.g. one written by
`python -m keras_regnet.convert`, or `none`: random weights, which need no
download and print class numbers instead of (meaningless) names. `--demo`
classifies a generated test pattern instead of a file. The model
preprocesses its own input, as its weights expect: pass plain RGB pixels in
[0, 255].
"""

import sys

import numpy as np
from PIL import Image

import keras_regnet  # before Keras: it sets TensorFlow's CPU options
from _cli import Parser, add_model_and_weights, add_seed, add_verbose, start


def demo_image(size=256):
    """A test pattern: colour gradients under concentric rings."""
    y, x = np.mgrid[:size, :size] / size
    rings = 0.5 + 0.5 * np.sin(60 * np.hypot(x - 0.5, y - 0.5))
    return Image.fromarray((np.stack([x, y, rings], -1) * 255).astype("uint8"))


def center_crop(image, size, crop_fraction=0.875):
    """Resizes the short side to `size / crop_fraction`, crops the center."""
    scale = size / crop_fraction / min(image.size)
    w, h = round(image.size[0] * scale), round(image.size[1] * scale)
    image = image.resize((w, h), resample=Image.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def top5(predictions, named):
    """`(label, score)` of the 5 best classes: ImageNet names if `named`
    (their list is downloaded once, like the weights), else class numbers."""
    if named:
        try:
            return [(label, score) for _, label, score in
                    keras_regnet.decode_predictions(predictions, top=5)[0]]
        except Exception as e:  # Keras' download raises a plain Exception
            print(f"(no class names: {e}; showing class numbers)", file=sys.stderr)
    scores = predictions[0]
    return [(f"class {i}", scores[i]) for i in np.argsort(scores)[::-1][:5]]


def main():
    parser = Parser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("image", nargs="?", help="image file (JPEG, PNG, ...)")
    source.add_argument("--demo", action="store_true",
                        help="classify a generated test pattern instead")
    add_model_and_weights(parser, "RegNetY016")
    parser.add_argument("--size", type=int, default=224,
                        help="input size (224 with the ImageNet weights)")
    add_seed(parser)
    add_verbose(parser)
    args = parser.parse_args()
    try:
        image = (demo_image() if args.demo else Image.open(args.image)).convert("RGB")
    except OSError as e:
        parser.error(f"cannot read the image {args.image!r}: "
                     f"{e.strerror or e}")

    start(args)
    try:
        model = getattr(keras_regnet, args.model)(
            weights=args.weights, input_shape=(args.size, args.size, 3))
    except keras_regnet.weights.DownloadError as e:
        parser.error(f"{e} Here: --weights FILE, or --weights none for "
                     "random weights.")
    except (ValueError, ImportError) as e:
        parser.error(str(e))
    image = center_crop(image, args.size)
    predictions = model.predict(np.asarray(image, "float32")[np.newaxis],
                                verbose=0)
    rows = top5(predictions, named=args.weights is not None)
    weights = (f"random weights (--weights none, seed {args.seed}): the "
               "scores mean nothing" if args.weights is None
               else f"weights {args.weights}")
    print(f"{args.model} with {weights}; top 5 of "
          f"{'the demo image' if args.demo else args.image}:")
    for label, score in rows:
        print(f"{score:7.2%}  {label}")


if __name__ == "__main__":
    main()
