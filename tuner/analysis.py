"""Design-space analysis as in the papers, from a run's `trials.csv`.

Error EDFs, plain or normalised for complexity (Radosavovic et al. 2019),
Kolmogorov-Smirnov distances between runs, the bootstrap of the best model
and its parameters (Radosavovic et al. 2020, sec. 3-4), and the plots of a
run. NumPy and Matplotlib only: no TensorFlow or Keras.
"""

import math
import os
import re

import numpy as np

from keras_regnet.design.checks import invalid, is_real
from keras_regnet.design.sampling import PARAM_NAMES
from keras_regnet.files import atomic_path
from tuner.trials import read_trials_csv

TRIALS_CSV = "trials.csv"
EDF_PNG = "edf.png"
PARAMS_PNG = "params.png"
TRENDS_PNG = "trends.png"
WIDTHS_PNG = "block_widths.png"
EFIT_PNG = "efit.png"
EDF_KINDS = ("error", "normalized")
BOOTSTRAP_SAMPLES = 10000
BOOTSTRAP_FRACTION = 0.25
PERCENTILES = (2.5, 50.0, 97.5)

# Parameters in display order: RegNet's, AnyNet's per-stage ones (`depth_1`
# ...), then the training hyperparameters when searched.
_ORDER = ("depth", "w0", "wa", "wm", "width", "bottleneck_ratio",
          "group_width", "learning_rate", "weight_decay")
_STAGE_KEY = re.compile(r"(depth|width|bottleneck_ratio|group_width)_(\d+)")
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
_KS_ALPHA = 0.05
# The least data a trend panel and the bootstrap of the best model can say
# something from; below it they are left out, with one line saying why.
MIN_GROUP = 3
MIN_GROUPS = 2
MIN_BOOTSTRAP = 20


def load_run(directory):
    """The rows of `DIR/trials.csv`; `ValueError` if there is none."""
    path = os.path.join(directory, TRIALS_CSV)
    if not os.path.isfile(path):
        raise ValueError(f"Invalid run directory: {directory!r}. Expected a "
                         f"folder holding {TRIALS_CSV} (the --out of a search).")
    return read_trials_csv(path)


def completed(rows):
    """The completed trials that have an error."""
    return [r for r in rows if r["status"] == "COMPLETED" and is_real(r.get("error"))]


def run_params(rows):
    """Names of the searched parameters: the columns that vary among the
    completed trials, in display order.

    RegNet runs: `depth`, `w0`, `wa`, `wm`, `bottleneck_ratio`,
    `group_width`; AnyNet runs: the per-stage `depth_1`, `width_1`, ...,
    `bottleneck_ratio[_i]`, `group_width[_i]`; plus `learning_rate` and
    `weight_decay` when they were searched.
    """
    done = completed(rows)
    keys = {k for r in done for k in r if _base(k)[0] in _ORDER}
    names = sorted(keys, key=lambda k: (_ORDER.index(_base(k)[0]), _base(k)[1]))
    return [k for k in names
            if len({r[k] for r in done if is_real(r.get(k))}) >= 2]


def weighted_edf(values, weights=None):
    """Weighted empirical distribution function.

    Args:
        values: 1-D sequence of numbers (e.g. errors).
        weights: non-negative weights, one per value, not all zero
            (default: all equal). Values of weight 0 are left out.

    Returns:
        `(x, F)`: the distinct values `x` in increasing order and
        `F[i] = sum(w[v <= x[i]]) / sum(w)`.
    """
    v = np.asarray(values, dtype=float).ravel()
    w = np.ones_like(v) if weights is None else np.asarray(weights, dtype=float).ravel()
    if w.shape != v.shape:
        raise ValueError(f"Invalid `weights`: {len(w)} weights. Expected one "
                         f"per value ({len(v)}).")
    if len(v) and (np.any(~np.isfinite(w)) or np.any(w < 0) or not w.sum() > 0):
        raise invalid("weights", weights, "finite weights >= 0, not all 0")
    keep = w > 0
    x, inverse = np.unique(v[keep], return_inverse=True)
    f = np.cumsum(np.bincount(inverse, w[keep], minlength=len(x)))
    return x, (f / f[-1] if len(f) else f)


def error_edf(errors):
    """Empirical distribution function of errors: `(x, F)`.

    `F[i]` is the fraction of models with error <= `x[i]` (the paper's
    eq. 1); `x` holds the distinct errors in increasing order.
    """
    return weighted_edf(errors)


