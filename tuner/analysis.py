"""Design-space analysis as in the paper: error EDFs and error against each parameter."""

import os

import numpy as np

from keras_regnet.design.sampling import PARAM_NAMES
from keras_regnet.files import atomic_path
from tuner.trials import read_trials_csv

TRIALS_CSV = "trials.csv"
EDF_PNG = "edf.png"
PARAMS_PNG = "params.png"
_LABELS = {"depth": "depth d", "w0": "initial width w0", "wa": "slope wa",
           "wm": "width multiplier wm", "bottleneck_ratio": "bottleneck ratio b",
           "group_width": "group width g"}
_LOG_AXES = ("w0", "wa", "bottleneck_ratio", "group_width")


def load_run(directory):
    """The rows of `DIR/trials.csv`; `ValueError` if there is none."""
    path = os.path.join(directory, TRIALS_CSV)
    if not os.path.isfile(path):
        raise ValueError(f"Invalid run directory: {directory!r}. Expected a "
                         f"folder holding {TRIALS_CSV} (the --out of a search).")
    return read_trials_csv(path)


def completed(rows):
    return [r for r in rows if r["status"] == "COMPLETED" and r.get("error") != ""]


def error_edf(errors):
    """Empirical distribution function of errors: `(sorted errors, F)`.

    `F[i]` is the fraction of models with error <= `errors[i]`
    (the paper's eq. 1).
    """
    e = np.sort(np.asarray(errors, dtype=float))
    return e, np.arange(1, len(e) + 1) / max(len(e), 1)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """Saves atomically: a temporary name in the same folder, then rename."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")


def plot_edf(runs, path):
    """Overlays the error EDFs of several runs.

    Args:
        runs: list of `(label, rows)`.
        path: PNG file to write.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 4))
    for label, rows in runs:
        e, f = error_edf([r["error"] for r in completed(rows)])
        if len(e):
            ax.step(100 * np.r_[e[0], e], np.r_[0.0, f], where="post",
                    label=f"{label} (n={len(e)}, min {100 * e[0]:.1f}%)")
    ax.set_xlabel("error (%) = 100 x (1 - val_accuracy)")
    ax.set_ylabel("cumulative prob.")
    ax.set_ylim(0, 1)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    _save(fig, path)
    plt.close(fig)


def plot_params(rows, path):
    """Scatter of error against each of the six parameters."""
    plt = _pyplot()
    rows = completed(rows)
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharey=True)
    errors = [100 * r["error"] for r in rows]
    best = int(np.argmin(errors)) if errors else None
    for ax, name in zip(axes.flat, PARAM_NAMES):
        x = [r[name] for r in rows]
        ax.scatter(x, errors, s=14, alpha=0.7)
        if best is not None:
            ax.scatter([x[best]], [errors[best]], s=40, marker="*", color="red")
        if name in _LOG_AXES and x and min(x) > 0:
            ax.set_xscale("log", base=2)
        ax.set_xlabel(_LABELS[name])
        ax.grid(alpha=0.3)
    for ax in axes[:, 0]:
        ax.set_ylabel("error (%)")
    fig.tight_layout()
    _save(fig, path)
    plt.close(fig)


def write_plots(directory, rows):
    """Writes `edf.png` and `params.png` (of `rows`) into a run directory."""
    plot_edf([(os.path.basename(os.path.normpath(directory)), rows)],
             os.path.join(directory, EDF_PNG))
    plot_params(rows, os.path.join(directory, PARAMS_PNG))


def summary(label, rows, top=5):
    """A text summary: counts, error quantiles and the best trials."""
    done = sorted(completed(rows), key=lambda r: r["error"])
    failed = [r for r in rows if r["status"] == "FAILED"]
    wall = sum(r["wall_time_s"] for r in rows if isinstance(r.get("wall_time_s"), (int, float)))
    lines = [f"{label}: {len(rows)} trials, {len(done)} completed, "
             f"{len(failed)} failed, {wall:.0f} s of trials"]
    if done:
        errors = 100 * np.array([r["error"] for r in done])
        lines.append(f"  error (%): best {errors[0]:.2f}, median "
                     f"{np.median(errors):.2f}, worst {errors[-1]:.2f}; "
                     f"the best {min(top, len(done))} (all in {TRIALS_CSV}):")
        lines.append(f"  {'trial':>6} {'error%':>7} {'d':>3} {'w0':>4} {'wa':>7} "
                     f"{'wm':>5} {'b':>2} {'g':>3} {'MFLOPs':>8} {'Mparams':>8} "
                     f"{'epochs':>6} {'time s':>7}")
        for r in done[:top]:
            lines.append(
                f"  {r['trial_id']:>6} {100 * r['error']:7.2f} {r['depth']:3d} "
                f"{r['w0']:4d} {r['wa']:7.2f} {r['wm']:5.3f} "
                f"{r['bottleneck_ratio']:2d} {r['group_width']:3d} "
                f"{r['flops'] / 1e6:8.2f} {r['params'] / 1e6:8.3f} "
                f"{_num(r.get('epochs')):>6} {_num(r.get('wall_time_s')):>7}")
    for r in failed[:top]:
        lines.append(f"  failed trial {r['trial_id']}: {r['message']}")
    return "\n".join(lines)


def _num(x):
    return f"{x:g}" if isinstance(x, (int, float)) else "-"
