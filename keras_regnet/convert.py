"""Converts a PyTorch RegNet checkpoint into a Keras weights file.

    python -m keras_regnet.convert SRC DST --model RegNetY016 [--source pycls]

SRC is a pycls `.pyth`, or a torchvision/timm `.pth` or `.safetensors`
state dict. Load the result with `keras_regnet.RegNetY016(weights=DST)`.
"""

import argparse
import sys

from keras_regnet.weights import convert


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m keras_regnet.convert",
        description="Convert a pycls, torchvision or timm RegNet checkpoint "
                    "into a Keras weights file.")
    parser.add_argument("src", help="checkpoint (.pyth, .pth, .safetensors)")
    parser.add_argument("dst", help="Keras weights file to write (.h5)")
    parser.add_argument(
        "--model", help="published model the checkpoint is for, e.g. "
        "RegNetY016; leave out to convert the checkpoint's own layout")
    parser.add_argument("--source", choices=("pycls", "torchvision", "timm"),
                        help="checkpoint source (default: detect from keys)")
    args = parser.parse_args(argv)
    try:
        meta = convert(args.src, args.dst, model=args.model, source=args.source)
    except (ValueError, ImportError) as e:
        parser.exit(2, f"error: {e}\n")
    model = meta["model"] or "keras_regnet.AnyNet(keras_regnet.weights.file_spec(DST))"
    print(f"Wrote {args.dst}: {meta['source']} weights for {model}, "
          f"{meta['classes'] or 'no'} top classes; it expects RGB input "
          "with ImageNet mean/std (included in the model).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