def normalization_weights(flops, bins=None):
    """Weights that give several runs the same complexity distribution.

    As in Radosavovic et al. 2019 (normalised error EDF), each run's models
    are reweighted so that their distribution over log-flops bins becomes
    uniform: the range shared by all runs (from the largest of their
    smallest flops to the smallest of their largest) is cut into `bins`
    bins of equal width in log-flops, and each bin that holds models of
    every run gets the same total weight, shared equally by the run's models
    in it. Models outside the shared range, or in a bin that some run lacks,
    get weight 0, so every run is compared on exactly the same flops
    distribution.

    Args:
        flops: one sequence of model flops (> 0) per run.
        bins: number of bins; default `round(sqrt(m))` clipped to 1-10,
            where `m` is the fewest models a run has in the shared range,
            made coarser until some bin holds models of every run.

    Returns:
        One array of weights per run, each summing to 1.
    """
    arrays = [np.asarray(f, dtype=float).ravel() for f in flops]
    if not arrays:
        raise invalid("flops", flops, "one sequence per run")
    for j, x in enumerate(arrays):
        if len(x) == 0 or not np.all(np.isfinite(x) & (x > 0)):
            raise ValueError(f"Invalid `flops[{j}]`: {np.array2string(x, threshold=8)}. "
                             "Expected a non-empty sequence of flops > 0.")
    logs = [np.log(x) for x in arrays]
    lo, hi = max(x.min() for x in logs), min(x.max() for x in logs)
    if lo > hi:
        raise ValueError(
            f"Invalid `flops`: the runs' flops ranges do not overlap (the "
            f"largest minimum {math.exp(lo):.4g} exceeds the smallest maximum "
            f"{math.exp(hi):.4g}). Expected runs with a common flops range.")
    auto = bins is None
    if auto:
        fewest = min(np.count_nonzero((x >= lo) & (x <= hi)) for x in logs)
        bins = int(np.clip(round(math.sqrt(fewest)), 1, 10))
    if not (isinstance(bins, (int, np.integer)) and bins >= 1):
        raise invalid("bins", bins, "an integer >= 1")
    while True:
        index = []
        for x in logs:
            i = np.floor((x - lo) / (hi - lo) * bins) if hi > lo else np.zeros_like(x)
            i = np.minimum(i, bins - 1).astype(int)
            index.append(np.where((x >= lo) & (x <= hi), i, -1))
        counts = np.array([np.bincount(i[i >= 0], minlength=bins) for i in index])
        shared = np.all(counts > 0, axis=0)
        if shared.any() or not auto or bins == 1:
            break
        bins -= 1  # automatic bins: coarser until some bin holds every run
    if not shared.any():
        span = f"{math.exp(lo):.4g}-{math.exp(hi):.4g}"
        raise ValueError(
            f"Invalid `flops`: some run has no model in the flops range all "
            f"runs share ({span}). Expected runs with models of similar flops."
            if bins == 1 else
            f"Invalid `flops`: no one of the {bins} log-flops bins of the "
            f"shared range {span} holds a model of every run. Expected fewer "
            "`bins` or runs with models of similar flops.")
    weights = []
    for i, c in zip(index, counts):
        w = np.zeros(len(i))
        ok = (i >= 0) & shared[np.maximum(i, 0)]
        w[ok] = 1.0 / (shared.sum() * c[i[ok]])
        weights.append(w)
    return weights


def run_edfs(runs, edf="error", bins=None):
    """Errors, EDF weights and flops of the completed trials of several runs.

    Args:
        runs: list of `(label, rows)`; runs without completed trials are
            left out.
        edf: `"error"` (equal weights) or `"normalized"` (see
            `normalization_weights`; trials without flops get weight 0).
        bins: bins of the normalisation.

    Returns:
        List of `(label, errors, weights, flops)` with NumPy arrays.
    """
    if edf not in EDF_KINDS:
        raise invalid("edf", edf, f"one of {EDF_KINDS}")
    out = []
    for label, rows in runs:
        done = completed(rows)
        if done:
            out.append((label, np.array([r["error"] for r in done], dtype=float),
                        np.full(len(done), 1.0 / len(done)),
                        np.array([r["flops"] if is_real(r.get("flops")) else np.nan
                                  for r in done], dtype=float)))
    if edf == "normalized" and out:
        known = [~np.isnan(f) for *_, f in out]
        normalized = normalization_weights([f[k] for (*_, f), k in zip(out, known)], bins)
        for (_, _, w, _), k, nw in zip(out, known, normalized):
            w[:] = 0
            w[k] = nw
    return out


def comparable_edf(runs, edf="normalized"):
    """`(edf, note)`: `edf`, or `"error"` and the reason when the runs'
    flops ranges cannot be normalised (`normalization_weights`)."""
    if edf == "normalized":
        try:
            run_edfs(runs, edf)
        except ValueError as e:
            return "error", f"{e} Comparing the plain error EDFs instead."
    return edf, None


