"""A search's configuration: what `run_search` takes and `search.json` holds.

Pure Python (no Keras): the command line builds a `SearchConfig` from its
flags and checks it before TensorFlow loads.
"""

import dataclasses
from typing import Optional, Tuple, Union

from keras_regnet.design.checks import check, check_choice, check_int, invalid, is_number
from keras_regnet.design.sampling import Z_BOTTLENECK_RATIOS
from keras_regnet.design.spaces import SPACE_NAMES

Range = Union[float, Tuple[Optional[float], Optional[float]]]
# The RegNet space's parameters (--space regnet only) and the paper's ranges.
REGNET_RANGES = {"depth": (12, 28), "w0": (8, 256), "wa": (8.0, 256.0),
                 "wm": (1.5, 3.0), "bottleneck_ratio": (1, 2, 4),
                 "group_width": (1, 2, 4, 8, 16, 32)}
# Fields that define a search, and so its results; a resumed search must
# repeat them. The others (max_trials may also grow) say how to run it.
IDENTITY = ("space", "dataset", "image_size", "block", *REGNET_RANGES, "flops",
            "params", "learning_rate", "weight_decay", "tuner", "epochs",
            "batch_size", "seed", "mixed_precision", "jit_compile", "max_failures")
TUNERS = ("random", "bayes", "hyperband")
BLOCKS = ("X", "Y", "Z")
DEFAULT_ADDRESS = "127.0.0.1:0"
MAX_WORKERS = 256
MAX_IMAGE_SIZE = 2048


