"""Single-image latency of a RegNet in each deployment format, on this CPU.

    python bench/deploy.py                                  # RegNetX002, RegNetY016
    python bench/deploy.py --models RegNetY016 --runs 3

Each model (random weights, 224 px, batch 1) runs as the Keras model (a
compiled `tf.function` of it), as the SavedModel `model.export` writes
(reloaded), as TFLite (TensorFlow's converter and interpreter, default
threads) and as ONNX (tf2onnx, onnxruntime's CPU provider; left out if the
deploy extra is not installed). The formats are timed round-robin: the
median of `--runs` runs of at least `--min-run` seconds each; the ratio is
Keras' latency over the format's.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def runners(name, folder):
    """format -> a callable running one image, for the model `name`."""
    import tensorflow as tf

    from keras_regnet.models import regnet

    model = getattr(regnet, name)(weights=None, classifier_activation=None)
    saved = os.path.join(folder, name)
    model.export(saved, verbose=False)
    keras_step = tf.function(model, input_signature=[tf.TensorSpec((1, 224, 224, 3))])
    loaded = tf.saved_model.load(saved)
    interpreter = tf.lite.Interpreter(
        model_content=tf.lite.TFLiteConverter.from_saved_model(saved).convert())
    interpreter.allocate_tensors()
    tflite_in = interpreter.get_input_details()[0]["index"]
    tflite_out = interpreter.get_output_details()[0]["index"]

    def tflite(x):
        interpreter.set_tensor(tflite_in, x)
        interpreter.invoke()
        return interpreter.get_tensor(tflite_out)

    out = {"Keras": lambda x: keras_step(x).numpy(),
           "SavedModel": lambda x: loaded.serve(x).numpy(), "TFLite": tflite}
    try:
        import onnxruntime
    except ImportError:
        return out
    onnx = os.path.join(folder, f"{name}.onnx")
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", saved,
                    "--output", onnx, "--opset", "17"], check=True, capture_output=True)
    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name
    out["ONNX Runtime"] = lambda x: session.run(None, {feed: x})[0]
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["RegNetX002", "RegNetY016"])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--min-run", type=float, default=0.5)
    args = parser.parse_args(argv)
    import numpy as np

    x = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype("float32")
    print(f"ms per image, batch 1, 224 px (median of {args.runs})")
    print("| model | format | ms | speed vs Keras |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            formats = runners(name, folder)
            ms = {fmt: [] for fmt in formats}
            reference = formats["Keras"](x)
            for fmt, run in formats.items():  # each computes the same network
                np.testing.assert_allclose(run(x), reference, rtol=1e-3, atol=1e-3,
                                           err_msg=fmt)
            for _ in range(args.runs):
                for fmt, run in formats.items():
                    start, iterations = time.perf_counter(), 0
                    while iterations == 0 or time.perf_counter() - start < args.min_run:
                        run(x)
                        iterations += 1
                    ms[fmt].append((time.perf_counter() - start) / iterations * 1e3)
            keras_ms = statistics.median(ms["Keras"])
            for fmt, times in ms.items():
                median = statistics.median(times)
                print(f"| {name} | {fmt} | {median:.2f} | {keras_ms / median:.2f}x |",
                      flush=True)


if __name__ == "__main__":
    main()
