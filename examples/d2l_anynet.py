"""The d2l chapter's AnyNet models (seed 000) and its exercises (seed 004).

Each model is one `keras_regnet.AnyNetSpec`, built by `keras_regnet.AnyNet`. Prints each model's stage
output shapes and complexity; `--epochs N` also trains them briefly on the
offline handwritten digits, upsampled to 96x96 grayscale (`--image-size`).

    python examples/d2l_anynet.py            # the chapter's shapes at 96x96: ~20 s
    python examples/d2l_anynet.py --epochs 3 --image-size 32   # ~5 min on 2 cores
    python examples/d2l_anynet.py --models regnetx32,vionet_c --epochs 3

At 96x96, `--epochs 2` takes about 10 min on 2 CPU cores and leaves most
models near chance; the 8x8 digits hold no more detail at 96x96 than at 32x32.
"""

import argparse

import keras_regnet  # before Keras: it sets TensorFlow's CPU options
from _cli import Parser, add_seed, add_verbose, start


def d2l_anynet(depths=(4, 6), widths=(32, 80), group_widths=16,
               bottleneck_ratios=1, block_type="x"):
    """d2l's AnyNet spec: stem 32, stride-2 stages."""
    return keras_regnet.AnyNetSpec(
        depths=depths, widths=widths, group_widths=group_widths,
        bottleneck_ratios=bottleneck_ratios, block_type=block_type,
        stem_width=32)


MODELS = {
    # Seed 000: the 32-layer RegNetX of the chapter.
    "regnetx32": lambda: d2l_anynet(),
    # Exercise 1: four stages.
    "regnetx32_4stages": lambda: d2l_anynet(
        depths=(4, 6, 8, 16), widths=(32, 80, 128, 256)),
    # Exercise 2: ResNet basic blocks instead of ResNeXt blocks.
    "deresnext": lambda: d2l_anynet(depths=(5, 6), block_type="res_basic"),
    # Exercise 3: "VioNet"s, each breaking one design rule.
    "vionet_d": lambda: d2l_anynet(depths=(6, 4)),
    "vionet_c": lambda: d2l_anynet(widths=(80, 32)),
    # d2l's group width 32 on 80 channels makes 80 // 32 = 2 groups of 40.
    "vionet_g": lambda: d2l_anynet(group_widths=(16, 40)),
    # d2l's bot_mul=2 widens the bottleneck: bottleneck ratio b = 1/2.
    "vionet_b": lambda: d2l_anynet(bottleneck_ratios=(1, 0.5)),
}


def model_names(value):
    """A comma-separated list of `MODELS` keys."""
    names = value.split(",")
    unknown = [n for n in names if n not in MODELS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown model(s) {unknown}; expected names from {list(MODELS)}")
    return names


def digits(size=96):
    """The bundled digits, upsampled to `size`, split 80/20."""
    import keras
    import numpy as np
    from sklearn.datasets import load_digits

    data = load_digits()
    x = data.images[..., None].astype("float32") / 16.0
    x = keras.ops.convert_to_numpy(keras.ops.image.resize(x, (size, size)))
    rng = np.random.default_rng(0)
    order = rng.permutation(len(x))
    split = int(0.8 * len(x))
    return ((x[order[:split]], data.target[order[:split]]),
            (x[order[split:]], data.target[order[split:]]))


def main():
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=0,
                        help="also train each model for this many epochs")
    parser.add_argument("--models", type=model_names, default=list(MODELS),
                        help=f"comma-separated, from {', '.join(MODELS)} (default: all)")
    parser.add_argument("--image-size", type=int, default=96,
                        help="side of the grayscale input (the chapter's 96)")
    add_seed(parser)
    add_verbose(parser)
    args = parser.parse_args()
    if args.epochs < 0:
        parser.error(f"argument --epochs: {args.epochs} is not >= 0")
    if args.image_size < 32:
        parser.error(f"argument --image-size: {args.image_size} is not >= 32")

    keras = start(args)
    input_shape = (args.image_size, args.image_size, 1)
    data = digits(args.image_size) if args.epochs else None
    for name in args.models:
        spec = MODELS[name]()
        model = keras_regnet.AnyNet(spec, input_shape=input_shape, classes=10,
                                    include_preprocessing=False, name=name)
        cx = keras_regnet.complexity(spec, input_shape[:2], 10, input_shape[-1])
        shapes = [tuple(o.shape[1:]) for o in keras_regnet.feature_model(model).outputs]
        line = (f"{name:18s} stem {tuple(model.get_layer('stem_relu').output.shape[1:])}"
                f" stages {shapes} -> {tuple(model.output.shape[1:])}"
                f" | {cx['flops'] / 1e6:.0f} M mult-adds, {cx['params'] / 1e3:.0f} K params")
        if data:
            (x, y), val = data
            model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9),
                          loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])
            hist = model.fit(x, y, validation_data=val, epochs=args.epochs,
                             batch_size=64, verbose=0)
            line += f" | val acc {hist.history['val_accuracy'][-1]:.3f}"
        print(line)


if __name__ == "__main__":
    main()
