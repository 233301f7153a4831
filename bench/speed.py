"""Images/s of keras_regnet against Keras 2's RegNet and pycls, in one process.

    python bench/speed.py              # full run (about 12 minutes on 2 quiet cores)
    python bench/speed.py --quick      # RegNetX002 only, fewer variants (~1.5 min)
    python bench/speed.py --models RegNetX002 --json out.json

For each model it measures inference (batch 32, 224x224, `training=False`,
inside a compiled `tf.function` or under `torch.inference_mode`) and one SGD
training step (batch 32, momentum 0.9, cross-entropy) for:

- ours: `keras_regnet` models in fp32 and `mixed_bfloat16`, fp32 inference
  also with `jit_compile` (XLA; slower here, its grouped convolutions are
  slow on CPU), and the BN-folded inference export (fp32 and bf16, batch
  cut in two concurrent halves; also without the cut, "1 slice");
- tf-keras: `tf_keras.applications` RegNets as shipped (grouped convolutions
  wrapped in XLA) and with those convolutions calling `tf.nn.convolution`
  directly ("native"), fp32 and `mixed_bfloat16`;
- pycls: the paper's PyTorch AnyNet on CPU torch, channels-last, fp32 and
  bf16 autocast.

All contestants of one model are built first, then timed round-robin (one
timed run of each per round) so that load from other processes hits them
alike. Each timed run repeats the step until it lasts `--min-run` seconds;
the table gives the median over `--runs` runs and the spread
(max - min) / median. Other load on the machine still distorts the figures
(PyTorch's OpenMP threads suffer most): run it on a quiet machine. The best
fp32 and bf16 matmul throughput, measured at the start and at the end, is
the machine's peak; the fraction of peak counts 2 FLOPs per
multiply-add from `keras_regnet.complexity` (forward only for inference,
3x forward for training).
"""

import argparse
import gc
import json
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import keras_regnet  # noqa: E402,F401 - before TensorFlow: oneDNN on, as users get
import peers  # noqa: E402

