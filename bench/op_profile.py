"""Where one compiled step spends its time, by TensorFlow op type.

    python bench/op_profile.py                                  # RegNetX002 fp32 training step
    python bench/op_profile.py --model RegNetY016 --dtype bf16 --contestant tf-keras

Runs the benchmark's step (`bench/peers.py`, batch 32, 224x224) under
`tf.profiler` and sums the op durations of TensorFlow's inter-op threads
per op type ("(grad)": ops of the backward pass). Ops run concurrently on
those threads, so the shares are of op time, not of wall time.
"""

import argparse
import collections
import glob
import os
import sys
import tempfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

GROUPS = (("convolutions and matmuls", ("Conv2D", "MatMul")),
          ("batch norm gradient", ("FusedBatchNormGrad",)),
          ("batch norm", ("FusedBatchNorm",)),
          ("ReLU gradient", ("ReluGrad",)))


def op_times(logdir, steps):
    """`{op type: ms per step}` from the profile in `logdir`."""
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    space = xplane_pb2.XSpace()
    path, = glob.glob(os.path.join(logdir, "**", "*.xplane.pb"), recursive=True)
    with open(path, "rb") as f:
        space.ParseFromString(f.read())
    times = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name.count(":") != 1:  # not "node:OpType" (the executor's own spans)
                    continue
                op = name.rsplit(":", 1)[1]
                if name.startswith("gradient_tape/"):
                    op += " (grad)"
                times[op] += event.duration_ps / 1e9 / steps
    return times


def group_of(op):
    for group, keys in GROUPS:
        if any(key in op for key in keys):
            return group
    return "other"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="RegNetX002")
    parser.add_argument("--dtype", default="fp32", choices=("fp32", "bf16"))
    parser.add_argument("--mode", default="train", choices=("train", "infer"))
    parser.add_argument("--contestant", default="ours", choices=("ours", "tf-keras"))
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    import tensorflow as tf

    import peers

    images, labels = peers.random_batch()
    build = peers.ours if args.contestant == "ours" else peers.tf_keras_model
    runner = build(args.model, images, labels, bf16=args.dtype == "bf16")
    step = runner.train if args.mode == "train" else runner.infer
    for _ in range(3):
        step()
    with tempfile.TemporaryDirectory() as logdir:
        tf.profiler.experimental.start(logdir)
        for _ in range(args.steps):
            step()
        tf.profiler.experimental.stop()
        times = op_times(logdir, args.steps)
    total = sum(times.values())
    print(f"{args.contestant} {args.model} {args.dtype} {args.mode}: "
          f"{total:.1f} ms of op time per step")
    print("| op | ms | share |\n|---|---:|---:|")
    for op, ms in times.most_common(args.top):
        print(f"| {op} | {ms:.1f} | {100 * ms / total:.1f}% |")
    groups = collections.Counter()
    for op, ms in times.items():
        groups[group_of(op)] += ms
    print("\n| group | share |\n|---|---:|")
    for group, ms in groups.most_common():
        print(f"| {group} | {100 * ms / total:.1f}% |")


if __name__ == "__main__":
    main()
