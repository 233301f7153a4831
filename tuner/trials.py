"""Per-trial records and `trials.csv`: written by the oracle, read by the report."""

import csv
import re

from keras_regnet.design.sampling import PARAM_NAMES
from keras_regnet.files import atomic_path

# Fixed leading columns; hyperparameters beyond the six and metrics follow.
DERIVED = ("block", "num_stages", "depths", "widths", "group_widths",
           "flops", "params", "acts")
LEADING = ("trial_id", "status", "tuner_id", *PARAM_NAMES, *DERIVED,
           "score", "error", "epochs", "wall_time_s")
TRAILING = ("message",)
_LISTS = ("depths", "widths", "group_widths")


def short_reason(message):
    """The last line of a trial's traceback without the exception's module, or `""`."""
    lines = [line.strip() for line in (message or "").splitlines() if line.strip()]
    return re.sub(r"^[\w.]+\.(\w+: )", r"\1", lines[-1]) if lines else ""


def trial_record(trial, derived, extra):
    """One CSV row (a dict) for a Keras Tuner `Trial`.

    Args:
        trial: the `Trial`.
        derived: `RegNetDesignSpace.describe` of its values (stages, complexity).
        extra: dict with `tuner_id` and `wall_time_s` recorded by the oracle.
    """
    values = dict(trial.hyperparameters.values)
    row = {"trial_id": trial.trial_id, "status": trial.status,
           "tuner_id": extra.get("tuner_id", ""),
           "wall_time_s": round(extra["wall_time_s"], 2) if "wall_time_s" in extra else "",
           "message": short_reason(trial.message)}
    row.update(values)
    row.update(derived)
    metrics = {}
    for name in trial.metrics.metrics:
        value = trial.metrics.get_best_value(name)
        if value is not None:
            metrics[name] = value
    row["epochs"] = metrics.pop("epochs", "")
    # Keras logs the scheduled learning rate as a metric; the hyperparameter wins.
    row.update({k: v for k, v in metrics.items() if k not in values})
    row["score"] = "" if trial.score is None else trial.score
    if "val_accuracy" in metrics:
        row["error"] = 1.0 - metrics["val_accuracy"]
    for key in _LISTS:
        if key in row:
            row[key] = "-".join(str(v) for v in row[key])
    return row


def write_trials_csv(path, rows):
    """Writes rows atomically (temporary file in the same folder, then rename)."""
    seen = [k for row in rows for k in row]
    middle = sorted(set(seen) - set(LEADING) - set(TRAILING))
    fields = [*LEADING, *middle, *TRAILING]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


def read_trials_csv(path):
    """Reads `trials.csv` into a list of dicts with numbers parsed."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        for key, value in row.items():
            if key in ("trial_id", "status", "tuner_id", "block", "message",
                       *_LISTS) or value == "":
                continue
            row[key] = _number(value)
    return rows


def _number(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
