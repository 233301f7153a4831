"""Design-space statistics, as in the papers, from a run's `trials.csv`.

Error EDFs, plain or normalised for complexity (Radosavovic et al. 2019),
Kolmogorov-Smirnov distances between runs, the bootstrap of the best model
and its parameters (Radosavovic et al. 2020, sec. 3-4). NumPy only.
"""

import math
import os
import re

import numpy as np

from keras_regnet.design.checks import invalid, is_real
from tuner.trials import TRIALS_CSV, read_trials_csv

EDF_KINDS = ("error", "normalized")
BOOTSTRAP_SAMPLES = 10000
BOOTSTRAP_FRACTION = 0.25
PERCENTILES = (2.5, 50.0, 97.5)
# Parameters in display order: RegNet's, AnyNet's per-stage ones (`depth_1`
# ...), then the training hyperparameters when searched.
_ORDER = ("depth", "w0", "wa", "wm", "width", "bottleneck_ratio",
          "group_width", "learning_rate", "weight_decay")
_STAGE_KEY = re.compile(r"(depth|width|bottleneck_ratio|group_width)_(\d+)")
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
    keys = {k for r in done for k in r if param_base(k)[0] in _ORDER}
    names = sorted(keys, key=lambda k: (_ORDER.index(param_base(k)[0]), param_base(k)[1]))
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
    best = _best_of_draws(errors, bootstrap_draws(len(done), fraction), samples,
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


def param_base(key):
    """`"width_3"` -> `("width", 3)`; `"wa"` -> `("wa", 0)`."""
    m = _STAGE_KEY.fullmatch(key)
    return (m.group(1), int(m.group(2))) if m else (key, 0)


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


def effective_size(weights):
    w = np.asarray(weights, dtype=float)
    return w.sum() ** 2 / np.sum(w ** 2)


def bootstrap_draws(n, fraction):
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
