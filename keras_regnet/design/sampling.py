"""Design spaces: ranges, a compute budget and samplers (paper, secs. 3-4).

`DesignSpace` is what every space shares: the input, the budget, the
checks and the rejection sampler. `RegNetDesignSpace` is the paper's
six-parameter RegNet space; the AnyNetX spaces are in
`keras_regnet.design.spaces`.

Pure Python and NumPy, no Keras: the tuner filters every candidate through
`DesignSpace.fits`, which costs a fraction of a millisecond.
"""

import dataclasses
import math

import numpy as np

from keras_regnet.design.checks import (check_choice, check_int, invalid, is_number,
                                        normalize_choices, normalize_range)
from keras_regnet.design.complexity import complexity
from keras_regnet.design.fit import fit_regnet
from keras_regnet.design.regnet import QUANTUM, regnet_spec
from keras_regnet.design.spec import SE_RATIO, STEM_STRIDES, STEM_TYPES

# The paper's sampling ranges for the RegNet design space.
PAPER_RANGES = {
    "depth": (12, 28),
    "w0": (8, 256),
    "wa": (8.0, 256.0),
    "wm": (1.5, 3.0),
    "bottleneck_ratio": (1, 2, 4),
    "group_width": (1, 2, 4, 8, 16, 32),
}
# The paper's limits of the space (d < 64, w0 <= 256, 0 < wa <= 256,
# 1.5 <= wm <= 3, b in {1, 2, 4}, g in {1, 2, 4, 8, 16, 32}); a range or a
# fixed value outside them is rejected.
PAPER_LIMITS = {
    "depth": (1, 64),
    "w0": (QUANTUM, 256),
    "wa": (0.0, 256.0),
    "wm": (1.5, 3.0),
}
PARAM_NAMES = tuple(PAPER_RANGES)
RANGE_PARAMS = ("depth", "w0", "wa", "wm")
CHOICE_PARAMS = ("bottleneck_ratio", "group_width")
# Sampled uniformly (w0 on multiples of 8); wa and wm log-uniformly.
INT_PARAMS = ("depth", "w0")
BUDGET_METRICS = ("flops", "params")
# The paper's spaces have X blocks, or Y blocks (X with SE of `SE_RATIO`).
SEARCH_BLOCKS = ("x", "y")
# The RegNet space also has the Z blocks of RegNetZ (Dollar et al. 2021).
REGNET_BLOCKS = (*SEARCH_BLOCKS, "z")
# block -> (se_ratio, activation) of the networks a space holds.
BLOCK_OPTIONS = {"x": (0.0, "relu"), "y": (SE_RATIO, "relu"), "z": (SE_RATIO, "silu")}
# Z blocks expand rather than reduce: b = 1, 1/2, 1/4 (1x, 2x, 4x wider).
Z_BOTTLENECK_RATIOS = (0.25, 0.5, 1.0)
# Draws before a budget is declared impossible; about 2 s.
MAX_DRAWS = 10000
# Keras Tuner maps log-scaled floats through exp(log(x)), which can land an
# ulp outside the range it declared.
_FLOAT_TOLERANCE = 1e-9


def parse_budget(name, value):
    """`None` or `(lo, hi)` (either may be `None`) -> `(lo, hi)` floats or `None`."""
    if value is None:
        return None
    if not (isinstance(value, (tuple, list)) and len(value) == 2
            and all(v is None or (is_number(v) and math.isfinite(v)) for v in value)
            and any(v is not None for v in value)):
        raise invalid(name, value,
                     "None or a `(lo, hi)` pair of finite numbers (either may be None)")
    lo = 0.0 if value[0] is None else float(value[0])
    hi = math.inf if value[1] is None else float(value[1])
    if lo < 0 or lo > hi:
        raise invalid(name, value, "0 <= lo <= hi")
    return lo, hi


@dataclasses.dataclass(frozen=True)
class HyperParameter:
    """One searchable parameter of a design space, in Keras Tuner's terms.

    `kind` is `"int"` (`values` is `(lo, hi)`, multiples of `step` from
    `lo`), `"float"` (`(lo, hi)`, log-scaled if `log`), `"choice"` (the
    allowed values) or `"fixed"` (`(value,)`).
    """

    name: str
    kind: str
    values: tuple
    step: int = None
    log: bool = False

    def contains(self, value):
        """Whether a value is one this parameter can take."""
        if not (is_number(value) and math.isfinite(value)):
            return False
        if self.kind in ("choice", "fixed"):
            return value in self.values
        lo, hi = self.values
        if self.kind == "int":
            return (float(value).is_integer() and lo <= value <= hi
                    and (value - lo) % self.step == 0)
        tol = _FLOAT_TOLERANCE * abs(hi)
        return lo - tol <= value <= hi + tol


