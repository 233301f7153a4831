"""The d2l chapter's AnyNet models (seed 000) and its exercises (seed 004).

Each model is one `keras_regnet.AnyNetSpec`, built by `keras_regnet.AnyNet`. Prints each model's stage
output shapes and complexity; `--epochs N` also trains them briefly on the
offline handwritten digits, upsampled to 96x96 grayscale.

    python examples/d2l_anynet.py [--epochs 2]
"""

import argparse

import keras
import numpy as np

import keras_regnet

INPUT_SHAPE = (96, 96, 1)


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


def digits(size=96):
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=0)
    args = parser.parse_args()
    data = digits() if args.epochs else None
    for name, make in MODELS.items():
        spec = make()
        model = keras_regnet.AnyNet(spec, input_shape=INPUT_SHAPE, classes=10,
                                    include_preprocessing=False, name=name)
        cx = keras_regnet.complexity(spec, INPUT_SHAPE[:2], 10, INPUT_SHAPE[-1])
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
