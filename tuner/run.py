"""`run_search(config, out)`: a whole search, as `python -m tuner search` runs it.

Checks the config, the folder and the dataset before any training, writes
`search.json`, searches (in this process, or with worker processes), then
writes the plots, the summary and the best model.
"""

import os
import time

from keras_regnet.design.sampling import format_count
from tuner import folder
from tuner.config import SearchConfig

# What the README's main job measured per trial against the tensorflow
# backend on the same 2-core CPU (see docs/performance.md).
CPU_BACKEND_NOTES = {
    "jax": "on a CPU, jax trains these models 3-14x slower than tensorflow "
           "(grouped convolutions the most): KERAS_BACKEND=tensorflow is the "
           "fast choice here",
    "torch": "on a CPU, torch trains these models about 2x slower than "
             "tensorflow: KERAS_BACKEND=tensorflow is the fast choice here",
}


def prepare(config, out, resume=False):
    """Checks the dataset and the design space and resolves the image size,
    before any training. Returns `(info, hypermodel)`; `ValueError` on bad
    input."""
    from tuner.data import describe_dataset

    info = describe_dataset(config.dataset, config.image_size)
    config.image_size = info.input_shape[0]
    folder.check_out(out, config, resume)  # now with the image size
    return info, folder.make_hypermodel(config, info)


def run_search(config=None, out="runs/search", resume=False):
    """Runs a design-space search into the folder `out`.

    Args:
        config: a `tuner.SearchConfig` (None: the defaults, a RegNet search
            on the bundled digits).
        out: the search folder: new or empty, or with `resume=True` the
            folder of the same search, whose completed trials are kept.
        resume: continue the search in `out`.

    Returns:
        The tuner (`tuner.RegNetTuner`), e.g. for `get_best_models()`.

    Raises:
        ValueError: a bad config, `out` or dataset, before any training.
    """
    config = SearchConfig() if config is None else config
    if not isinstance(config, SearchConfig):
        raise ValueError(f"Invalid `config`: {config!r}. Expected a tuner.SearchConfig.")
    folder.check_out(out, config, resume, ignore=("image_size",))
    info, hypermodel = prepare(config, out, resume)
    return search_prepared(config, out, info, hypermodel)


def search_prepared(config, out, info, hypermodel):
    """`run_search` after `prepare`: writes `search.json` and searches."""
    fresh = not os.path.exists(os.path.join(out, folder.SEARCH_JSON))
    if fresh:  # first: a folder without it holds no search
        folder.write_config(out, config)
    search = folder.make_tuner(config, out, hypermodel)  # reads a resumed state
    if not fresh:
        folder.write_config(out, config)
    search.save()
    search.oracle.write_csv()
    print(header(config, info, hypermodel.space, out), flush=True)
    start = time.time()
    try:
        if config.distributed:
            from tuner.distributed import run_chief

            run_chief(search, config, out)
        else:
            from tuner.data import load_dataset

            data = load_dataset(info, config.batch_size, config.seed)
            folder.fit(search, data, config)
    except KeyboardInterrupt:
        print("\nInterrupted: writing the summary and the best model so far "
              "(completed trials are kept; continue with --resume).", flush=True)
        finish(search, out, time.time() - start)
        raise
    finish(search, out, time.time() - start)
    return search


def header(config, info, space, out):
    """The lines a search starts with: what it searches, and on what."""
    from keras_regnet import runtime

    def shown(name, value):
        if name in ("bottleneck_ratio", "group_width"):  # allowed values
            return ",".join(map(str, value))
        return f"{value[0]:g}" if value[0] == value[1] else f"{value[0]:g}-{value[1]:g}"

    budget = ", ".join(f"{m} {format_count(b[0])}-{format_count(b[1])}"
                       for m, b in space.budget.items() if b)
    rt = runtime.describe()
    conv = {"native": "native (oneDNN)" if rt["onednn"] else "native",
            "portable": "portable: oneDNN is off, training about 2x slower; "
                        "set TF_ENABLE_ONEDNN_OPTS=1",
            "keras": "Keras' own"}[rt["grouped_conv"]]
    lines = [
        f"Searching the {space.name} space ({config.block} blocks) on "
        f"{info.name} ({'x'.join(map(str, info.input_shape))}, {info.classes} "
        f"classes, {space.stem_type} stem) with {config.tuner} search, "
        f"{config.max_trials} trials x {config.epochs} epochs -> {out}",
        "  ranges " + ", ".join(f"{k} {shown(k, v)}" for k, v in space.ranges.items())
        + f"; budget {budget or 'none'}",
        f"  Keras {rt['keras']} on {rt['backend']}, {rt['device']} "
        f"({rt['cpu']}); grouped convolutions: {conv}"]
    note = CPU_BACKEND_NOTES.get(rt["backend"].split()[0])
    if rt["device"] == "CPU" and note:
        lines.append("  " + note)
    return "\n".join(lines)


def finish(search, out, seconds):
    """Plots, the summary, the best model; the last line names the plots."""
    from tuner import analysis
    from tuner.trials import trial_number

    rows = analysis.load_run(out)
    plots = analysis.write_plots(out, rows) if rows else []
    start = time.time()
    best, written = folder.export_best(search, out)
    print(analysis.summary(out, rows))
    if best is not None:
        print(f"Search time {seconds:.0f} s, export {time.time() - start:.0f} s. "
              f"Best: trial {trial_number(best.trial_id)}, "
              f"{search.oracle.objective.name} {best.score:.4f} -> {written}")
    elif written:
        print(f"No model exported: {written}.")
    for line in analysis.plots_left_out(rows):
        print(line)
    print(f"Plots: {', '.join(plots) or 'none (no trial ended)'}", flush=True)
