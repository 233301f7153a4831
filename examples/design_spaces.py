"""The paper's progression of design spaces, rerun small on the bundled digits.

    python examples/design_spaces.py                     # 20-50 minutes on 2 CPU cores
    python examples/design_spaces.py --models 3 --epochs 1 --out runs/ds_quick

Radosavovic et al. (2020) start from AnyNetX_A (16 free per-stage
parameters), add one constraint at a time (shared bottleneck ratio, shared
group width, non-decreasing widths, non-decreasing depths: AnyNetX_E) and
keep a constraint when the error distribution of models sampled from the
space is no worse; the end is the six-parameter RegNet space. Here each
space of `--spaces` gets `--models` random models inside one flops band,
each trained `--epochs` epochs on scikit-learn's digits (offline), by
`tuner.run_search`, `--jobs` searches at a time. Then
`python -m tuner report` overlays their flops-normalised error EDFs
(`edf_normalized.png`) and prints the KS statistics, and this script prints
a Markdown table: models, best and median error, KS against the first space.
"""

import contextlib
import multiprocessing
import os
import subprocess
import sys
import time
from concurrent import futures

from _cli import Parser
from keras_regnet.design.spaces import SPACE_NAMES
from tuner.flags import parse_range

SPACES = "anynetx_a,anynetx_c,anynetx_e,regnet"
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_args(argv=None):
    parser = Parser(description=__doc__.splitlines()[0])
    parser.add_argument("--spaces", default=SPACES,
                        help="design spaces, the first the reference of the KS "
                             "column (default: %(default)s)")
    parser.add_argument("--models", type=int, default=24,
                        help="models per design space (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=2,
                        help="epochs per model (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=16,
                        help="digits upsampled to this side (default: %(default)s)")
    parser.add_argument("--flops", default="1M-5M",
                        help="the flops band every model lies in (default: %(default)s)")
    parser.add_argument("--params", default="-2M",
                        help="the parameter budget (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2,
                        help="searches run at once (default: %(default)s)")
    parser.add_argument("--out", default="runs/design_spaces",
                        help="output folder, new or empty (default: %(default)s)")
    args = parser.parse_args(argv)
    args.spaces = args.spaces.split(",")
    for space in args.spaces:
        if space not in SPACE_NAMES:
            parser.error(f"Invalid `--spaces`: {space!r}. Expected names from "
                         f"{', '.join(SPACE_NAMES)}.")
    for name in ("flops", "params"):
        try:
            parse_range(getattr(args, name), name)
        except ValueError as e:
            parser.error(str(e))
    for name in ("models", "epochs", "image_size", "jobs"):
        if getattr(args, name) < 1:
            parser.error(f"Invalid `--{name.replace('_', '-')}`: "
                         f"{getattr(args, name)}. Expected an integer >= 1.")
    if os.path.lexists(args.out) and not (os.path.isdir(args.out)
                                          and not os.listdir(args.out)):
        parser.error(f"Invalid `--out`: {args.out!r} exists. Expected a new or "
                     "empty folder.")
    return args


def tuner_command(*args):
    return [sys.executable, "-m", "tuner", *args]


def search(space, args):
    """One space's search, its output in `<out>/<space>.log`; run in a
    process of its own (`tuner.run_search`)."""
    with open(os.path.join(args.out, f"{space}.log"), "w") as log, \
            contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        from keras_regnet import runtime
        from tuner import SearchConfig, run_search

        runtime.import_keras()
        start = time.time()
        config = SearchConfig(
            space=space, dataset="digits", image_size=args.image_size,
            flops=parse_range(args.flops, "flops"), params=parse_range(args.params, "params"),
            max_trials=args.models, epochs=args.epochs, max_failures=0, verbose=0)
        run_search(config, os.path.join(args.out, space))
    return time.time() - start


def run_searches(args):
    """Runs the searches, `--jobs` at a time."""
    os.makedirs(args.out, exist_ok=True)
    pool = futures.ProcessPoolExecutor(args.jobs, multiprocessing.get_context("spawn"))
    try:
        jobs = {pool.submit(search, space, args): space for space in args.spaces}
        for job in futures.as_completed(jobs):
            space = jobs[job]
            try:
                seconds = job.result()
            except Exception as e:  # noqa: BLE001 - any failure ends the example
                sys.exit(f"error: the {space} search failed ({e}); see "
                         f"{os.path.join(args.out, space + '.log')}")
            print(f"{space}: {args.models} models in {seconds:.0f} s", flush=True)
    except KeyboardInterrupt:
        # Ctrl-C reached the searches too: each finishes like its end.
        pool.shutdown(wait=True, cancel_futures=True)
        print(f"Interrupted; the searches in {args.out} keep their completed "
              "trials.", file=sys.stderr)
        sys.exit(130)
    pool.shutdown()


def table(args):
    """Markdown: models, best and median error, KS against the first space."""
    import numpy as np

    from tuner import analysis

    runs = [(space, analysis.load_run(os.path.join(args.out, space)))
            for space in args.spaces]
    edf, _ = analysis.comparable_edf(runs)  # the report printed why if not
    edfs = {label: (e, w) for label, e, w, _ in analysis.run_edfs(runs, edf)}
    ref = args.spaces[0]
    lines = [f"| space | models | best error % | median error % | KS vs {ref} "
             f"({'normalised' if edf == 'normalized' else 'plain'} EDFs) |",
             "|---|---:|---:|---:|---:|"]
    for space, rows in runs:
        errors = sorted(100 * r["error"] for r in analysis.completed(rows))
        (ea, wa), (eb, wb) = edfs[ref], edfs[space]
        ks = "-" if space == ref else f"{analysis.ks_statistic(ea, eb, wa, wb):.3f}"
        lines.append(f"| {space} | {len(errors)} | {errors[0]:.1f} | "
                     f"{np.median(errors):.1f} | {ks} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    run_searches(args)
    edf_png = os.path.join(args.out, "edf_normalized.png")
    # Run inside --out, so that the report and the figure name the runs by space.
    subprocess.run(tuner_command("report", *args.spaces, "--edf", "normalized",
                                 "--out", os.path.basename(edf_png)),
                   cwd=args.out, env=dict(os.environ, PYTHONPATH=os.pathsep.join(
                       filter(None, [REPO, os.environ.get("PYTHONPATH")]))), check=True)
    print(f"\n{table(args)}\n\n{len(args.spaces)} spaces in "
          f"{(time.time() - start) / 60:.0f} min; overlaid normalised EDFs: {edf_png}")


if __name__ == "__main__":
    main()