def ks_statistic(a, b, weights_a=None, weights_b=None):
    """Two-sample Kolmogorov-Smirnov statistic `D = max_x |F_a(x) - F_b(x)|`.

    Args:
        a, b: the two samples (e.g. the errors of two runs).
        weights_a, weights_b: optional weights (see `weighted_edf`), e.g.
            from `normalization_weights`.

    Returns:
        `D` in [0, 1]; without weights, `scipy.stats.ks_2samp`'s statistic.
    """
    xa, fa = weighted_edf(a, weights_a)
    xb, fb = weighted_edf(b, weights_b)
    for name, x, value in (("a", xa, a), ("b", xb, b)):
        if not len(x):
            raise ValueError(f"Invalid `{name}`: {value!r}. Expected at least "
                             "one value (of weight > 0).")
    grid = np.union1d(xa, xb)
    return float(np.max(np.abs(_edf_at(xa, fa, grid) - _edf_at(xb, fb, grid))))


def ks_critical_value(n_a, n_b, alpha=_KS_ALPHA):
    """`D` above which two EDFs of `n_a` and `n_b` models differ at level
    `alpha` (asymptotic: `sqrt(-ln(alpha / 2) / 2 * (n_a + n_b) / (n_a n_b))`)."""
    for name, n in (("n_a", n_a), ("n_b", n_b)):
        if not n > 0:
            raise ValueError(f"Invalid `{name}`: {n!r}. Expected a size > 0.")
    if not 0 < alpha < 1:
        raise invalid("alpha", alpha, "0 < alpha < 1")
    return math.sqrt(-math.log(alpha / 2) / 2 * (n_a + n_b) / (n_a * n_b))


def ks_table(runs, edf="normalized", bins=None):
    """Text: the KS statistic between the error EDFs of each pair of runs.

    With weights, the critical value uses Kish's effective sample sizes
    `(sum w)^2 / sum w^2`. Arguments as in `run_edfs`.
    """
    edfs = run_edfs(runs, edf, bins)
    width = max([len(label) for label, *_ in edfs] + [5])
    lines = [f"KS statistic D = max |F_a(e) - F_b(e)| between the "
             f"{'normalized ' if edf == 'normalized' else ''}error EDFs; "
             f"D > D5% suggests different distributions (5 % level, "
             f"asymptotic{', effective n' if edf == 'normalized' else ''}):",
             f"  {'run a':<{width}}  {'run b':<{width}}  {'D':>5}  {'D5%':>5}  "
             f"{'n a':>6}  {'n b':>6}"]
    for i, (la, ea, wa, _) in enumerate(edfs):
        for lb, eb, wb, _ in edfs[i + 1:]:
            na, nb = _effective_size(wa), _effective_size(wb)
            d = ks_statistic(ea, eb, wa, wb)
            lines.append(f"  {la:<{width}}  {lb:<{width}}  {d:5.3f}  "
                         f"{ks_critical_value(na, nb):5.3f}  {na:6.4g}  {nb:6.4g}")
    return "\n".join(lines)


def bootstrap_best(rows, params=None, samples=BOOTSTRAP_SAMPLES,
                   fraction=BOOTSTRAP_FRACTION, seed=0):
    """Bootstrap of the best model (Radosavovic et al. 2020, sec. 3).

    `samples` times, `fraction` of the completed trials (at least one) are
    drawn with replacement and the one of lowest error is kept; the
    percentiles of the kept models' error and parameters estimate where the
    best models lie.

    Args:
        rows: trial rows (`read_trials_csv`); only completed ones count.
        params: parameter columns (default `run_params(rows)`).
        samples: number of resamples.
        fraction: share of the completed trials drawn each time, in (0, 1].
        seed: seed of the resampling (same seed, same result).

    Returns:
        Dict `{"error": (p2.5, p50, p97.5), name: (...) for each parameter}`.
    """
    done = completed(rows)
    if not done:
        raise ValueError("Invalid `rows`: no completed trials. Expected at "
                         "least one completed trial with an error.")
    _check_bootstrap(samples, fraction)
    params = run_params(rows) if params is None else list(params)
    errors = np.array([r["error"] for r in done], dtype=float)
    best = _best_of_draws(errors, _draws(len(done), fraction), samples,
                          np.random.default_rng(seed))
    out = {"error": tuple(np.percentile(errors[best], PERCENTILES))}
    for name in params:
        values = np.array([r.get(name) if is_real(r.get(name)) else np.nan
                           for r in done], dtype=float)
        out[name] = tuple(np.nanpercentile(values[best], PERCENTILES))
    return out


