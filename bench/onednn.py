"""RegNetX002 in the environments a user can have: does the fast path hold?

    python bench/onednn.py            # 3 timed runs each, about 6 minutes on 2 cores
    python bench/onednn.py --runs 1 --environments default forced

Each environment is a fresh process (TensorFlow reads its oneDNN setting
once, at import), started from this script, timing inference and one SGD
training step of RegNetX002 (batch 32, 224x224, fp32, `bench/peers.py`):

- default: the user sets nothing and imports keras_regnet (which turns
  oneDNN on before TensorFlow loads, on x86);
- forced: `TF_ENABLE_ONEDNN_OPTS=1`;
- tensorflow first: TensorFlow imported before keras_regnet, so oneDNN is
  what TensorFlow decides (on by itself only with AVX-512 VNNI/BF16 or AMX;
  where off, grouped convolutions take keras_regnet's portable path);
- keras xla path: as "tensorflow first", with grouped convolutions through
  Keras' own XLA-compiled path (keras_regnet 0.1's fallback), whatever path
  this CPU would take (one training step only: it can take tens of seconds).

Ratios are against "forced".
"""

import argparse
import json
import os
import subprocess
import sys
import time

ENVIRONMENTS = ("default", "forced", "tensorflow first", "keras xla path")


def child(environment, runs):
    if environment in ("tensorflow first", "keras xla path"):
        import tensorflow  # noqa: F401 - before keras_regnet
    import keras_regnet  # noqa: F401
    import peers
    from keras_regnet import runtime
    from keras_regnet.models import layers

    if environment == "keras xla path":  # whatever this CPU's path would be
        import keras

        layers.NativeConv2D.convolution_op = keras.layers.Conv2D.convolution_op
    images, labels = peers.random_batch()
    runner = peers.ours("RegNetX002", images, labels)
    result = {"runtime": runtime.describe()}
    if environment == "keras xla path":
        result["runtime"]["grouped_conv"] = "Keras (XLA)"
    for mode in ("infer", "train"):
        step = getattr(runner, mode)
        step()
        repeats = 1 if environment == "keras xla path" and mode == "train" else runs
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            iterations = 0
            while iterations < 2 or time.perf_counter() - start < 2:
                step()
                iterations += 1
                if repeats == 1:
                    break
            times.append((time.perf_counter() - start) / iterations)
        result[mode] = peers.BATCH / min(times)
    print(json.dumps(result))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--environments", nargs="+", choices=ENVIRONMENTS,
                        default=list(ENVIRONMENTS), metavar="NAME",
                        help=f"some of {', '.join(map(repr, ENVIRONMENTS))} (default: all)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    here = os.path.dirname(os.path.abspath(__file__))
    if args.child:
        sys.path[:0] = [here, os.path.dirname(here)]
        return child(args.child, args.runs)
    results = {}
    for environment in args.environments:
        env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        if environment == "forced":
            env["TF_ENABLE_ONEDNN_OPTS"] = "1"
        proc = subprocess.run([sys.executable, __file__, "--child", environment,
                               "--runs", str(args.runs)], env=env,
                              capture_output=True, text=True)
        if proc.returncode:
            sys.exit(f"{environment}: failed\n{proc.stderr[-3000:]}")
        results[environment] = json.loads(proc.stdout.strip().splitlines()[-1])
        print(f"{environment}: {results[environment]}", flush=True)
    rt = next(iter(results.values()))["runtime"]
    print(f"\nMachine: {rt['cpu']}; Keras {rt['keras']}, {rt['backend']}. "
          "RegNetX002, batch 32, 224x224, fp32, img/s.\n")
    print("| environment | oneDNN | grouped convs | inference | training | "
          "training / forced |\n|---|---|---|---:|---:|---:|")
    forced = results.get("forced", {}).get("train")
    for environment, r in results.items():
        ratio = f"{r['train'] / forced:.2f}x" if forced else "-"
        print(f"| {environment} | {'on' if r['runtime']['onednn'] else 'off'} | "
              f"{r['runtime']['grouped_conv']} | {r['infer']:.1f} | "
              f"{r['train']:.2f} | {ratio} |")


if __name__ == "__main__":
    main()
