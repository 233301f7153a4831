"""Grouped convolutions on a CPU without oneDNN: each formulation against
Keras' XLA path and against oneDNN's native kernel.

    python bench/grouped_conv.py           # the 3x3 grouped convs of RegNetX002, RegNetY016, RegNetX032 at 224 and of small searched models
    python bench/grouped_conv.py --quick   # fewer layers

Times one training step of one layer (forward, and the gradients of input
and kernel; batch 32) for: Keras' own path (an XLA-compiled function, what
`keras.layers.Conv2D` runs on TensorFlow without oneDNN), the two portable
formulations of `keras_regnet.models.layers.grouped_conv` (a depthwise conv
whose products are summed per group; one conv per group) with oneDNN off,
and TensorFlow's native op with oneDNN on. Each setting runs in its own
process (TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once), all from this
script. `chosen` is the formulation `grouped_conv` picks for the layer.
"""

import argparse
import json
import os
import subprocess
import sys
import time

# (spatial size, channels, group width): the stage widths of the zoo models
# at 224x224 and of small RegNets searched at 32x32.
LAYERS = [(56, 24, 8), (28, 56, 8), (14, 152, 8), (7, 368, 8),
          (56, 48, 24), (28, 120, 24), (14, 336, 24), (7, 888, 24),
          (56, 96, 48), (14, 432, 48),
          (16, 16, 1), (16, 32, 2), (8, 64, 4), (8, 96, 2), (8, 128, 8),
          (4, 256, 32)]
QUICK = [(56, 24, 8), (14, 152, 8), (28, 120, 24), (16, 32, 2), (8, 64, 4)]
BATCH = 32


def child(formulations, layers, keras_steps):
    """Prints `{layer: {formulation: ms}}` as JSON for this process's oneDNN."""
    import numpy as np
    import tensorflow as tf
    from keras import ops

    from keras_regnet.models import layers as regnet_layers

    def conv_fn(name, groups):
        if name == "keras":
            return lambda x, k: ops.conv(x, k, padding="same")
        if name == "native":
            return lambda x, k: tf.nn.convolution(x, k, padding="SAME")
        return lambda x, k: regnet_layers.grouped_conv(x, k, (1, 1), "SAME", groups,
                                                       formulation=name)

    rng = np.random.default_rng(0)
    results = {}
    for size, channels, g in layers:
        x = tf.constant(rng.standard_normal((BATCH, size, size, channels)), tf.float32)
        k = tf.constant(rng.standard_normal((3, 3, g, channels)) * 0.1, tf.float32)
        row = {}
        for name in formulations:
            conv = conv_fn(name, channels // g)

            @tf.function
            def step(x, k, conv=conv):
                with tf.GradientTape() as tape:
                    tape.watch([x, k])
                    y = conv(x, k)
                    loss = tf.reduce_sum(y * y)
                return tape.gradient(loss, [x, k])

            [t.numpy() for t in step(x, k)]
            runs, start = 0, time.perf_counter()
            while runs < (keras_steps if name == "keras" else 3) or (
                    name != "keras" and time.perf_counter() - start < 0.5):
                [t.numpy() for t in step(x, k)]
                runs += 1
            row[name] = 1000 * (time.perf_counter() - start) / runs
        results[f"{size}x{size}x{channels}/g{g}"] = row
    print(json.dumps(results))


def run_child(onednn, formulations, layers, keras_steps):
    env = dict(os.environ, TF_ENABLE_ONEDNN_OPTS=onednn, TF_CPP_MIN_LOG_LEVEL="3")
    proc = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(
            [formulations, layers, keras_steps])],
        env=env, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*json.loads(args.child))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from keras_regnet import runtime
    from keras_regnet.models.layers import portable_formulation

    layers = QUICK if args.quick else LAYERS
    off = run_child("0", ["keras", "depthwise", "split"], layers, 1)
    on = run_child("1", ["native"], layers, 1)
    name, isa = runtime.cpu_model()
    print(f"Machine: {name} ({', '.join(isa)}), {os.cpu_count()} cores. ms per "
          f"training step of one 3x3 grouped conv, batch {BATCH}.\n")
    print("| layer (HxWxC/group width) | Keras XLA path | depthwise + sum | "
          "conv per group | chosen | Keras / chosen | oneDNN native | chosen / "
          "native |\n|---|---:|---:|---:|---|---:|---:|---:|")
    for (_, _, g), key in zip(layers, off):
        row = off[key]
        chosen = portable_formulation(g)
        print(f"| {key} | {row['keras']:.1f} | {row['depthwise']:.1f} | "
              f"{row['split']:.1f} | {chosen} | {row['keras'] / row[chosen]:.1f}x | "
              f"{on[key]['native']:.1f} | {row[chosen] / on[key]['native']:.2f}x |")


if __name__ == "__main__":
    main()