DEFAULT_MODELS = ("RegNetX002", "RegNetY016", "RegNetX032")
OURS = ("ours", "ours jit", "ours export")
FP32_TARGET = {"RegNetX002": 1.15}
BF16_OVER_FP32_TARGET = {"RegNetY016": 1.5, "RegNetX032": 1.5}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="3 runs, one step each, fewer variants")
    parser.add_argument("--models", nargs="+", default=None,
                        help=f"default {' '.join(DEFAULT_MODELS)}; "
                             f"quick: {DEFAULT_MODELS[0]}")
    parser.add_argument("--runs", type=int, default=None,
                        help="timed runs per contestant (default 5, quick 3)")
    parser.add_argument("--min-run", type=float, default=None,
                        help="seconds per timed run (default 0.5, quick 0)")
    parser.add_argument("--shipped-train", action="store_true",
                        help="also time tf-keras' XLA-wrapped training step "
                             "(tens of seconds per step)")
    parser.add_argument("--json", help="write all measurements here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    from keras_regnet.design import MODEL_NAMES
    if args.models is None:
        args.models = list(DEFAULT_MODELS[:1] if args.quick else DEFAULT_MODELS)
    for name in args.models:
        if name not in MODEL_NAMES:
            parser.error(f"Invalid model {name!r}; expected one of "
                         f"{', '.join(MODEL_NAMES)}.")
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.min_run is None:
        args.min_run = 0.0 if args.quick else 0.5
    if args.runs < 1 or args.min_run < 0:
        parser.error("--runs must be >= 1 and --min-run >= 0.")
    return args


def machine():
    import tensorflow as tf
    import torch

    from keras_regnet import runtime

    name, isa = runtime.cpu_model()
    rt = runtime.describe()
    return {"cpu": name, "isa": isa, "cores": os.cpu_count(),
            "onednn": rt["onednn"], "grouped_conv": rt["grouped_conv"],
            "native_bf16": native_bf16(isa),
            "python": platform.python_version(), "tensorflow": tf.__version__,
            "torch": torch.__version__,
            "keras": __import__("keras").__version__}


def native_bf16(isa):
    """Whether the CPU computes bfloat16 natively (AVX512_BF16 or AMX);
    elsewhere bf16 matmuls are emulated, slower than fp32 by far."""
    return bool({"avx512_bf16", "amx_bf16"} & set(isa))


def contestants(name, images, labels, args, bf16=True):
    """(contestant, dtype, Runner) for model `name`; those that fail are noted.
    Without `bf16`, the bfloat16 ones are left out."""
    from keras_regnet.design import zoo_spec
    spec = zoo_spec(name)
    builders = [
        ("ours", "fp32", lambda: peers.ours(name, images, labels)),
        ("ours", "bf16", lambda: peers.ours(name, images, labels, bf16=True)),
        ("ours export", "fp32", lambda: peers.ours_inference(name, images)),
        ("ours export", "bf16",
         lambda: peers.ours_inference(name, images, bf16=True)),
        ("tf-keras native", "fp32",
         lambda: peers.tf_keras_model(name, images, labels)),
        ("pycls", "fp32", lambda: peers.pycls_model(spec, images, labels)),
        ("pycls", "bf16",
         lambda: peers.pycls_model(spec, images, labels, bf16=True)),
    ]
    if not args.quick:
        builders += [
            ("ours jit", "fp32", lambda: peers.ours(
                name, images, labels, jit_compile=True, train=False)),
            ("ours export 1 slice", "fp32",
             lambda: peers.ours_inference(name, images, batch_splits=1)),
            ("ours export 1 slice", "bf16", lambda: peers.ours_inference(
                name, images, bf16=True, batch_splits=1)),
            ("tf-keras native", "bf16",
             lambda: peers.tf_keras_model(name, images, labels, bf16=True)),
            ("tf-keras shipped", "fp32", lambda: peers.tf_keras_model(
                name, images, labels, native=False,
                train=args.shipped_train)),
        ]
    from keras_regnet.runtime import grouped_conv_path
    native = grouped_conv_path() == "native"
    built = []
    for contestant, dtype, build in builders:
        if dtype == "bf16" and not bf16:
            continue
        if contestant.startswith("tf-keras") and not native:
            # TensorFlow's CPU kernel has no grouped gradient without oneDNN.
            print(f"  skipped {contestant} {dtype}: TensorFlow's own grouped "
                  "convolution does not run here (oneDNN is off)", flush=True)
            continue
        try:
            built.append((contestant, dtype, build()))
        except (ImportError, AttributeError) as error:
            print(f"  skipped {contestant} {dtype}: {error!r}", flush=True)
    return built


def timed(step, iterations):
    start = time.perf_counter()
    for _ in range(iterations):
        step()
    return time.perf_counter() - start


def bench_model(name, args, bf16=True):
    import keras
    import tf_keras
    images, labels = peers.random_batch()
    print(f"{name}: building", flush=True)
    cases = []
    for contestant, dtype, runner in contestants(name, images, labels, args, bf16):
        for mode in ("infer", "train"):
            step = getattr(runner, mode)
            if step is None:
                continue
            start = time.perf_counter()
            step()  # traces / compiles
            first = time.perf_counter() - start
            last = min(timed(step, 1) for _ in range(1 if args.quick else 2))
            iterations = max(1, round(args.min_run / last))
            print(f"  {contestant:19s} {dtype} {mode}: first call {first:.1f} s, "
                  f"then {last * 1000:.0f} ms/step x {iterations}", flush=True)
            cases.append({"model": name, "contestant": contestant,
                          "dtype": dtype, "mode": mode, "step": step,
                          "iterations": iterations, "rates": []})
    for round_ in range(args.runs):
        for case in cases:
            seconds = timed(case["step"], case["iterations"])
            case["rates"].append(case["iterations"] * peers.BATCH / seconds)
        print(f"  round {round_ + 1}/{args.runs} done", flush=True)
    for case in cases:
        del case["step"]
        rates = case["rates"]
        case["median"] = statistics.median(rates)
        case["spread"] = (max(rates) - min(rates)) / case["median"]
    keras.backend.clear_session()
    tf_keras.backend.clear_session()
    gc.collect()
    return cases


def bf16_agreement(name, batches=2):
    """Top-1 agreement of our bf16 models with fp32 on random inputs.

    Same weights in all three models; BN statistics calibrated on the first
    batch, as in a trained model. With random weights most random images
    land in a few classes, so the number of distinct fp32 classes and the
    largest logit error relative to the largest logit are reported too.
    """
    import keras
    import numpy as np
    from keras_regnet.models import inference, regnet
    fp32 = getattr(regnet, name)(weights=None, classifier_activation=None)
    images = np.concatenate([peers.random_batch(seed + 1)[0]
                             for seed in range(batches)])
    norms = [l for l in fp32.layers if isinstance(l, keras.layers.BatchNormalization)]
    for layer in norms:  # momentum 0: one pass sets the batch statistics
        layer.momentum = 0.0
    fp32(images[:peers.BATCH], training=True)
    for layer in norms:
        layer.momentum = 0.9
    with peers.keras_policy("mixed_bfloat16"):
        bf16 = getattr(regnet, name)(weights=None, classifier_activation=None)
    bf16.set_weights(fp32.get_weights())
    models = {"fp32": fp32, "mixed_bfloat16": bf16,
              "export bf16": inference.inference_model(fp32, dtype="bfloat16")}
    logits = {k: np.asarray(m.predict(images, batch_size=peers.BATCH, verbose=0),
                            "float32") for k, m in models.items()}
    top = np.argmax(logits["fp32"], -1)
    scale = np.abs(logits["fp32"]).max()
    result = {"images": len(images), "fp32_classes": len(set(top.tolist()))}
    for key in ("mixed_bfloat16", "export bf16"):
        result[key] = float((np.argmax(logits[key], -1) == top).mean())
        result[key + " logit error"] = float(
            np.abs(logits[key] - logits["fp32"]).max() / scale)
    return result


def fraction_of_peak(case, flops, peaks):
    factor = 2 * (3 if case["mode"] == "train" else 1)
    return case["median"] * flops * factor / peaks[case["dtype"]]["peak"]


def tables(results):
    cases, peaks, flops = results["cases"], results["peaks"], results["flops"]
    lines = [
        "| model | contestant | dtype | inference img/s | spread | % peak "
        "| training img/s | spread | % peak |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    keyed = {}
    for case in cases:
        keyed[case["model"], case["contestant"], case["dtype"], case["mode"]] = case
    rows = []
    for case in cases:
        row = case["model"], case["contestant"], case["dtype"]
        if row not in rows:
            rows.append(row)
    for model, contestant, dtype in rows:
        cells = []
        for mode in ("infer", "train"):
            case = keyed.get((model, contestant, dtype, mode))
            if case is None:
                cells += ["-", "", ""]
            else:
                pct = 100 * fraction_of_peak(case, flops[model], peaks)
                cells += [f"{case['median']:.1f}", f"{100 * case['spread']:.0f}%",
                          f"{pct:.0f}%"]
        lines.append(f"| {model} | {contestant} | {dtype} | " + " | ".join(cells)
                     + " |")

    def best_ours(model, dtype, mode):
        found = [keyed[model, c, dtype, mode] for c in OURS
                 if (model, c, dtype, mode) in keyed]
        return max(found, key=lambda c: c["median"]) if found else None

    def rate(model, contestant, dtype, mode):
        case = keyed.get((model, contestant, dtype, mode))
        return case["median"] if case else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "-"

    lines += ["", "| model | mode | dtype | ours (best variant) | ours/tf-keras native "
              "| ours/tf-keras shipped | ours/pycls | bf16/fp32 (ours) | target |",
              "|---|---|---|---|---:|---:|---:|---:|---|"]
    for model in dict.fromkeys(c["model"] for c in cases):
        for mode in ("infer", "train"):
            for dtype in ("fp32", "bf16"):
                best = best_ours(model, dtype, mode)
                if best is None:
                    continue
                ours = best["median"]
                native = rate(model, "tf-keras native", dtype, mode)
                shipped = rate(model, "tf-keras shipped", dtype, mode)
                pycls = rate(model, "pycls", dtype, mode)
                fp32 = best_ours(model, "fp32", mode)
                over_fp32 = ours / fp32["median"] if dtype == "bf16" and fp32 else None
                if dtype == "fp32":
                    need = FP32_TARGET.get(model, 1.0)
                    peer = max([r for r in (native, pycls) if r] or [0])
                    checks = [(f">= {need}x best fp32 peer", peer and ours / peer >= need)]
                else:
                    checks = [(">= 1.0x pycls bf16", pycls and ours / pycls >= 1.0)]
                    if model in BF16_OVER_FP32_TARGET:
                        need = BF16_OVER_FP32_TARGET[model]
                        checks.append((f">= {need}x ours fp32",
                                       over_fp32 is not None and over_fp32 >= need))
                target = "; ".join(f"{text}: {'met' if ok else 'NOT met'}"
                                   for text, ok in checks)
                lines.append(
                    f"| {model} | {mode} | {dtype} | {ours:.1f} ({best['contestant']}) "
                    f"| {ratio(ours, native)} | {ratio(ours, shipped)} "
                    f"| {ratio(ours, pycls)} "
                    f"| {f'{over_fp32:.2f}x' if over_fp32 else '-'} | {target} |")
    return "\n".join(lines)


def measure_peaks(args, bf16=True):
    peaks = peers.matmul_peak(3 if args.quick else 7,
                              dtypes=("fp32", "bf16") if bf16 else ("fp32",))
    for dtype, peak in peaks.items():
        print(f"{dtype} matmul: " + ", ".join(
            f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peak.items()), flush=True)
    return peaks


def main(argv=None):
    args = parse_args(argv)
    import torch
    torch.set_flush_denormal(True)
    from keras_regnet.design import complexity
    start = time.perf_counter()
    results = {"machine": machine(), "quick": args.quick, "runs": args.runs,
               "min_run_s": args.min_run,
               "load_before": os.getloadavg()[0]}
    print(json.dumps(results["machine"]), flush=True)
    if results["load_before"] > 0.5:
        print(f"warning: load average {results['load_before']:.1f}; other "
              "processes will distort the timings", flush=True)
    bf16 = results["machine"]["native_bf16"]
    if not bf16:
        print("bf16: skipped, this CPU has no native bfloat16 (AVX512_BF16 or "
              "AMX); TensorFlow would emulate it, far slower than fp32", flush=True)
    results["peaks"] = measure_peaks(args, bf16)
    results["flops"] = {name: complexity(name)["flops"] for name in args.models}
    results["cases"], results["agreement"] = [], {}
    for name in args.models:
        results["cases"] += bench_model(name, args, bf16)
        if not bf16:
            continue
        try:
            results["agreement"][name] = bf16_agreement(name)
        except (ImportError, AttributeError) as error:
            print(f"  skipped bf16 agreement: {error!r}")
    # Peaks measured under load would flatter the fractions: keep the best.
    for dtype, peak in measure_peaks(args, bf16).items():
        for key, value in peak.items():
            results["peaks"][dtype][key] = max(results["peaks"][dtype][key], value)
    results["load_after"] = os.getloadavg()[0]
    results["seconds"] = time.perf_counter() - start
    text = tables(results)
    m = results["machine"]
    peaks = ", ".join(f"{dtype} {p['peak'] / 1e9:.0f} GFLOP/s"
                      for dtype, p in results["peaks"].items())
    header = (f"Machine: {m['cpu']} ({', '.join(m['isa']) or 'no AVX2'}), "
              f"{m['cores']} cores; oneDNN {'on' if m['onednn'] else 'off'}, "
              f"grouped convolutions {m['grouped_conv']}; TensorFlow "
              f"{m['tensorflow']}, Keras {m['keras']}, torch {m['torch']}. "
              f"Matmul peak: {peaks}"
              + ("" if bf16 else " (bf16 skipped: no native bfloat16 on this CPU)")
              + f". {args.runs} runs, load average {results['load_before']:.1f} "
              f"before, {results['load_after']:.1f} after; "
              f"{results['seconds'] / 60:.1f} min.")
    agreement = "\n".join(
        f"{name}: top-1 agreement with fp32 on {a['images']} random images "
        f"({a['fp32_classes']} distinct fp32 classes): mixed_bfloat16 "
        f"{100 * a['mixed_bfloat16']:.0f}% (max logit error "
        f"{100 * a['mixed_bfloat16 logit error']:.1f}% of max logit), bf16 export "
        f"{100 * a['export bf16']:.0f}% ({100 * a['export bf16 logit error']:.1f}%)"
        for name, a in results["agreement"].items())
    report = "\n\n".join(filter(None, (header, text, agreement))) + "\n"
    print("\n" + report)
    for path, content in ((args.json, json.dumps(results, indent=1)),
                          (args.markdown, report)):
        if path:
            tmp = f"{path}.tmp{os.getpid()}"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(content)
            os.replace(tmp, path)


if __name__ == "__main__":
    main()