def best_error_trend(rows, name, samples=BOOTSTRAP_SAMPLES, seed=0):
    """Best error against one parameter, with a 95 % bootstrap band.

    The completed trials are grouped by the parameter: one group per value
    when it takes at most 8 values, else up to 6 groups of equal counts
    (quantiles, about 10 trials each); groups of fewer than `MIN_GROUP`
    trials are left out. From every group, `k` trials are drawn with replacement
    `samples` times and the lowest error of each draw kept, `k` being the
    size of the smallest group: each point is then the best of equally many
    models, so that a value tried more often does not look better for it.

    Returns:
        Dict with `"x"` (each group's median value), `"count"` (trials per
        group), `"k"` and `"error"`, shape `(3, groups)`: percentiles 2.5,
        50 and 97.5 of the best error (no groups: empty arrays, `k` 0).
    """
    _check_bootstrap(samples, 1)
    x, errors, groups = _trend_groups(rows, name)
    if not groups:
        return {"x": np.zeros(0), "count": np.zeros(0, int), "k": 0,
                "error": np.zeros((len(PERCENTILES), 0))}
    k = min(len(g) for g in groups)
    rng = np.random.default_rng(seed)
    best = [errors[g][_best_of_draws(errors[g], k, samples, rng)] for g in groups]
    return {"x": np.array([np.median(x[g]) for g in groups]),
            "count": np.array([len(g) for g in groups]), "k": k,
            "error": np.percentile(np.array(best), PERCENTILES, axis=1)}


