"""Keras Tuner search of the RegNet design spaces within a compute budget.

`python -m tuner search|report|worker` is the command line, and
`tuner.run_search(tuner.SearchConfig(...), out)` the same search from
Python; see docs/search.md.
Importing the package is cheap: Keras and Keras Tuner load when one of the
names below is first used.
"""

import importlib

_LAZY = {
    "AnyNetHyperModel": "tuner.hypermodel",
    "DesignSpaceHyperModel": "tuner.hypermodel",
    "RegNetHyperModel": "tuner.hypermodel",
    "BayesianOptimizationOracle": "tuner.oracle",
    "HyperbandOracle": "tuner.oracle",
    "RandomSearchOracle": "tuner.oracle",
    "RegNetTuner": "tuner.search",
    "SearchConfig": "tuner.config",
    "SearchStopped": "tuner.errors",
    "build_tuner": "tuner.search",
    "run_search": "tuner.run",
}
__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tuner' has no attribute {name!r}")


def __dir__():
    return sorted({*globals(), *_LAZY})
