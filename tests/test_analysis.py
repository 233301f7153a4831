"""`tuner.analysis` and `python -m tuner report`: EDFs plain and normalised
for complexity, KS distances, the bootstrap of the best model, the plots
(issues 14, 15)."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from keras_regnet.design import AnyNetSpec, complexity, make_compatible, regnet_spec
from tuner import analysis
from tuner.trials import write_trials_csv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PNG = b"\x89PNG\r\n\x1a\n"


def _joined(values):
    return "-".join(str(v) for v in values)


def _row(i, rng, spec, hps, error_shift):
    cx = complexity(spec, input_size=32, classes=10)
    # Bigger models do better, as in a real search: error falls with log flops.
    error = float(np.clip(0.9 - 0.1 * np.log10(cx["flops"]) + error_shift
                          + rng.normal(0, 0.02), 0.01, 0.99))
    return dict(trial_id=str(i), status="COMPLETED", tuner_id="tuner0", **hps,
                block="X", num_stages=spec.num_stages, depths=_joined(spec.depths),
                widths=_joined(spec.widths), group_widths=_joined(spec.group_widths),
                **cx, score=1 - error, error=error, val_accuracy=1 - error,
                learning_rate=0.1, weight_decay=5e-5, epochs=3,
                wall_time_s=round(rng.uniform(5, 20), 2), message="")


def regnet_run(n, seed, w0=(8, 64), error_shift=0.0, new_columns=True, failed=3):
    """Rows of a RegNet search: sampled as the tuner does, real complexity."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        hps = dict(depth=int(rng.integers(4, 16)),
                   w0=8 * int(rng.integers(w0[0] // 8, w0[1] // 8 + 1)),
                   wa=round(float(np.exp(rng.uniform(np.log(8), np.log(64)))), 2),
                   wm=round(float(np.exp(rng.uniform(np.log(1.5), np.log(3)))), 3),
                   bottleneck_ratio=int(rng.choice([1, 2, 4])),
                   group_width=int(rng.choice([2, 4, 8])))
        spec = regnet_spec(hps["depth"], hps["w0"], hps["wa"], hps["wm"],
                           hps["group_width"], hps["bottleneck_ratio"],
                           stem_type="cifar")
        row = _row(i, rng, spec, hps, error_shift)
        if new_columns:
            row.update(space="regnet", e_fit=round(float(rng.uniform(0, 0.05)), 4),
                       bottleneck_ratios=_joined([hps["bottleneck_ratio"]] * spec.num_stages))
        rows.append(row)
    for i in range(n, n + failed):
        rows.append(dict(trial_id=str(i), status="FAILED", tuner_id="tuner0",
                         depth=12, w0=64, wa=40.0, wm=2.0, bottleneck_ratio=1,
                         group_width=8, message="ResourceExhaustedError: OOM"))
    return rows


def anynet_run(n, seed):
    """Rows of an AnyNetX_c search: per-stage depths and widths, shared b and g."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        depths = [int(d) for d in rng.integers(1, 5, 4)]
        b, g = int(rng.choice([1, 2, 4])), int(rng.choice([2, 4, 8]))
        widths, groups = make_compatible([8 * int(w) for w in rng.integers(1, 17, 4)],
                                         [b] * 4, [g] * 4)
        spec = AnyNetSpec(depths=depths, widths=widths, bottleneck_ratios=[b] * 4,
                          group_widths=groups, stem_type="cifar")
        hps = {f"{k}_{j + 1}": v[j] for k, v in (("depth", depths), ("width", widths))
               for j in range(4)}
        hps.update(bottleneck_ratio=b, group_width=g)
        e_fit = float(rng.uniform(0, 0.6))
        row = _row(i, rng, spec, hps, 0.1 * e_fit)
        row.update(space="anynetx_c", e_fit=round(e_fit, 4),
                   bottleneck_ratios=_joined([b] * 4))
        rows.append(row)
    rows.append(dict(trial_id=str(n), status="FAILED", tuner_id="tuner0",
                     message="ValueError: bad widths"))
    return rows


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Run folders with a trials.csv: two RegNet runs with different flops
    distributions, an AnyNet run, and a run written before the `space`,
    `e_fit` and `bottleneck_ratios` columns existed."""
    root = tmp_path_factory.mktemp("runs")
    made = {"small": regnet_run(40, 0, w0=(8, 24)),
            "big": regnet_run(40, 1, w0=(24, 64), error_shift=0.02),
            "anynet": anynet_run(30, 2),
            "old": regnet_run(20, 3, new_columns=False, failed=1)}
    for name, rows in made.items():
        os.makedirs(root / name)
        write_trials_csv(root / name / "trials.csv", rows)
    return {name: str(root / name) for name in made}


def test_weighted_edf_hand_computed():
    x, f = analysis.weighted_edf([3, 1, 2, 2])
    np.testing.assert_allclose(x, [1, 2, 3])
    np.testing.assert_allclose(f, [0.25, 0.75, 1.0])
    # Weight 0 leaves a value out; the rest are weighted.
    x, f = analysis.weighted_edf([3, 1, 2, 2], [1, 0, 1, 2])
    np.testing.assert_allclose(x, [2, 3])
    np.testing.assert_allclose(f, [0.75, 1.0])
    x, f = analysis.error_edf([0.3, 0.1, 0.2])
    np.testing.assert_allclose(f, [1 / 3, 2 / 3, 1.0])


@pytest.mark.parametrize("weights, match", [
    ([1, 2], "one per value"), ([1, -1, 1], "weights >= 0"), ([0, 0, 0], "not all 0")])
def test_weighted_edf_rejects_bad_weights(weights, match):
    with pytest.raises(ValueError, match=f"Invalid `weights`.*{match}"):
        analysis.weighted_edf([1, 2, 3], weights)


def test_normalization_weights_hand_computed():
    a = [1, 2, 4, 5, 10, 12, 16]
    b = [4, 4.5, 11, 20]
    # Shared range 4-16; two log bins, 4-8 and 8-16, each of total weight 1/2.
    wa, wb = analysis.normalization_weights([a, b], bins=2)
    np.testing.assert_allclose(wa, [0, 0, 1 / 4, 1 / 4, 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(wb, [1 / 4, 1 / 4, 1 / 2, 0])
    # Default: round(sqrt(3)) = 2 bins (b has 3 models in the shared range).
    for w, expected in zip(analysis.normalization_weights([a, b]), (wa, wb)):
        np.testing.assert_allclose(w, expected)
    # Three bins (edges 6.35, 10.08): b has nothing in 6.35-10.08, so that bin
    # is dropped for both runs and the other two get 1/2 each.
    wa, wb = analysis.normalization_weights([a, b], bins=3)
    np.testing.assert_allclose(wa, [0, 0, 1 / 4, 1 / 4, 0, 1 / 4, 1 / 4])
    np.testing.assert_allclose(wb, [1 / 4, 1 / 4, 1 / 2, 0])


def test_automatic_bins_get_coarser_until_one_holds_every_run():
    a = [1, 1.1, 1.2, 1.3, 1.4, 1.5, 16]
    b = [0.5, 3, 3.5, 4.5, 5, 5.5, 6, 6.2, 20]
    # Shared range 1-16 holds 7 models of each: round(sqrt(7)) = 3 bins
    # (edges 2.52, 6.35), but a fills only the first and last, b the middle.
    # Two bins (edge 4) are the finest with a bin of both.
    wa, wb = analysis.normalization_weights([a, b])
    np.testing.assert_allclose(wa, [1 / 12] * 6 + [1 / 2])
    np.testing.assert_allclose(wb, [0, 1 / 4, 1 / 4] + [1 / 10] * 5 + [0])
    # Bins the caller fixes stay as given.
    with pytest.raises(ValueError, match="no one of the 3 log-flops bins of the shared range 1-16"):
        analysis.normalization_weights([a, b], bins=3)
    # b has no model in a's range 1-16: no bin can hold both.
    with pytest.raises(ValueError, match=r"some run has no model in the flops range all runs share \(1-16\)"):
        analysis.normalization_weights([[1, 16], [0.5, 20]])


def test_normalization_equalises_the_flops_distributions():
    # Two runs with very different log-flops densities on the same range get
    # the same weighted histogram.
    rng = np.random.default_rng(0)
    a = np.exp(rng.uniform(0, 4, 400))
    b = np.exp(4 - np.sqrt(rng.uniform(0, 16, 300)))
    wa, wb = analysis.normalization_weights([a, b], bins=8)
    edges = np.linspace(max(np.log(a).min(), np.log(b).min()),
                        min(np.log(a).max(), np.log(b).max()), 9)
    ha = np.histogram(np.log(a), edges, weights=wa)[0]
    hb = np.histogram(np.log(b), edges, weights=wb)[0]
    np.testing.assert_allclose(ha, np.full(8, 1 / 8))
    np.testing.assert_allclose(hb, np.full(8, 1 / 8))
    assert np.histogram(np.log(a), edges)[0].tolist() != np.histogram(np.log(b), edges)[0].tolist()


@pytest.mark.parametrize("flops, bins, match", [
    ([[1, 2], [3, 4]], None, "`flops`.*do not overlap"),
    ([[1, 2], []], None, r"`flops\[1\]`: \[\]. Expected a non-empty"),
    ([[1, 2], [1, 0]], None, r"`flops\[1\]`: \[1. 0.\]. Expected .* > 0"),
    ([[1, 2], [1, 2]], 0, "`bins`: 0. Expected an integer >= 1"),
])
def test_normalization_weights_rejects_bad_input(flops, bins, match):
    with pytest.raises(ValueError, match=match):
        analysis.normalization_weights(flops, bins)


def test_ks_statistic_hand_computed():
    # F_a at 1, 2, 3, 4: 1/3, 2/3, 1, 1; F_b: 0, 1/2, 1/2, 1.
    assert analysis.ks_statistic([1, 2, 3], [2, 4]) == pytest.approx(0.5)
    # Weights 3:1 on b: F_b = 0, 3/4, 3/4, 1; the largest gap is 1/3 at 1.
    assert analysis.ks_statistic([1, 2, 3], [2, 4], weights_b=[3, 1]) == pytest.approx(1 / 3)
    assert analysis.ks_statistic([1, 2], [1, 2]) == 0
    assert analysis.ks_statistic([1, 2], [3, 4]) == 1


def test_ks_statistic_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for a, b in [(rng.normal(size=50), rng.normal(0.3, size=70)),
                 (rng.integers(0, 10, 40), rng.integers(2, 12, 25))]:  # with ties
        assert analysis.ks_statistic(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic)


def test_ks_critical_value():
    # The familiar 1.36 sqrt((n + m) / (n m)) at the 5 % level.
    assert analysis.ks_critical_value(100, 100) == pytest.approx(1.3581 * np.sqrt(0.02), rel=1e-4)
    assert analysis.ks_critical_value(40, 10, alpha=0.01) == pytest.approx(
        1.6276 * np.sqrt(50 / 400), rel=1e-4)


def _uniform_rows(n):
    # Errors i / 100, i = 0..n-1; wa falls as the error rises.
    return [dict(trial_id=str(i), status="COMPLETED", error=i / 100, wa=100.0 - i,
                 depth=10 + i % 3) for i in range(n)]


@pytest.mark.parametrize("fraction, expected", [(0.25, (0, 2, 8)), (0.5, (0, 1, 5))])
def test_bootstrap_best_matches_the_distribution_of_the_minimum(fraction, expected):
    # k = 12 x fraction draws (3 or 6) from 12 equally likely trials: the
    # lowest index j has P(j <= m) = 1 - ((11 - m) / 12)^k, whose 2.5, 50 and
    # 97.5 percentiles are m = 0, 2, 8 for k = 3 and 0, 1, 5 for k = 6.
    result = analysis.bootstrap_best(_uniform_rows(12), samples=10000,
                                     fraction=fraction, seed=1)
    assert list(result) == ["error", "depth", "wa"]
    np.testing.assert_allclose(result["error"], np.array(expected) / 100)
    # The parameters are those of the same best models.
    np.testing.assert_allclose(result["wa"], 100.0 - np.array(expected[::-1]))
    again = analysis.bootstrap_best(_uniform_rows(12), samples=10000,
                                    fraction=fraction, seed=1)
    assert again == result


@pytest.mark.parametrize("kwargs, match", [
    ({"samples": 0}, "`samples`: 0"), ({"fraction": 0}, "`fraction`: 0"),
    ({"fraction": 1.5}, "`fraction`: 1.5")])
def test_bootstrap_best_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        analysis.bootstrap_best(_uniform_rows(12), **kwargs)
    with pytest.raises(ValueError, match="no completed trials"):
        analysis.bootstrap_best([dict(trial_id="0", status="FAILED")])


def test_best_error_trend_draws_equally_many_models_per_group():
    # b = 1: errors 0.1-0.4 (4 trials); b = 2: errors 0.5-0.8 (7 trials);
    # b = 4: 2 trials, too few for a group. k = 4 draws for both groups: the
    # best of 4 draws of 4 values has the percentiles 0.1, 0.1, 0.3 and of 7
    # values 0.5, 0.55, 0.7 (P(index <= j) = 1 - ((n - 1 - j) / n)^4).
    rows = ([dict(status="COMPLETED", error=0.1 * (i + 1), bottleneck_ratio=1)
             for i in range(4)]
            + [dict(status="COMPLETED", error=0.5 + 0.05 * i, bottleneck_ratio=2)
               for i in range(7)]
            + [dict(status="COMPLETED", error=0.05, bottleneck_ratio=4)] * 2)
    trend = analysis.best_error_trend(rows, "bottleneck_ratio", samples=10000, seed=0)
    assert trend["k"] == 4
    np.testing.assert_allclose(trend["x"], [1, 2])
    np.testing.assert_allclose(trend["count"], [4, 7])
    np.testing.assert_allclose(trend["error"], [[0.1, 0.5], [0.1, 0.55], [0.3, 0.7]])
    # Many distinct values: up to 6 groups of equal counts (40 // 10 = 4).
    rows = [dict(status="COMPLETED", error=0.5, wa=float(i)) for i in range(40)]
    np.testing.assert_allclose(analysis.best_error_trend(rows, "wa", 100)["count"], [10] * 4)


def test_block_widths():
    assert analysis.block_widths("1-3-2", "24-56-152") == [24, 56, 56, 56, 152, 152]
    assert analysis.block_widths([2], [8]) == [8, 8]
    assert analysis.block_widths("2", 16) == [16, 16]
    with pytest.raises(ValueError, match="Invalid `widths`: '24-56'. Expected one width"):
        analysis.block_widths("1-3-2", "24-56")
    with pytest.raises(ValueError, match="Invalid `depths`"):
        analysis.block_widths("1-x", "24-56")


def test_run_params_of_regnet_anynet_and_old_runs(runs):
    regnet = ["depth", "w0", "wa", "wm", "bottleneck_ratio", "group_width"]
    assert analysis.run_params(analysis.load_run(runs["small"])) == regnet
    assert analysis.run_params(analysis.load_run(runs["old"])) == regnet
    assert analysis.run_params(analysis.load_run(runs["anynet"])) == [
        *(f"depth_{i}" for i in range(1, 5)), *(f"width_{i}" for i in range(1, 5)),
        "bottleneck_ratio", "group_width"]


def test_normalized_edf_of_runs_with_different_flops(runs):
    loaded = [(name, analysis.load_run(runs[name])) for name in ("small", "big")]
    (_, ea, wa, fa), (_, eb, wb, fb) = analysis.run_edfs(loaded, "normalized")
    assert len(ea) == len(eb) == 40  # FAILED rows left out.
    assert wa.sum() == pytest.approx(1) and wb.sum() == pytest.approx(1)
    # The runs overlap in part: only models in the shared flops range count.
    lo, hi = max(fa.min(), fb.min()), min(fa.max(), fb.max())
    for f, w in ((fa, wa), (fb, wb)):
        assert 0 < np.count_nonzero(w) < 40
        assert np.all((f[w > 0] >= lo) & (f[w > 0] <= hi))
    # Bigger models do better: the plain EDFs differ more than the normalised.
    plain = analysis.ks_statistic(ea, eb)
    assert analysis.ks_statistic(ea, eb, wa, wb) < plain
    with pytest.raises(ValueError, match="Invalid `edf`: 'weighted'"):
        analysis.run_edfs(loaded, "weighted")


def _report(*args):
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run([sys.executable, "-m", "tuner", "report", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=300)


def test_report_compares_runs_and_writes_the_plots(runs, tmp_path):
    overlay = str(tmp_path / "compare.png")
    proc = _report(runs["small"], runs["big"], runs["anynet"], runs["old"],
                   "--out", overlay, "--bootstrap", "2000", "--top", "3")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "bootstrap of the best model (2000 resamples of 10 of the 40 completed" in out
    assert "KS statistic D" in out and "normalized" in out
    lines = out.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("  run a")))
    assert len(lines[header + 1:header + 7]) == 6  # 4 runs: 6 pairs.
    for d in runs.values():
        names = ["edf.png", "params.png", "trends.png", "block_widths.png"]
        names += [] if d == runs["old"] else ["efit.png"]
        for name in names:
            with open(os.path.join(d, name), "rb") as f:
                assert f.read(8) == PNG, name
            assert os.path.join(d, name) in out
    assert not os.path.exists(os.path.join(runs["old"], "efit.png"))
    with open(overlay, "rb") as f:
        assert f.read(8) == PNG
    assert overlay in out


def test_report_without_a_common_flops_range_compares_plain_edfs(tmp_path, capsys):
    from tuner import cli

    rows = regnet_run(12, 4, failed=0)
    bigger = [dict(r, flops=r["flops"] * 1000) for r in rows]
    for name, run in (("a", rows), ("b", bigger)):
        (tmp_path / name).mkdir()
        write_trials_csv(tmp_path / name / "trials.csv", run)
    args = [str(tmp_path / "a"), str(tmp_path / "b"), "--bootstrap", "100",
            "--out", str(tmp_path / "c.png")]
    assert cli.main(["report", *args]) == 0
    out = capsys.readouterr().out
    assert "note: Invalid `flops`: the runs' flops ranges do not overlap" in out
    assert "Comparing the plain error EDFs instead." in out
    # Same errors in both runs: the plain EDFs are equal.
    assert re.search(rf"^  {re.escape(args[0])} +{re.escape(args[1])} +0\.000 ", out, re.M)
    assert "Error EDFs of the 2 runs" in out


def test_report_imports_neither_tensorflow_nor_keras(runs, tmp_path):
    code = ("import sys; from tuner.cli import main; "
            f"main(['report', {runs['small']!r}, {runs['anynet']!r}, '--bootstrap', "
            f"'100', '--out', {str(tmp_path / 'c.png')!r}]); "
            "print(sorted(m for m in ('tensorflow', 'keras', 'keras_tuner') "
            "if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                          text=True, timeout=300, env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize("args, message", [
    (["MISSING"], "error: Invalid run directory: 'MISSING'. Expected a folder "
                  "holding trials.csv"),
    (["EMPTY"], "error: Invalid run directory: 'EMPTY'"),
    (["RUN", "--edf", "weighted"], "error: Invalid `--edf`: 'weighted'. Expected "
                                   "one of error, normalized."),
    (["RUN", "--bootstrap", "0"], "error: Invalid `--bootstrap`: 0. Expected an "
                                  "integer >= 1."),
    (["RUN", "--top", "two"], "error: Invalid `--top`: 'two'. Expected a number"),
    (["RUN", "RUN", "--out", "FILE/x.png"], "error: Invalid `--out`"),
])
def test_report_bad_input_is_one_line(runs, tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("mine")
    subs = {"MISSING": str(tmp_path / "missing"), "EMPTY": str(tmp_path / "empty"),
            "RUN": runs["old"], "FILE/x.png": str(tmp_path / "file" / "x.png")}
    proc = _report(*[subs.get(a, a) for a in args])
    assert proc.returncode == 2
    for key, value in subs.items():
        message = message.replace(f"'{key}'", repr(value))
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stdout == ""


def test_small_runs_leave_out_what_they_cannot_show(tmp_path):
    """Trend panels need 2 groups of 3 completed trials, the bootstrap 20
    completed trials; below that one line says why, and no figure says it
    has nothing to show."""
    five = regnet_run(5, 0, failed=1)  # 2 groups of 3 need 6
    assert analysis.trend_params(five) == []
    assert "trends.png" not in analysis.plot_files(five)
    (line,) = analysis.plots_left_out(five)
    assert line == ("trends.png left out: no parameter has 2 groups of at least 3 "
                    "completed trials yet (5 completed)")
    assert analysis.bootstrap_summary(five).strip() == (
        "bootstrap of the best model left out: it needs at least 20 completed "
        "trials (5 here)")
    written = analysis.write_plots(tmp_path, five, samples=100)
    assert sorted(os.path.basename(p) for p in written) == sorted(os.listdir(tmp_path))
    assert "trends.png" not in os.listdir(tmp_path)

    # b takes 3 values over 40 trials: its panel shows; depth's too.
    forty = regnet_run(40, 0, failed=0)
    assert {"bottleneck_ratio", "depth"} <= set(analysis.trend_params(forty))
    assert analysis.plots_left_out(forty) == []
    assert "trends.png" in analysis.plot_files(forty)
    assert "resamples of 10 of the 40 completed" in analysis.bootstrap_summary(forty, 100)
