"""Per-trial records and `trials.csv`: written by the oracle, read by the report."""

import csv
import math
import re

from keras_regnet.files import atomic_path

# Leading columns; the space's hyperparameters follow `space`, then these.
TRIALS_CSV = "trials.csv"
IDS = ("trial", "trial_id", "status", "tuner_id", "space")
DERIVED = ("block", "num_stages", "depths", "widths", "bottleneck_ratios",
           "group_widths", "e_fit", "flops", "params", "acts")
RESULTS = ("score", "error", "epochs", "wall_time_s")
TRAILING = ("message",)
_LISTS = ("depths", "widths", "bottleneck_ratios", "group_widths")
_TEXT = ("trial_id", "status", "tuner_id", "space", "block", "message", *_LISTS)


def trial_number(trial_id):
    """The number people count a trial by: Keras Tuner's id ("00", ...) + 1."""
    return int(trial_id) + 1 if str(trial_id).isdigit() else trial_id


_SHORT = {"depth": "d", "bottleneck_ratio": "b", "group_width": "g"}


def config_text(values, derived):
    """A configuration in a few words: RegNet's six parameters, or an
    AnyNet's per-stage depths, widths, b and g (one value when shared)."""
    if "w0" in values:
        return " ".join(
            f"{_SHORT.get(name, name)}={values[name]:.3g}" if isinstance(values[name], float)
            else f"{_SHORT.get(name, name)}={values[name]}"
            for name in ("depth", "w0", "wa", "wm", "bottleneck_ratio", "group_width"))
    parts = []
    for short, key in (("d", "depths"), ("w", "widths"), ("b", "bottleneck_ratios"),
                       ("g", "group_widths")):
        items = derived.get(key)
        if items:
            shown = items[:1] if len(set(items)) == 1 and short in "bg" else items
            parts.append(f"{short}={'-'.join(map(str, shown))}")
    return " ".join(parts)


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
    row = {"trial": trial_number(trial.trial_id), "trial_id": trial.trial_id,
           "status": trial.status,
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


def write_trials_csv(path, rows, param_names=()):
    """Writes rows atomically; `param_names` (the space's hyperparameters)
    come first after the ids, the other metrics before the message."""
    seen = dict.fromkeys(k for row in rows for k in row)
    leading = [*IDS, *param_names, *(k for k in ("learning_rate", "weight_decay")
                                     if k in seen), *DERIVED, *RESULTS]
    middle = sorted(set(seen) - set(leading) - set(TRAILING))
    fields = [*leading, *middle, *TRAILING]
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=fields, restval="")
        writer.writeheader()
        writer.writerows(rows)


# Columns that hold a number when they are not empty, and its range.
_RANGES = {"error": (0.0, 1.0), "score": (None, None), "flops": (0.0, None),
           "params": (0.0, None), "acts": (0.0, None), "epochs": (0.0, None),
           "wall_time_s": (0.0, None), "trial": (1, None)}


def read_trials_csv(path):
    """Reads `trials.csv` into a list of dicts with numbers parsed.

    Raises:
        ValueError: the file is damaged (no header, a row with too many or
            too few cells, a number that is not finite or out of range, not
            UTF-8), naming the file, the line and what is wrong.
    """
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = reader.fieldnames or []
    except (UnicodeDecodeError, csv.Error) as e:
        raise _damaged(path, f"it cannot be read as CSV ({e})") from None
    missing = [k for k in ("trial_id", "status") if k not in fields]
    if missing:
        raise _damaged(path, f"its header lacks {', '.join(missing)}")
    for line, row in enumerate(rows, 2):
        if None in row or None in row.values():
            raise _damaged(path, f"line {line} has {'more' if None in row else 'fewer'}"
                                 f" cells than the header's {len(fields)}")
        for key, value in row.items():
            if key in _TEXT or value == "":
                continue
            row[key] = _number(value)
            _check_cell(path, line, key, row[key])
    return rows


def _check_cell(path, line, key, value):
    if key not in _RANGES:
        return
    lo, hi = _RANGES[key]
    if (not isinstance(value, (int, float)) or not math.isfinite(value)
            or (lo is not None and value < lo) or (hi is not None and value > hi)):
        allowed = ("a finite number" + (f" >= {lo}" if lo is not None else "")
                   + (f" and <= {hi}" if hi is not None else ""))
        raise _damaged(path, f"line {line}: `{key}` is {value!r}, expected {allowed}")


def _damaged(path, problem):
    return ValueError(f"Invalid run: {path!r} is damaged: {problem}. Rerun the "
                      "search, or restore the file.")


def _number(text):
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text
