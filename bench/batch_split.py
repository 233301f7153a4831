"""Latency of the inference export with and without its batch split, by batch size.

    python bench/batch_split.py                      # RegNetX002, fp32
    python bench/batch_split.py --model RegNetY016 --dtype bfloat16

Both variants (`batch_splits=1` and 2) of one BN-folded model run in one
compiled `tf.function` each (unknown batch size, as in the SavedModel) and
are timed round-robin: the median of `--runs` runs of at least 0.3 s.
"""

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="RegNetX002")
    parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 2, 3, 8, 32])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    import tensorflow as tf

    from keras_regnet.models import inference, regnet

    source = getattr(regnet, args.model)(weights=None)
    steps = {}
    for splits in (1, 2):
        model = inference.inference_model(source, args.dtype, batch_splits=splits)
        steps[splits] = tf.function(model, input_signature=[
            tf.TensorSpec((None, *model.input_shape[1:]))])
    print(f"{args.model} {args.dtype}, ms per batch (median of {args.runs})")
    print("| batch | 1 slice | 2 slices | speed-up |\n|---:|---:|---:|---:|")
    for n in args.batches:
        x = tf.random.uniform((n, *source.input_shape[1:]), 0, 255)
        ms = {splits: [] for splits in steps}
        for step in steps.values():
            step(x).numpy()
        for _ in range(args.runs):
            for splits, step in steps.items():
                start, iterations = time.perf_counter(), 0
                while time.perf_counter() - start < 0.3:
                    step(x).numpy()
                    iterations += 1
                ms[splits].append((time.perf_counter() - start) / iterations * 1e3)
        one, two = statistics.median(ms[1]), statistics.median(ms[2])
        print(f"| {n} | {one:.2f} | {two:.2f} | {one / two:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