def optimizer_range(name, value, allow_zero):
    """A fixed value or a `(lo, hi)` log range of a positive number."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    ok = len(pair) == 2 and all(is_number(v) for v in pair)
    if ok:
        lo, hi = float(pair[0]), float(pair[1])
        fixed = lo == hi
        ok = lo <= hi and (lo > 0 or (allow_zero and fixed and lo == 0))
    if not ok:
        zero = " (or 0)" if allow_zero else ""
        raise invalid(name, value,
                      f"a number > 0{zero} or a range `(lo, hi)` with 0 < lo <= hi")
    return lo, hi


@dataclasses.dataclass
class SearchConfig:
    """A design-space search: what it searches, on what, and how it runs.

    Args:
        space: `"regnet"` (the six-parameter space) or an AnyNetX space
            (`"anynetx_a"` ... `"anynetx_e"`).
        dataset: `"digits"` (bundled, offline), a TensorFlow Datasets name,
            or a folder with one sub-folder of images per class.
        image_size: training image side; None: the dataset's default.
        block: `"X"`, `"Y"` (X with squeeze-and-excitation) or, in the
            RegNet space, `"Z"` (RegNetZ's inverted bottleneck, SE, SiLU).
        flops, params: the budget, `(lo, hi)` (either end may be None) or
            None.
        depth, w0, wa, wm: a fixed value or `(lo, hi)`; bottleneck_ratio,
            group_width: the allowed values. RegNet space only (None
            elsewhere; None in the RegNet space: the paper's ranges, and
            b in (0.25, 0.5, 1) for Z blocks).
        learning_rate, weight_decay: a fixed value or a `(lo, hi)` log range.
        tuner: `"random"`, `"bayes"` or `"hyperband"`.
        max_trials, epochs, batch_size, seed: as in Keras Tuner.
        mixed_precision, jit_compile: as in Keras.
        workers: local worker processes (0: train in this process).
        trials_per_worker: trials before a worker process is replaced.
        oracle_address: `HOST:PORT` the chief serves on with workers.
        max_failures: consecutive failed trials that stop the search (0:
            never).
        keep_checkpoints: checkpoints of the best N trials kept (0: all).
        verbose: 0, 1 or 2, as `model.fit`'s (2 also shows TensorFlow's logs).
    """

    space: str = "regnet"
    dataset: str = "digits"
    image_size: Optional[int] = None
    block: str = "X"
    flops: Optional[Tuple] = (None, 20e6)
    params: Optional[Tuple] = (None, 5e6)
    depth: Optional[Range] = None
    w0: Optional[Range] = None
    wa: Optional[Range] = None
    wm: Optional[Range] = None
    bottleneck_ratio: Optional[Union[float, Tuple[float, ...]]] = None
    group_width: Optional[Union[int, Tuple[int, ...]]] = None
    learning_rate: Range = 0.1
    weight_decay: Range = 5e-5
    tuner: str = "random"
    max_trials: int = 10
    epochs: int = 3
    batch_size: int = 32
    seed: int = 0
    mixed_precision: bool = False
    jit_compile: bool = False
    workers: int = 0
    trials_per_worker: int = 10
    oracle_address: str = DEFAULT_ADDRESS
    max_failures: int = 3
    keep_checkpoints: int = 1
    verbose: int = 1

    def __post_init__(self):
        check_choice("space", self.space, SPACE_NAMES)
        check(isinstance(self.dataset, str) and self.dataset, "dataset", self.dataset,
              "'digits', a TensorFlow Datasets name or a folder of images")
        if self.image_size is not None:
            check_int("image_size", self.image_size, MAX_IMAGE_SIZE, low=8)
        self.block = self.block.upper() if isinstance(self.block, str) else self.block
        check_choice("block", self.block, BLOCKS)
        given = [f for f in REGNET_RANGES if getattr(self, f) is not None]
        if self.space != "regnet" and given:
            raise invalid(given[0], getattr(self, given[0]),
                          "no value (leave it out): it narrows the RegNet space; "
                          f"the {self.space} space has per-stage depths, widths, "
                          "b and g")
        if self.space != "regnet" and self.block == "Z":
            raise invalid("block", self.block,
                          f"'X' or 'Y' in the {self.space} space (Z blocks: "
                          "the regnet space)")
        if self.space == "regnet":
            for name, paper in REGNET_RANGES.items():
                if getattr(self, name) is None:
                    setattr(self, name, Z_BOTTLENECK_RATIOS
                            if self.block == "Z" and name == "bottleneck_ratio" else paper)
        for name in ("flops", "params", *REGNET_RANGES, "learning_rate",
                     "weight_decay"):
            value = getattr(self, name)
            if isinstance(value, list):
                setattr(self, name, tuple(value))
        optimizer_range("learning_rate", self.learning_rate, False)
        optimizer_range("weight_decay", self.weight_decay, True)
        check_choice("tuner", self.tuner, TUNERS)
        for name, low, high in (("max_trials", 1, None), ("epochs", 1, None),
                                ("batch_size", 1, 2**16), ("seed", 0, 2**32 - 1),
                                ("workers", 0, MAX_WORKERS),
                                ("trials_per_worker", 1, None),
                                ("max_failures", 0, None),
                                ("keep_checkpoints", 0, None)):
            check_int(name, getattr(self, name), high, low=low)
        for name in ("mixed_precision", "jit_compile"):
            check(isinstance(getattr(self, name), bool), name, getattr(self, name),
                  "True or False")
        check_choice("verbose", self.verbose, (0, 1, 2))
        host, _, port = str(self.oracle_address).rpartition(":")
        check(isinstance(self.oracle_address, str) and host and port.isdigit()
              and int(port) <= 65535, "oracle_address", self.oracle_address,
              "HOST:PORT with a port in [0, 65535]")

    @property
    def distributed(self):
        """Whether trials run in worker processes served by an oracle."""
        return bool(self.workers) or self.oracle_address != DEFAULT_ADDRESS

    def to_json(self):
        """The config as JSON values (tuples as lists), for `search.json`."""
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_json(cls, values):
        """The config of a `search.json` (`to_json`'s output); `ValueError`
        naming the field if a value is not allowed."""
        if not isinstance(values, dict):
            raise invalid("config", values, "a JSON object of SearchConfig fields")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise invalid("config", unknown, f"fields of SearchConfig: {sorted(names)}")
        return cls(**values)
