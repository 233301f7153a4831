"""The text report of a run: counts, quantiles, best trials, the
bootstrap of the best model, and the KS table of runs compared."""

import numpy as np

from keras_regnet.design.checks import is_real
from keras_regnet.design.sampling import PARAM_NAMES
from tuner.trials import TRIALS_CSV
from tuner.analysis.plots import TRENDS_PNG, trial_label
from tuner.analysis.stats import (BOOTSTRAP_FRACTION, BOOTSTRAP_SAMPLES, MIN_BOOTSTRAP,
                                  comparable_edf,
                                  MIN_GROUP, MIN_GROUPS, bootstrap_best,
                                  bootstrap_draws, completed, effective_size,
                                  ks_critical_value, ks_statistic, run_edfs,
                                  trend_params)


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
            na, nb = effective_size(wa), effective_size(wb)
            d = ks_statistic(ea, eb, wa, wb)
            lines.append(f"  {la:<{width}}  {lb:<{width}}  {d:5.3f}  "
                         f"{ks_critical_value(na, nb):5.3f}  {na:6.4g}  {nb:6.4g}")
    return "\n".join(lines)


def plots_left_out(rows):
    """Lines saying which plots a run has too few trials for, and why."""
    n = len(completed(rows))
    if n and not trend_params(rows):
        return [f"{TRENDS_PNG} left out: no parameter has {MIN_GROUPS} groups of "
                f"at least {MIN_GROUP} completed trials yet ({n} completed)"]
    return []


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
                         f"{'wm':>5} {'b':>4} {'g':>3} {'MFLOPs':>8} {'Mparams':>8} "
                         f"{'epochs':>6} {'time s':>7}")
        else:
            lines.append(f"  {'trial':>6} {'error%':>7} {'depths':>12} {'widths':>20} "
                         f"{'b':>9} {'g':>12} {'MFLOPs':>8} {'Mparams':>8} "
                         f"{'epochs':>6} {'time s':>7}")
        for r in done[:top]:
            if regnet:
                model = (f"{r['depth']:3d} {r['w0']:4d} {r['wa']:7.2f} {r['wm']:5.3f} "
                         f"{_num(r['bottleneck_ratio']):>4} {r['group_width']:3d}")
            else:
                model = (f"{_cell(r.get('depths')):>12} {_cell(r.get('widths')):>20} "
                         f"{_cell(r.get('bottleneck_ratios', r.get('bottleneck_ratio'))):>9} "
                         f"{_cell(r.get('group_widths')):>12}")
            lines.append(
                f"  {trial_label(r):>6} {100 * r['error']:7.2f} {model} "
                f"{r['flops'] / 1e6:8.2f} {r['params'] / 1e6:8.3f} "
                f"{_num(r.get('epochs')):>6} {_num(r.get('wall_time_s')):>7}")
    for r in failed[:top]:
        lines.append(f"  failed trial {trial_label(r)}: {r['message']}")
    return "\n".join(lines)


def bootstrap_summary(rows, samples=BOOTSTRAP_SAMPLES, fraction=BOOTSTRAP_FRACTION,
                      seed=0):
    """Text: `bootstrap_best` of a run as a table of percentiles."""
    n = len(completed(rows))
    if n < MIN_BOOTSTRAP:
        return (f"  bootstrap of the best model left out: it needs at least "
                f"{MIN_BOOTSTRAP} completed trials ({n} here)")
    k = bootstrap_draws(n, fraction)
    lines = [f"  bootstrap of the best model ({samples} resamples of {k} of "
             f"the {n} completed trials, seed {seed}):"]
    lines.append(f"  {'':18} {'2.5%':>9} {'median':>9} {'97.5%':>9}")
    for name, p in bootstrap_best(rows, None, samples, fraction, seed).items():
        scale = 100 if name == "error" else 1
        lines.append(f"  {'error (%)' if name == 'error' else name:18} "
                     + " ".join(f"{scale * v:9.4g}" for v in p))
    return "\n".join(lines)


def _num(x):
    return f"{x:g}" if isinstance(x, (int, float)) else "-"


def _cell(x):
    return "-" if x in (None, "") else str(x)


def report_runs(runs, samples, seed, top, edf, out):
    """`python -m tuner report`: each run's plots and summary; with several
    runs, their KS table and overlaid EDFs (`edf` kind) in `out`."""
    from tuner.analysis.plots import plot_edf, write_plots

    for d, rows in runs:
        written = write_plots(d, rows, samples, seed, top)
        print(summary(d, rows, top))
        print(bootstrap_summary(rows, samples, seed=seed))
        for line in plots_left_out(rows):
            print(f"  {line}")
        print(f"  plots: {', '.join(written)}")
    if len(runs) > 1:
        edf, note = comparable_edf(runs, edf)
        if note:
            print(f"note: {note}")
        plot_edf(runs, out, edf)
        print(ks_table(runs, edf))
        print(f"{'Flops-normalized e' if edf == 'normalized' else 'E'}rror EDFs "
              f"of the {len(runs)} runs: {out}")
