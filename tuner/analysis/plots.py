"""The plots of a run and of runs compared (Matplotlib, loaded on first use)."""

import math
import os

import numpy as np

from keras_regnet.design.checks import is_real
from keras_regnet.files import atomic_path
from tuner.analysis.stats import (BOOTSTRAP_FRACTION, BOOTSTRAP_SAMPLES, MIN_BOOTSTRAP,
                                  best_error_trend, block_widths, bootstrap_best,
                                  completed, param_base, run_edfs, run_params,
                                  trend_params, weighted_edf)

EDF_PNG = "edf.png"
PARAMS_PNG = "params.png"
TRENDS_PNG = "trends.png"
WIDTHS_PNG = "block_widths.png"
EFIT_PNG = "efit.png"
_LABELS = {"depth": "depth d (blocks)", "w0": "initial width w0 (channels)",
           "wa": "slope wa (channels per block)", "wm": "width multiplier wm",
           "bottleneck_ratio": "bottleneck ratio b",
           "group_width": "group width g (channels)",
           "learning_rate": "learning rate", "weight_decay": "weight decay"}
_STAGE_LABELS = {"depth": "depth d{i} of stage {i} (blocks)",
                 "width": "width w{i} of stage {i} (channels)",
                 "bottleneck_ratio": "bottleneck ratio b{i} of stage {i}",
                 "group_width": "group width g{i} of stage {i} (channels)"}
_LOG2 = ("w0", "wa", "width", "bottleneck_ratio", "group_width")
_LOG10 = ("learning_rate", "weight_decay")
_CHOICES = ("bottleneck_ratio", "group_width")
_ERROR_LABEL = "error (%) = 100 x (1 - val_accuracy)"


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path):
    """Saves atomically: a temporary name in the same folder, then rename."""
    try:
        with atomic_path(path, parents=True) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    finally:
        _pyplot().close(fig)


