"""Design-space analysis of search runs, as in the papers.

`stats` (NumPy only: EDFs, KS, bootstrap), `plots` (Matplotlib, loaded on
first use) and `report` (the text summary); their public names are here too.
"""

from tuner.analysis.stats import (EDF_KINDS, BOOTSTRAP_SAMPLES, BOOTSTRAP_FRACTION,
                                  PERCENTILES, MIN_GROUP, MIN_GROUPS, MIN_BOOTSTRAP,
                                  load_run, completed, run_params, weighted_edf,
                                  error_edf, normalization_weights, run_edfs,
                                  comparable_edf, ks_statistic, ks_critical_value,
                                  bootstrap_best, best_error_trend, trend_params,
                                  block_widths, param_base, effective_size,
                                  bootstrap_draws)
from tuner.analysis.plots import (EDF_PNG, PARAMS_PNG, TRENDS_PNG, WIDTHS_PNG,
                                  EFIT_PNG, plot_edf, plot_params, plot_trends,
                                  plot_block_widths, plot_efit, plot_files,
                                  write_plots, trial_label)
from tuner.analysis.report import (ks_table, plots_left_out, summary,
                                   bootstrap_summary, report_runs)

__all__ = [
    "EDF_KINDS", "BOOTSTRAP_SAMPLES", "BOOTSTRAP_FRACTION", "PERCENTILES",
    "MIN_GROUP", "MIN_GROUPS", "MIN_BOOTSTRAP", "load_run", "completed",
    "run_params", "weighted_edf", "error_edf", "normalization_weights",
    "run_edfs", "comparable_edf", "ks_statistic", "ks_critical_value",
    "bootstrap_best", "best_error_trend", "trend_params", "block_widths",
    "param_base", "effective_size", "bootstrap_draws", "EDF_PNG", "PARAMS_PNG",
    "TRENDS_PNG", "WIDTHS_PNG", "EFIT_PNG", "plot_edf", "plot_params",
    "plot_trends", "plot_block_widths", "plot_efit", "plot_files", "write_plots",
    "trial_label", "ks_table", "plots_left_out", "summary", "bootstrap_summary",
    "report_runs"]
