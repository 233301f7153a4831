"""The best quantized-linear fit of a network's block widths (paper, sec. 3.3)."""

import numpy as np

from keras_regnet.design.checks import check
from keras_regnet.design.regnet import QUANTUM, quantized_linear

# Range of the width multiplier searched (the paper's RegNets have 1.5-3).
WM_RANGE = (1.05, 4.0)
_COARSE = 64  # log-spaced wm values of the first pass
_FINE = 17  # wm values per neighbourhood and refinement round (odd: keeps the centre)
_ROUNDS = 4
_CHUNK = 32  # wm values scanned together (similar wm: similar level counts)
_KEEP = 3  # neighbourhoods refined per round


def fit_regnet(block_widths, q=QUANTUM):
    """Fits the quantized linear rule to per-block widths.

    Finds `w0`, `wa` and `wm` minimising the paper's fit error
    `e_fit = mean_j |log(w_hat_j / w_j)|`, where `w_hat` are the widths that
    `quantized_linear(depth, w0, wa, wm, q)` gives.

    The search: `w0` is one of the three multiples of `q` nearest the first
    width (block 0 always has width `w0`). For each `(w0, wm)` the best `wa`
    is exact: a block moves up one level of the rule at
    `wa = w0 * (wm ** (i - 1/2) - 1) / j`, so sweeping these points in
    order gives the error on every interval of `wa`, and the geometric
    middle of the best interval is taken. `wm` is searched over a log grid
    of `WM_RANGE`, the values that put the largest width exactly on a
    level, and points of the intervals of `wm` in which every width is a
    level of the rule; then refined around the best values. Widths that
    the rule produced are recovered exactly (`e_fit` 0).

    Args:
        block_widths: a non-empty sequence of positive ints, one per block.
        q: width quantum.

    Returns:
        A dict with `"depth"` (number of blocks), `"w0"` (int), `"wa"`,
        `"wm"` and `"e_fit"` (floats).
    """
    check(isinstance(q, (int, np.integer)) and not isinstance(q, bool) and q >= 1,
           "q", q, "an integer >= 1")
    widths = _validate_widths(block_widths)
    log_w = np.log(widths)
    k0 = max(int(round(widths[0] / q)), 1)
    lo, hi = np.log(WM_RANGE)
    grid = np.exp(np.linspace(lo, hi, _COARSE))
    found = []  # (errors, wa interval widths, w0, wm, wa) per scan
    for w0 in sorted({max(k, 1) * q for k in (k0 - 1, k0, k0 + 1)}):
        levels = np.arange(1, int(np.ceil(np.log(widths.max() / w0) / lo)) + 1)
        wm = np.concatenate([grid, (widths.max() / w0) ** (1.0 / levels)])
        wm = np.concatenate([wm, _on_levels(widths, w0, wm, q)])
        found.append(_scan(log_w, w0, wm[(wm >= WM_RANGE[0]) & (wm <= WM_RANGE[1])], q))
    step = (hi - lo) / (_COARSE - 1)
    for _ in range(_ROUNDS):
        err, span, w0, wm, _ = (np.concatenate(x) for x in zip(*found))
        if err.min() < 1e-10:  # exact: nothing to refine
            break
        for k in _ranked(err, span)[:_KEEP]:
            around = np.exp(np.log(wm[k]) + np.linspace(-step, step, _FINE))
            found.append(_scan(log_w, w0[k], around[
                (around >= WM_RANGE[0]) & (around <= WM_RANGE[1])], q))
        step *= 2 / (_FINE - 1)
    err, span, w0, wm, wa = (np.concatenate(x) for x in zip(*found))
    best = _ranked(err, span)[0]
    w0, wa, wm = int(w0[best]), float(wa[best]), float(wm[best])
    fitted = np.asarray(quantized_linear(len(widths), w0, wa, wm, q))
    return {"depth": len(widths), "w0": w0, "wa": wa, "wm": wm,
            "e_fit": float(np.mean(np.abs(np.log(fitted / widths))))}


def _validate_widths(block_widths):
    ok = (isinstance(block_widths, (list, tuple, np.ndarray))
          and len(block_widths) > 0
          and all(isinstance(w, (int, np.integer)) and not isinstance(w, bool)
                  and w >= 1 for w in block_widths))
    check(ok, "block_widths", block_widths,
           "a non-empty sequence of positive ints")
    return np.asarray(block_widths, dtype=float)