def plot_edf(runs, path, edf="error", bins=None):
    """Overlays the error EDFs of one or several runs.

    Args:
        runs: list of `(label, rows)`.
        path: PNG file to write.
        edf: `"error"` or `"normalized"` (see `run_edfs`).
        bins: bins of the normalisation.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    edfs = run_edfs(runs, edf, bins)
    for label, errors, weights, _ in edfs:
        e, f = weighted_edf(errors, weights)
        used = np.count_nonzero(weights)
        n = f"n={used}" if used == len(errors) else f"{used} of {len(errors)} in range"
        ax.step(100 * np.r_[e[0], e], np.r_[0.0, f], where="post",
                label=f"{label} ({n}, best {100 * e[0]:.2f} %)")
    if len(runs) == 1:
        label, rows = runs[0]
        title = (f"{label}: error EDF of {len(completed(rows))} completed of "
                 f"{len(rows)} trials")
    elif edf == "normalized" and edfs:
        flops = np.concatenate([f[w > 0] for *_, w, f in edfs])
        title = (f"Flops-normalized error EDFs of {len(runs)} runs\n(each run "
                 f"reweighted to a uniform log-flops distribution over "
                 f"{flops.min() / 1e6:.3g}-{flops.max() / 1e6:.3g} MFLOPs)")
    else:
        title = f"Error EDFs of {len(runs)} runs"
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(_ERROR_LABEL)
    ax.set_ylabel(("weighted fraction" if edf == "normalized" else "fraction")
                  + " of models with error <= e")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    if ax.lines:
        ax.legend(fontsize=8, loc="lower right", title="run (models, best error)",
                  title_fontsize=8)
    else:
        _no_data(ax)
    _save(fig, path)


def plot_params(rows, path, label=""):
    """Scatter of error against each searched parameter (`run_params`),
    the best model starred."""
    plt = _pyplot()
    done, params = completed(rows), run_params(rows)
    fig, axes = _grid(plt, len(params))
    errors = [100 * r["error"] for r in done]
    best = int(np.argmin(errors)) if errors else None
    for ax, name in zip(axes, params):
        x = [r.get(name) if is_real(r.get(name)) else np.nan for r in done]
        ax.scatter(x, errors, s=14, alpha=0.6, label="completed trial")
        ax.scatter([x[best]], [errors[best]], s=120, marker="*", color="red",
                   zorder=3, label=_best_label(done[best]))
        _param_axis(ax, name, x)
        ax.set_ylabel("error (%)")
    _save_grid(fig, axes, params, path, f"{label}: error against each parameter, "
               f"{len(done)} completed of {len(rows)} trials", 9)


def plot_trends(rows, path, label="", samples=BOOTSTRAP_SAMPLES,
                fraction=BOOTSTRAP_FRACTION, seed=0):
    """The paper's trends: best error against each parameter with a 95 %
    band (`best_error_trend`), and the bootstrapped best model
    (`bootstrap_best`): its median value and error with 95 % intervals."""
    plt = _pyplot()
    done, params = completed(rows), trend_params(rows)
    fig, axes = _grid(plt, len(params))
    best = (bootstrap_best(rows, params, samples, fraction, seed)
            if params and len(done) >= MIN_BOOTSTRAP else None)
    for ax, name in zip(axes, params):
        trend = best_error_trend(rows, name, samples, seed)
        x = [r.get(name) if is_real(r.get(name)) else np.nan for r in done]
        ax.scatter(x, [100 * r["error"] for r in done], s=10, color="0.6",
                   label="completed trial")
        lo, med, hi = 100 * trend["error"]
        ax.errorbar(trend["x"], med, yerr=[med - lo, hi - med], fmt="o-", color="C0",
                    ms=4, capsize=3, label="best error per group: median, 95 % interval")
        if best:
            (p_lo, p_med, p_hi) = best[name]
            e_lo, e_med, e_hi = 100 * np.array(best["error"])
            ax.errorbar([p_med], [e_med], xerr=[[p_med - p_lo], [p_hi - p_med]],
                        yerr=[[e_med - e_lo], [e_hi - e_med]], fmt="D", color="C1",
                        ms=6, capsize=4, zorder=4,
                        label=f"best model (bootstrap of {100 * fraction:g} %): "
                              "median, 95 % intervals")
        ax.set_title(f"best of {trend['k']} draws per group (groups of "
                     f"{', '.join(map(str, trend['count']))} trials)", fontsize=8)
        _param_axis(ax, name, x)
        ax.set_ylabel("error (%)")
    _save_grid(fig, axes, params, path, f"{label}: best error against each "
               f"parameter, {len(done)} completed of {len(rows)} trials, {samples} "
               "bootstrap resamples", 8)


def plot_block_widths(rows, path, label="", top=5):
    """Per-block widths against block index of the `top` best models, with
    the RegNet linear rule `u_j = w0 + wa j` dashed where the row has
    `w0` and `wa`."""
    plt = _pyplot()
    done = sorted((r for r in completed(rows) if r.get("depths") not in (None, "")
                   and r.get("widths") not in (None, "")), key=lambda r: r["error"])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    all_widths = []
    for i, r in enumerate(done[:top]):
        w = block_widths(r["depths"], r["widths"])
        all_widths += w
        j = np.arange(len(w))
        ax.step(j, w, where="mid", marker="o", ms=3, color=f"C{i}",
                label=f"trial {trial_label(r)}: {100 * r['error']:.2f} % error, "
                      f"d={len(w)}, widths {r['widths']}")
        if is_real(r.get("w0")) and is_real(r.get("wa")):
            ax.plot(j, r["w0"] + r["wa"] * j, "--", lw=1, color=f"C{i}")
    if any(is_real(r.get("w0")) and is_real(r.get("wa")) for r in done[:top]):
        ax.plot([], [], "--", color="0.3", lw=1, label="linear rule u_j = w0 + wa j")
    ax.set_title(f"{label}: per-block widths of the {min(top, len(done))} best "
                 f"of {len(done)} completed models", fontsize=10)
    ax.set_xlabel("block index j (0 = first block after the stem)")
    ax.set_ylabel("block width (channels, log scale)")
    ax.grid(alpha=0.3)
    if all_widths:
        ax.xaxis.get_major_locator().set_params(integer=True)
        _log_ticks(ax.yaxis, ax.set_yscale, all_widths, 2)
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.15))
    else:
        _no_data(ax)
    _save(fig, path)


def plot_efit(rows, path, label=""):
    """Error against `e_fit`, the fit error of the quantized linear rule to
    a model's block widths (Radosavovic et al. 2020, sec. 3.3)."""
    plt = _pyplot()
    done = [r for r in completed(rows) if is_real(r.get("e_fit"))]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    if done:
        errors = [100 * r["error"] for r in done]
        fits = [r["e_fit"] for r in done]
        best = int(np.argmin(errors))
        ax.scatter(fits, errors, s=14, alpha=0.6, label="completed trial")
        ax.scatter([fits[best]], [errors[best]], s=120, marker="*", color="red",
                   zorder=3, label=_best_label(done[best]))
        ax.legend(fontsize=8, loc="best")
    else:
        _no_data(ax, "no completed trials with an e_fit")
    ax.set_title(f"{label}: error against e_fit, {len(done)} completed of "
                 f"{len(rows)} trials", fontsize=10)
    ax.set_xlabel("e_fit: fit error of the quantized linear width rule (dimensionless)")
    ax.set_ylabel(_ERROR_LABEL)
    ax.grid(alpha=0.3)
    _save(fig, path)


