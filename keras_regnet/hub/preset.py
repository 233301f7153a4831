"""Writing keras-hub presets of RegNets.

    python -m keras_regnet.hub.preset RegNetY016 regnety016/ [--weights imagenet]

writes a preset folder that keras-hub's own `from_preset` loads (after
`import keras_regnet.hub`). A user error is one line `error: ...` on stderr
and exit status 2; a fault of the machine one line and exit status 1.
"""

import argparse
import sys

from keras_regnet.files import os_error_text
from keras_regnet.hub.saving import save_preset


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(2, f"error: {message}\n")


def main(argv=None):
    parser = _Parser(prog="python -m keras_regnet.hub.preset",
                     description="Write a keras-hub preset of a RegNet and its weights.")
    parser.add_argument("model", help="model name, e.g. RegNetY016")
    parser.add_argument("directory", help="preset folder to write (a new path "
                        "or a preset this command wrote)")
    parser.add_argument("--weights", default="imagenet",
                        help="'imagenet', a timm tag, a weights file, or 'none' "
                             "(default: %(default)s)")
    parser.add_argument("--classes", type=int, default=1000,
                        help="classes of the weights' top (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="the preprocessor's image side (default: the weights')")
    args = parser.parse_args(argv)
    weights = None if args.weights == "none" else args.weights
    try:
        save_preset(args.model, args.directory, weights, args.classes, args.image_size)
    except (ValueError, ImportError) as e:
        parser.exit(2, f"error: {' '.join(str(e).split())}\n")
    except OSError as e:
        parser.exit(1, f"error: {os_error_text(e)}; nothing was written.\n")
    print(f"Wrote {args.directory}: a keras-hub preset of {args.model} "
          f"({args.weights} weights); load it with `import keras_regnet.hub` and "
          f"keras_hub.models.ImageClassifier.from_preset({args.directory!r}).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
