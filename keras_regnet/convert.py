"""Converts a PyTorch RegNet checkpoint into a Keras weights file.

    python -m keras_regnet.convert SRC DST --model RegNetY016 [--source pycls]

SRC is a pycls `.pyth`, or a torchvision/timm `.pth` or `.safetensors`
state dict. Load the result with `keras_regnet.RegNetY016(weights=DST)`.
DST must be a new path or a file this command wrote before. Every user
error is one line `error: ...` on stderr and exit status 2; a fault of the
machine (a full disk, a read-only folder) one line and exit status 1.
"""

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def main(argv=None):
    parser = _Parser(
        prog="python -m keras_regnet.convert",
        description="Convert a pycls, torchvision or timm RegNet checkpoint "
                    "into a Keras weights file.")
    parser.add_argument("src", help="checkpoint (.pyth, .pth, .safetensors)")
    parser.add_argument("dst", help="Keras weights file to write (.h5): a new "
                        "path or one this command wrote")
    parser.add_argument(
        "--model", help="model the checkpoint is for, e.g. RegNetY016 or "
        "RegNetZ040; leave out to convert an X/Y checkpoint's own layout")
    parser.add_argument("--source", choices=("pycls", "torchvision", "timm"),
                        help="checkpoint source (default: detect from keys)")
    args = parser.parse_args(argv)
    # Imported after parsing, so that --help and usage errors stay instant.
    from keras_regnet.files import os_error_text
    from keras_regnet.weights import convert

    try:
        meta = convert(args.src, args.dst, model=args.model, source=args.source)
    except (ValueError, ImportError) as e:
        parser.exit(2, f"error: {' '.join(str(e).split())}\n")
    except OSError as e:  # the machine's fault (a full disk ...), not the user's
        parser.exit(1, f"error: {os_error_text(e)}; nothing was written.\n")
    model = meta["model"] or "keras_regnet.AnyNet(keras_regnet.weights.file_spec(DST))"
    print(f"Wrote {args.dst}: {meta['source']} weights for {model}, "
          f"{meta['classes'] or 'no'} top classes; it expects RGB input "
          "with ImageNet mean/std (included in the model).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