def plot_files(rows):
    """Names of the plots `write_plots` writes for these rows: `edf.png`,
    `params.png`; `trends.png` where a parameter has a trend to show
    (`trend_params`); `block_widths.png` once a trial has completed;
    `efit.png` when the trials have an `e_fit`."""
    done = completed(rows)
    names = [EDF_PNG, PARAMS_PNG]
    if done and trend_params(rows):
        names.append(TRENDS_PNG)
    if done:
        names.append(WIDTHS_PNG)
    if any(is_real(r.get("e_fit")) for r in done):
        names.append(EFIT_PNG)
    return names


def write_plots(directory, rows, samples=BOOTSTRAP_SAMPLES, seed=0, top=5):
    """Writes a run's plots (`plot_files`) into its directory.

    Returns:
        The paths written.
    """
    label = os.path.basename(os.path.normpath(directory))
    draw = {EDF_PNG: lambda p: plot_edf([(label, rows)], p),
            PARAMS_PNG: lambda p: plot_params(rows, p, label),
            TRENDS_PNG: lambda p: plot_trends(rows, p, label, samples, seed=seed),
            WIDTHS_PNG: lambda p: plot_block_widths(rows, p, label, top),
            EFIT_PNG: lambda p: plot_efit(rows, p, label)}
    paths = [os.path.join(directory, name) for name in plot_files(rows)]
    for path in paths:
        draw[os.path.basename(path)](path)
    return paths


def _label(name):
    base, i = param_base(name)
    return _STAGE_LABELS[base].format(i=i) if i else _LABELS[base]


def trial_label(row):
    """The trial's number as the trial lines print it (older runs: its id)."""
    return row.get("trial") if row.get("trial") not in (None, "") else row["trial_id"]


def _best_label(row):
    return f"best: trial {trial_label(row)}, {100 * row['error']:.2f} % error"


def _grid(plt, n):
    cols = 3 if n <= 6 else 4
    rows = max(1, math.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.8 * cols, 3.1 * rows + 0.8),
                             sharey=True, layout="constrained", squeeze=False)
    for ax in axes.flat[max(n, 1):]:
        ax.set_visible(False)
    return fig, list(axes.flat)


def _param_axis(ax, name, values):
    from matplotlib import ticker

    ax.set_xlabel(_label(name))
    ax.grid(alpha=0.3)
    base = param_base(name)[0]
    if base in _LOG2 + _LOG10:
        _log_ticks(ax.xaxis, ax.set_xscale, values, 2 if base in _LOG2 else 10,
                   at_values=base in _CHOICES)
    elif base == "depth":
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))


def _log_ticks(axis, set_scale, values, base, at_values=False):
    """Log scale with ticks at plain numbers (8, 16, 32 or 8, 12, 16, 24;
    0.01, 0.02, 0.05), never `2^3`; `at_values`: at the values taken."""
    from matplotlib import ticker

    v = np.array([x for x in values if is_real(x) and x > 0], dtype=float)
    if not len(v):
        return
    set_scale("log", base=base)
    if at_values:
        ticks = np.unique(v)
    else:
        lo, hi = sorted(axis.get_view_interval())
        powers = base ** np.arange(math.floor(math.log(lo, base)),
                                   math.ceil(math.log(hi, base)) + 1, dtype=float)
        series = ([(1,), (1, 1.5), (1, 1.25, 1.5, 1.75)] if base == 2
                  else [(1,), (1, 2, 5), (1, 2, 3, 5, 7)])
        for subs in series:
            ticks = [p * m for p in powers for m in subs if lo <= p * m <= hi]
            if len(ticks) >= 5:
                break
        if len(ticks) < 3:  # a narrow range: evenly spaced plain numbers
            ticks = [t for t in ticker.MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi]
    axis.set_major_locator(ticker.FixedLocator(ticks))
    axis.set_major_formatter(ticker.FuncFormatter(lambda x, _: f"{x:g}"))
    axis.set_minor_locator(ticker.NullLocator())


def _save_grid(fig, axes, params, path, title, legend_size):
    """Title, one legend for the panels of `_grid` (from the first), save."""
    fig.suptitle(title, fontsize=11)
    if params:
        fig.legend(*axes[0].get_legend_handles_labels(), loc="outside lower center",
                   ncol=2, fontsize=legend_size)
    else:
        _no_data(axes[0], "no completed trials with varying parameters")
    _save(fig, path)


def _no_data(ax, text="no completed trials"):
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes)