def _on_levels(widths, w0, wm, q):
    """For each `wm`, points of the `wm` interval (if any) in which every
    distinct width is exactly a level of the rule, at the level nearest it."""
    distinct = np.unique(widths[widths > w0])
    if not len(distinct):
        return np.empty(0)
    level = np.round(np.log(distinct / w0) / np.log(wm[:, None]))  # (m, n)
    level = np.maximum(level, 1)
    # round(w0 * wm**i / q) * q == W  <=>  W - q/2 <= w0 * wm**i <= W + q/2.
    lo = np.max(np.log((distinct - q / 2) / w0) / level, axis=1)
    hi = np.min(np.log((distinct + q / 2) / w0) / level, axis=1)
    lo, hi = np.unique(np.stack([lo, hi])[:, lo < hi], axis=1)  # one per assignment
    return np.exp(lo[:, None] + (hi - lo)[:, None] * np.linspace(0.1, 0.9, 5)).ravel()


def _ranked(err, span):
    """Candidates by error, ties (to 1e-10: sums of logs) by the widest
    interval of `wa`, whose middle is safest from rounding."""
    return np.lexsort((-span, np.round(err, 10)))


def _scan(log_w, w0, wm, q):
    """`(errors, spans, w0, wm, wa)` arrays: the best `wa` for each `wm`."""
    wm = np.sort(wm)
    err, span, wa = (np.concatenate(x) for x in zip(*(
        _best_wa(log_w, w0, wm[k:k + _CHUNK], q) for k in range(0, len(wm), _CHUNK))))
    return err, span, np.full(len(wm), w0), wm, wa


def _best_wa(log_w, w0, wm, q):
    """Lowest fit error over `wa` for each `wm` (vector): `(errors, spans,
    wa)`, `span` the log-width of the interval of `wa` whose middle is taken.

    Level `i` of the rule has width `round(w0 * wm ** i / q) * q`; block `j`
    sits on level `round(log(1 + wa * j / w0) / log(wm))`.
    """
    d = len(log_w)
    if d == 1:  # wa plays no part
        return (np.full(len(wm), abs(np.log(w0) - log_w[0])), np.zeros(len(wm)),
                np.ones(len(wm)))
    # Levels up to twice the largest width: higher ones only add error.
    n_levels = int(np.ceil(np.log(2 * np.exp(log_w.max()) / w0) / np.log(wm.min())))
    n_levels = max(n_levels, 1)
    i = np.arange(n_levels + 2)
    level_w = np.round(w0 * np.power(wm[:, None], i) / q) * q  # (m, L + 2)
    cost = np.abs(np.log(level_w)[:, None, :] - log_w[None, :, None])  # (m, d, L + 2)
    j = np.arange(1, d)
    # Block j enters level i (1..L+1) at wa = w0 * (wm^(i - 1/2) - 1) / j.
    t = w0 * (np.power(wm[:, None], i[1:] - 0.5) - 1)  # (m, L + 1)
    # Beyond the first entry into level L + 1 the levels are not tracked.
    cap = t[:, -1] / (d - 1)
    events = (t[:, :-1, None] / j).reshape(len(wm), -1)  # (m, L * (d - 1))
    jj = np.broadcast_to(j, (n_levels, d - 1)).ravel()
    ii = np.repeat(i[1:-1], d - 1)
    delta = (cost[:, jj, ii] - cost[:, jj, ii - 1]) / d
    order = np.argsort(events, axis=1, kind="stable")
    events = np.take_along_axis(events, order, axis=1)
    start = cost[:, :, 0].mean(axis=1, keepdims=True)
    err = np.concatenate(
        [start, start + np.cumsum(np.take_along_axis(delta, order, axis=1), axis=1)],
        axis=1)
    left = np.concatenate([events[:, :1] / 2, events], axis=1)
    right = np.minimum(np.concatenate([events, 2 * events[:, -1:]], axis=1), cap[:, None])
    # Empty or untracked intervals, and ties in rounding, are left out.
    span = np.log(np.maximum(right, left) / left)
    err = np.where(span > 1e-9, err, np.inf)
    best = np.argmax(np.where(err <= err.min(axis=1, keepdims=True) + 1e-10, span, -1),
                     axis=1)
    rows = np.arange(len(wm))
    return (err[rows, best], span[rows, best],
            np.sqrt(left[rows, best] * right[rows, best]))