def range_hp(name, bounds, *, step=None, log=False):
    """An `"int"` (if `step`) or `"float"` parameter; `"fixed"` if lo == hi."""
    lo, hi = bounds
    if lo == hi:
        return HyperParameter(name, "fixed", (lo,))
    if step:
        return HyperParameter(name, "int", (lo, hi), step=step)
    return HyperParameter(name, "float", (lo, hi), log=log)


def choice_hp(name, choices):
    """A `"choice"` parameter; `"fixed"` if there is one choice."""
    kind = "fixed" if len(choices) == 1 else "choice"
    return HyperParameter(name, kind, tuple(choices))


# name -> DesignSpace subclass, filled as the subclasses are defined.
SPACES = {}


class DesignSpace:
    """What every design space shares: input, budget, checks and samplers.

    A configuration (a mapping from the names of `hyperparameters()` to
    values) fits when every value lies in its declared range, the space's
    own constraints hold, its stride-2 stages do not shrink the input below
    1x1 (`max_stages`, which the model builders require), and its
    complexity at the input size lies inside the budget.

    Subclasses set `name` and `ranges` and implement `hyperparameters`,
    `sample` and `spec` (and `_constraint_violation` if they have
    constraints between values).

    Args:
        block_type: one of `block_types`: `"x"`, `"y"` (`"x"` with
            squeeze-and-excitation, `se_ratio` 0.25) or, in the RegNet
            space, `"z"` (RegNetZ's inverted bottleneck with SE and SiLU).
        stem_type: `"imagenet"` or `"cifar"`.
        input_size: side of the square input, for flops and acts.
        channels: input channels.
        classes: classifier outputs.
        flops: `None` or `(lo, hi)` multiply-adds, either end may be `None`.
        params: `None` or `(lo, hi)` trainable parameters.
    """

    name = None
    block_types = SEARCH_BLOCKS

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name is not None:
            SPACES[cls.name] = cls

    def __init__(self, *, block_type="x", stem_type="imagenet", input_size=224,
                 channels=3, classes=1000, flops=None, params=None):
        check_choice("block_type", block_type, self.block_types)
        check_choice("stem_type", stem_type, STEM_TYPES)
        for name, v in (("input_size", input_size), ("channels", channels),
                        ("classes", classes)):
            check_int(name, v)
        self.block_type = block_type
        self.stem_type = stem_type
        self.input_size = int(input_size)
        self.channels = int(channels)
        self.classes = int(classes)
        self.budget = {"flops": parse_budget("flops", flops),
                       "params": parse_budget("params", params)}

    @property
    def se_ratio(self):
        return BLOCK_OPTIONS[self.block_type][0]

    @property
    def activation(self):
        return BLOCK_OPTIONS[self.block_type][1]

    def hyperparameters(self):
        """The searchable parameters: a tuple of `HyperParameter`, stable order."""
        raise NotImplementedError

    def sample(self, rng):
        """One configuration inside the space (the budget aside).

        Args:
            rng: a `numpy.random.Generator`.
        """
        raise NotImplementedError

    def spec(self, values):
        """The `AnyNetSpec` of a configuration."""
        raise NotImplementedError

    def _constraint_violation(self, values):
        """Why in-range values break a constraint of the space, or `None`."""
        return None

    def complexity(self, values):
        """`{"flops", "params", "acts"}` of a configuration at this input size."""
        return complexity(self.spec(values), input_size=self.input_size,
                          classes=self.classes, channels=self.channels)

    def describe(self, values):
        """Complexity, the stage layout and the fit error of a configuration.

        Returns:
            A dict with `flops`, `params`, `acts`, `num_stages`, lists
            `depths`, `widths`, `bottleneck_ratios`, `group_widths`, and
            `e_fit`: `fit_regnet`'s error on the network's per-block widths.
        """
        spec = self.spec(values)
        out = complexity(spec, input_size=self.input_size,
                         classes=self.classes, channels=self.channels)
        blocks = [w for w, d in zip(spec.widths, spec.depths) for _ in range(d)]
        out.update(num_stages=spec.num_stages, depths=list(spec.depths),
                   widths=list(spec.widths),
                   bottleneck_ratios=[int(b) if float(b).is_integer() else b
                                      for b in spec.bottleneck_ratios],
                   group_widths=list(spec.group_widths),
                   e_fit=fit_regnet(blocks)["e_fit"])
        return out

    def in_budget(self, cx):
        """Whether a complexity dict lies inside the budget (ends inclusive)."""
        return all(b is None or b[0] <= cx[m] <= b[1]
                   for m, b in self.budget.items())

    @property
    def max_stages(self):
        """Most stride-2 stages the input allows (total stride <= input size)."""
        size = self.input_size // STEM_STRIDES[self.stem_type]
        return max(int(math.log2(size)), 0)

    def _check(self, values):
        """`(reason, complexity)`: why a configuration does not fit (`None`
        when it fits) and its complexity if it was counted."""
        if getattr(self, "_declared", None) is None:
            self._declared = self.hyperparameters()  # the ranges never change
        for hp in self._declared:
            if hp.name not in values:
                return f"`{hp.name}` is missing", None
            if not hp.contains(values[hp.name]):
                step = f" in steps of {hp.step}" if hp.step and hp.step > 1 else ""
                return (f"`{hp.name}` = {values[hp.name]!r} is not a value of "
                        f"{hp.kind} {hp.values}{step}"), None
        reason = self._constraint_violation(values)
        if reason:
            return reason, None
        spec = self.spec(values)
        if spec.num_stages > self.max_stages:
            return (f"{spec.num_stages} stages, more than the {self.max_stages} "
                    f"a {self.input_size}x{self.input_size} input allows"), None
        if all(b is None for b in self.budget.values()):
            return None, None
        cx = complexity(spec, input_size=self.input_size, classes=self.classes,
                        channels=self.channels)
        if not self.in_budget(cx):
            return "outside the budget: " + ", ".join(
                f"{m} {format_count(cx[m])} ({format_count(b[0])}-{format_count(b[1])})"
                for m, b in self.budget.items() if b is not None), cx
        return None, cx

    def violation(self, values):
        """Why a configuration does not fit, as a sentence; `None` if it fits."""
        return self._check(values)[0]

    def fits(self, values):
        """Whether a configuration lies in the space (ranges and constraints),
        can be built at the input size (at most `max_stages` stages) and
        lies inside the budget."""
        return self._check(values)[0] is None

    def sample_in_budget(self, rng, max_draws=MAX_DRAWS):
        """Draws until a configuration `fits`.

        Returns:
            `(values, draws)`: the configuration and the number of draws used.

        Raises:
            ValueError: no configuration fits after `max_draws` draws.
        """
        seen = {m: [math.inf, 0] for m in BUDGET_METRICS}
        for draw in range(1, max_draws + 1):
            values = self.sample(rng)
            reason, cx = self._check(values)
            if reason is None:
                return values, draw
            for m in BUDGET_METRICS if cx else ():
                seen[m] = [min(seen[m][0], cx[m]), max(seen[m][1], cx[m])]
        raise self.infeasible_error(max_draws, seen)

    def infeasible_error(self, draws, seen=None):
        """The `ValueError` for a space in which no drawn configuration fits."""
        parts = [f"{m}=({format_count(b[0])}, {format_count(b[1])})"
                 for m, b in self.budget.items() if b is not None]
        what = f"budget {', '.join(parts)}" if parts else f"ranges {self.ranges}"
        msg = (f"Invalid {what}: none of {draws} configurations drawn from the "
               f"{self.name} design space {self.ranges} (block "
               f"{self.block_type.upper()}, {self.input_size}x{self.input_size} "
               f"input, at most {self.max_stages} stages) fits.")
        seen = {m: v for m, v in (seen or {}).items() if v[1]}
        if seen:
            msg += " Drawn configurations with few enough stages span " + ", ".join(
                f"{m} {format_count(lo)}-{format_count(hi)}" for m, (lo, hi) in seen.items()) + "."
        return ValueError(msg + " Widen the budget or change the ranges.")

    def to_config(self):
        return {"name": self.name,
                "ranges": {k: list(v) for k, v in self.ranges.items()},
                "block_type": self.block_type, "stem_type": self.stem_type,
                "input_size": self.input_size, "channels": self.channels,
                "classes": self.classes,
                "flops": _budget_config(self.budget["flops"]),
                "params": _budget_config(self.budget["params"])}

    @classmethod
    def from_config(cls, config):
        """Rebuilds a space from `to_config()`; `DesignSpace.from_config`
        returns the subclass that `config["name"]` names."""
        config = dict(config)
        name = config.pop("name", cls.name)
        space_cls = SPACES.get(name)
        if space_cls is None or not issubclass(space_cls, cls):
            allowed = tuple(n for n, c in SPACES.items() if issubclass(c, cls))
            raise invalid("name", name, f"one of {allowed}")
        ranges = config.pop("ranges")
        return space_cls(**{k: tuple(v) for k, v in ranges.items()}, **config)