def _trend_groups(rows, name):
    """`(x, errors, groups)` of `best_error_trend`: the completed trials'
    values and errors, and the index arrays of its groups."""
    done = [r for r in completed(rows) if is_real(r.get(name))]
    x = np.array([r[name] for r in done], dtype=float)
    errors = np.array([r["error"] for r in done], dtype=float)
    distinct = np.unique(x)
    if len(distinct) <= 8:
        group = np.searchsorted(distinct, x)
    else:
        n = min(6, max(2, len(x) // 10))
        edges = np.quantile(x, np.linspace(0, 1, n + 1))
        group = np.minimum(np.searchsorted(edges, x, side="right") - 1, n - 1)
    groups = [g for g in (np.flatnonzero(group == i) for i in np.unique(group))
              if len(g) >= MIN_GROUP]
    return x, errors, groups


def trend_params(rows):
    """The parameters with a trend to show: `MIN_GROUPS` groups or more of
    `MIN_GROUP` completed trials or more (`best_error_trend`)."""
    return [name for name in run_params(rows)
            if len(_trend_groups(rows, name)[2]) >= MIN_GROUPS]


def plots_left_out(rows):
    """Lines saying which plots a run has too few trials for, and why."""
    n = len(completed(rows))
    if n and not trend_params(rows):
        return [f"{TRENDS_PNG} left out: no parameter has {MIN_GROUPS} groups of "
                f"at least {MIN_GROUP} completed trials yet ({n} completed)"]
    return []


def block_widths(depths, widths):
    """Per-block widths of a model from its stage depths and widths.

    Args:
        depths: blocks per stage: ints, or `trials.csv`'s `"1-3-7-5"`.
        widths: width per stage, likewise.

    Returns:
        List of ints: `widths[i]` repeated `depths[i]` times, e.g.
        `block_widths("1-2", "24-56") == [24, 56, 56]`.
    """
    d, w = _int_list("depths", depths), _int_list("widths", widths)
    if len(d) != len(w):
        raise invalid("widths", widths, f"one width per stage of `depths` {depths!r}")
    return [wi for di, wi in zip(d, w) for _ in range(di)]


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
                label=f"trial {_trial(r)}: {100 * r['error']:.2f} % error, "
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
        regnet = all(is_real(r.get(k)) for r in done[:top] for k in PARAM_NAMES)
        if regnet:
            lines.append(f"  {'trial':>6} {'error%':>7} {'d':>3} {'w0':>4} {'wa':>7} "
                         f"{'wm':>5} {'b':>2} {'g':>3} {'MFLOPs':>8} {'Mparams':>8} "
                         f"{'epochs':>6} {'time s':>7}")
        else:
            lines.append(f"  {'trial':>6} {'error%':>7} {'depths':>12} {'widths':>20} "
                         f"{'b':>9} {'g':>12} {'MFLOPs':>8} {'Mparams':>8} "
                         f"{'epochs':>6} {'time s':>7}")
        for r in done[:top]:
            if regnet:
                model = (f"{r['depth']:3d} {r['w0']:4d} {r['wa']:7.2f} {r['wm']:5.3f} "
                         f"{r['bottleneck_ratio']:2d} {r['group_width']:3d}")
            else:
                model = (f"{_cell(r.get('depths')):>12} {_cell(r.get('widths')):>20} "
                         f"{_cell(r.get('bottleneck_ratios', r.get('bottleneck_ratio'))):>9} "
                         f"{_cell(r.get('group_widths')):>12}")
            lines.append(
                f"  {_trial(r):>6} {100 * r['error']:7.2f} {model} "
                f"{r['flops'] / 1e6:8.2f} {r['params'] / 1e6:8.3f} "
                f"{_num(r.get('epochs')):>6} {_num(r.get('wall_time_s')):>7}")
    for r in failed[:top]:
        lines.append(f"  failed trial {_trial(r)}: {r['message']}")
    return "\n".join(lines)


def bootstrap_summary(rows, samples=BOOTSTRAP_SAMPLES, fraction=BOOTSTRAP_FRACTION,
                      seed=0):
    """Text: `bootstrap_best` of a run as a table of percentiles."""
    n = len(completed(rows))
    if n < MIN_BOOTSTRAP:
        return (f"  bootstrap of the best model left out: it needs at least "
                f"{MIN_BOOTSTRAP} completed trials ({n} here)")
    k = _draws(n, fraction)
    lines = [f"  bootstrap of the best model ({samples} resamples of {k} of "
             f"the {n} completed trials, seed {seed}):"]
    lines.append(f"  {'':18} {'2.5%':>9} {'median':>9} {'97.5%':>9}")
    for name, p in bootstrap_best(rows, None, samples, fraction, seed).items():
        scale = 100 if name == "error" else 1
        lines.append(f"  {'error (%)' if name == 'error' else name:18} "
                     + " ".join(f"{scale * v:9.4g}" for v in p))
    return "\n".join(lines)


def _is_number(x):
    return isinstance(x, (int, float, np.integer, np.floating)) \
        and not isinstance(x, bool) and math.isfinite(x)


def _num(x):
    return f"{x:g}" if isinstance(x, (int, float)) else "-"


def _cell(x):
    return "-" if x in (None, "") else str(x)


def _base(key):
    """`"width_3"` -> `("width", 3)`; `"wa"` -> `("wa", 0)`."""
    m = _STAGE_KEY.fullmatch(key)
    return (m.group(1), int(m.group(2))) if m else (key, 0)


def _label(name):
    base, i = _base(name)
    return _STAGE_LABELS[base].format(i=i) if i else _LABELS[base]


def _int_list(name, value):
    if is_real(value):
        value = [value]
    elif isinstance(value, str):
        value = value.split("-")
    try:
        out = [int(v) for v in value]
    except (TypeError, ValueError):
        out = []
    if not out or any(v < 0 for v in out):
        raise ValueError(f"Invalid `{name}`: {value!r}. Expected ints >= 0 "
                         "or a '-'-joined string of them (e.g. '1-3-7').")
    return out


def _edf_at(x, f, grid):
    i = np.searchsorted(x, grid, side="right") - 1
    return np.where(i >= 0, f[np.maximum(i, 0)], 0.0)


def _effective_size(weights):
    w = np.asarray(weights, dtype=float)
    return w.sum() ** 2 / np.sum(w ** 2)


def _draws(n, fraction):
    return max(1, int(n * fraction))


def _check_bootstrap(samples, fraction):
    if not (isinstance(samples, (int, np.integer)) and samples >= 1):
        raise invalid("samples", samples, "an integer >= 1")
    if not (is_real(fraction) and 0 < fraction <= 1):
        raise invalid("fraction", fraction, "0 < fraction <= 1")


def _best_of_draws(errors, k, samples, rng):
    """Indices of the lowest error in each of `samples` draws of `k`."""
    best = np.empty(samples, dtype=np.intp)
    chunk = max(1, 2 ** 20 // k)  # Bounds the index array to 8 MB.
    for start in range(0, samples, chunk):
        idx = rng.integers(0, len(errors), size=(min(chunk, samples - start), k))
        best[start:start + len(idx)] = idx[np.arange(len(idx)),
                                           np.argmin(errors[idx], axis=1)]
    return best


def _trial(row):
    """The trial's number as the trial lines print it (older runs: its id)."""
    return row.get("trial") if row.get("trial") not in (None, "") else row["trial_id"]


def _best_label(row):
    return f"best: trial {_trial(row)}, {100 * row['error']:.2f} % error"


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
    base = _base(name)[0]
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
