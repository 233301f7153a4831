"""Classifies an image with a pretrained RegNet and prints the top 5.

    python examples/classify.py elephant.jpg
    python examples/classify.py elephant.jpg --model RegNetY016 --weights regnety016_pycls.h5

`--weights` is `imagenet` (the Keras 2 ImageNet weights, downloaded once
into the Keras cache) or a weights file, e.g. one written by
`python -m keras_regnet.convert`. The model preprocesses its own input, as
its weights expect: pass plain RGB pixels in [0, 255].
"""

import argparse

import numpy as np
from keras.utils import img_to_array, load_img

import keras_regnet


def center_crop(image, size, crop_fraction=0.875):
    """Resizes the short side to `size / crop_fraction`, crops the center."""
    scale = size / crop_fraction / min(image.size)
    w, h = round(image.size[0] * scale), round(image.size[1] * scale)
    image = image.resize((w, h), resample=3)  # bicubic
    left, top = (w - size) // 2, (h - size) // 2
    return image.crop((left, top, left + size, top + size))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("image", help="image file (JPEG, PNG, ...)")
    parser.add_argument("--model", default="RegNetY016",
                        choices=keras_regnet.MODEL_NAMES)
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet' or the path to a weights file")
    parser.add_argument("--size", type=int, default=224, help="input size")
    args = parser.parse_args()

    model = getattr(keras_regnet, args.model)(
        weights=args.weights, input_shape=(args.size, args.size, 3))
    image = center_crop(load_img(args.image, color_mode="rgb"), args.size)
    x = img_to_array(image)[np.newaxis]
    predictions = model.predict(x, verbose=0)
    for _, label, score in keras_regnet.decode_predictions(predictions, top=5)[0]:
        print(f"{score:7.2%}  {label}")


if __name__ == "__main__":
    main()