class RegNetDesignSpace(DesignSpace):
    """The six-parameter RegNet design space, optionally within a compute budget.

    Args:
        depth, w0, wa, wm: a fixed value or a `(lo, hi)` range; defaults are
            the paper's ranges (d 12-28, w0 8-256 in steps of 8,
            wa 8-256 log-scaled, wm 1.5-3 log-scaled).
        bottleneck_ratio, group_width: a fixed value or a list of allowed
            values; defaults `(1, 2, 4)` (Z blocks: `(0.25, 0.5, 1)`) and
            `(1, 2, 4, 8, 16, 32)`.
        block_type, stem_type, input_size, channels, classes, flops, params:
            as for `DesignSpace`; `block_type` may also be `"z"`.
    """

    name = "regnet"
    block_types = REGNET_BLOCKS

    def __init__(self, depth=PAPER_RANGES["depth"], w0=PAPER_RANGES["w0"],
                 wa=PAPER_RANGES["wa"], wm=PAPER_RANGES["wm"],
                 bottleneck_ratio=None, group_width=PAPER_RANGES["group_width"],
                 **kwargs):
        ratios = (Z_BOTTLENECK_RATIOS if kwargs.get("block_type") == "z"
                  else PAPER_RANGES["bottleneck_ratio"])
        given = dict(depth=depth, w0=w0, wa=wa, wm=wm, group_width=group_width,
                     bottleneck_ratio=ratios if bottleneck_ratio is None
                     else bottleneck_ratio)
        self.ranges = {name: normalize_range(
            name, given[name], PAPER_LIMITS[name], integer=name in INT_PARAMS,
            quantum=QUANTUM if name == "w0" else None, open_low=name == "wa")
            for name in RANGE_PARAMS}
        self.ranges.update(
            bottleneck_ratio=normalize_choices("bottleneck_ratio",
                                               given["bottleneck_ratio"], ratios),
            group_width=normalize_choices("group_width", given["group_width"],
                                          PAPER_RANGES["group_width"]))
        super().__init__(**kwargs)

    def hyperparameters(self):
        """`depth` and `w0` (step 8) ints, `wa` and `wm` log-scaled floats,
        `bottleneck_ratio` and `group_width` choices."""
        r = self.ranges
        return (range_hp("depth", r["depth"], step=1),
                range_hp("w0", r["w0"], step=QUANTUM),
                range_hp("wa", r["wa"], log=True),
                range_hp("wm", r["wm"], log=True),
                choice_hp("bottleneck_ratio", r["bottleneck_ratio"]),
                choice_hp("group_width", r["group_width"]))

    def spec(self, values):
        """The `AnyNetSpec` of a configuration (a mapping holding the six names)."""
        b = values["bottleneck_ratio"]
        return regnet_spec(
            int(values["depth"]), int(values["w0"]), float(values["wa"]),
            float(values["wm"]), int(values["group_width"]),
            bottleneck_ratio=int(b) if float(b).is_integer() else float(b),
            se_ratio=self.se_ratio, stem_type=self.stem_type,
            block_type=self.block_type, activation=self.activation)

    def sample(self, rng):
        """One configuration drawn as in the paper: d and w0 (multiples of
        8) uniform, wa and wm log-uniform, b and g uniform choices.

        Args:
            rng: a `numpy.random.Generator`.
        """
        values = {}
        for name in RANGE_PARAMS:
            lo, hi = self.ranges[name]
            if lo == hi:
                values[name] = lo
            elif name == "w0":
                values[name] = int(rng.integers(lo // QUANTUM, hi // QUANTUM + 1)) * QUANTUM
            elif name in INT_PARAMS:
                values[name] = int(rng.integers(lo, hi + 1))
            else:
                values[name] = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        for name in CHOICE_PARAMS:
            values[name] = rng.choice(self.ranges[name]).item()
        return values


def _budget_config(budget):
    if budget is None:
        return None
    return [budget[0], None if math.isinf(budget[1]) else budget[1]]


def format_count(x):
    """Human-readable count: 1.5M, 200M, 3.2G."""
    if math.isinf(x):
        return "inf"
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.4g}{unit}"
    return f"{x:.4g}"
