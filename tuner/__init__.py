"""Keras Tuner search of the six-parameter RegNet design space within a compute budget.

`python -m tuner search|report|worker` is the command line; see the README.
"""

from tuner.hypermodel import RegNetHyperModel
from tuner.oracle import (BayesianOptimizationOracle, HyperbandOracle,
                          RandomSearchOracle)
from tuner.search import RegNetTuner, SearchStopped, build_tuner
