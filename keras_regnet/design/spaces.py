"""The AnyNetX design spaces A-E (paper, sec. 3) and `design_space`.

Every AnyNetX network has four stages of X blocks (Y blocks with SE ratio
0.25 if `block_type="y"`), each starting with a stride-2 block. Stage `i`
has depth `d_i`, width `w_i`, bottleneck ratio `b_i` and group width `g_i`;
the spaces differ in how these are tied together:

| space | constraint | free parameters |
|---|---|---|
| `anynetx_a` | none | 16 |
| `anynetx_b` | one shared `b` | 13 |
| `anynetx_c` | B, one shared `g` | 10 |
| `anynetx_d` | C, `w_{i+1} >= w_i` | 10 |
| `anynetx_e` | D, `d_{i+1} >= d_i` | 10 |
"""

import math

import numpy as np

from keras_regnet.design.checks import invalid, normalize_choices, normalize_range
from keras_regnet.design.regnet import QUANTUM
from keras_regnet.design.sampling import SPACES, DesignSpace, choice_hp, range_hp
from keras_regnet.design.spec import AnyNetSpec

NUM_STAGES = 4
# The paper's AnyNetX ranges: d_i <= 16, w_i <= 1024 in multiples of 8,
# b_i in {1, 2, 4}, g_i in {1, 2, ..., 32}.
ANYNETX_RANGES = {
    "depth": (1, 16),
    "width": (QUANTUM, 1024),
    "bottleneck_ratio": (1, 2, 4),
    "group_width": (1, 2, 4, 8, 16, 32),
}


class AnyNetXDesignSpace(DesignSpace):
    """Base of the AnyNetX spaces; use `AnyNetXADesignSpace` ... `E`.

    Sampling, with every constraint met by construction: `b` and `g` (per
    stage, or one shared value) uniform over their choices; depths uniform
    integers; each width uniform over the multiples of `lcm(8, b * g)` in
    the width range, the widths for which `g` divides the bottleneck width
    `w / b`. Where the space orders widths or depths, the sequence is
    uniform over the non-decreasing sequences (what rejecting unsorted
    draws would give, without rejecting). Only the compute budget is
    enforced by rejection, in `sample_in_budget`.

    Args:
        depth: a fixed value or a `(lo, hi)` range within `(1, 16)`.
        width: a fixed value or a `(lo, hi)` range of multiples of 8 within
            `(8, 1024)`.
        bottleneck_ratio: a fixed value or a list from `(1, 2, 4)`.
        group_width: a fixed value or a list from `(1, 2, 4, 8, 16, 32)`.
            Every allowed `(b, g)` must leave some width in range for which
            `g` divides `w / b`.
        block_type, stem_type, input_size, channels, classes, flops, params:
            as for `DesignSpace`.
    """

    shared_bottleneck = False
    shared_group = False
    ordered_widths = False
    ordered_depths = False

    def __init__(self, depth=ANYNETX_RANGES["depth"], width=ANYNETX_RANGES["width"],
                 bottleneck_ratio=ANYNETX_RANGES["bottleneck_ratio"],
                 group_width=ANYNETX_RANGES["group_width"], **kwargs):
        self.ranges = {
            "depth": normalize_range("depth", depth, ANYNETX_RANGES["depth"],
                                      integer=True),
            "width": normalize_range("width", width, ANYNETX_RANGES["width"],
                                      integer=True, quantum=QUANTUM),
            "bottleneck_ratio": normalize_choices(
                "bottleneck_ratio", bottleneck_ratio, ANYNETX_RANGES["bottleneck_ratio"]),
            "group_width": normalize_choices(
                "group_width", group_width, ANYNETX_RANGES["group_width"]),
        }
        for b in self.ranges["bottleneck_ratio"]:
            for g in self.ranges["group_width"]:
                if not self._width_multiples(b, g):
                    raise invalid("width", width,
                                 f"a range holding a multiple of lcm(8, b * g) for "
                                 f"every allowed b and g (b={b}, g={g} has none)")
        super().__init__(**kwargs)

    def _shared(self, base):
        return {"bottleneck_ratio": self.shared_bottleneck,
                "group_width": self.shared_group}.get(base, False)

    def _names(self, base):
        """`base` if the stages share it, else `base_1` ... `base_4`."""
        return ((base,) if self._shared(base) else
                tuple(f"{base}_{i}" for i in range(1, NUM_STAGES + 1)))

    def _per_stage(self, values, base):
        names = self._names(base)
        return [values[name] for name in names] * (NUM_STAGES // len(names))

    def _width_multiples(self, b, g):
        """`(m, k_lo, k_hi)`: widths in range with `g | w / b` are `k * m`
        for `k_lo <= k <= k_hi`; `None` if there are none."""
        m = math.lcm(QUANTUM, b * g)
        lo, hi = self.ranges["width"]
        k_lo, k_hi = -(-lo // m), hi // m
        return (m, k_lo, k_hi) if k_lo <= k_hi else None

    def hyperparameters(self):
        """`depth_1..4` ints, `width_1..4` ints in steps of 8, then
        `bottleneck_ratio` and `group_width` choices (one per stage, or one
        shared, as the space ties them)."""
        r = self.ranges
        return (*(range_hp(n, r["depth"], step=1) for n in self._names("depth")),
                *(range_hp(n, r["width"], step=QUANTUM) for n in self._names("width")),
                *(choice_hp(n, r["bottleneck_ratio"])
                  for n in self._names("bottleneck_ratio")),
                *(choice_hp(n, r["group_width"]) for n in self._names("group_width")))

    def sample(self, rng):
        """One configuration; see the class docstring for the distribution.

        Args:
            rng: a `numpy.random.Generator`.
        """
        def choices(base):
            options, n = self.ranges[base], len(self._names(base))
            return [options[i] for i in rng.integers(len(options), size=n)] * (
                NUM_STAGES // n)

        b, g = choices("bottleneck_ratio"), choices("group_width")
        depths = _uniform_ints(rng, *self.ranges["depth"], self.ordered_depths)
        if self.ordered_widths:  # b and g are shared: one set of multiples
            m, k_lo, k_hi = self._width_multiples(b[0], g[0])
            widths = [m * k for k in _uniform_ints(rng, k_lo, k_hi, True)]
        else:
            widths = []
            for b_i, g_i in zip(b, g):
                m, k_lo, k_hi = self._width_multiples(b_i, g_i)
                widths.append(m * int(rng.integers(k_lo, k_hi + 1)))
        values = {}
        for base, seq in (("depth", depths), ("width", widths),
                          ("bottleneck_ratio", b), ("group_width", g)):
            values.update(zip(self._names(base), seq))
        return values

    def _constraint_violation(self, values):
        b = self._per_stage(values, "bottleneck_ratio")
        g = self._per_stage(values, "group_width")
        widths = self._per_stage(values, "width")
        for i, (w, b_i, g_i) in enumerate(zip(widths, b, g), start=1):
            if w % (b_i * g_i):
                return (f"group width {g_i} does not divide the bottleneck width "
                        f"{w}/{b_i} of stage {i}")
        for base, ordered in (("width", self.ordered_widths),
                              ("depth", self.ordered_depths)):
            seq = self._per_stage(values, base)
            if ordered and any(x > y for x, y in zip(seq, seq[1:])):
                return f"{base}s {seq} must not decrease"
        return None

    def spec(self, values):
        """The `AnyNetSpec` of a configuration."""
        def ints(base):
            return tuple(int(v) for v in self._per_stage(values, base))

        return AnyNetSpec(
            depths=ints("depth"), widths=ints("width"), strides=(2,) * NUM_STAGES,
            bottleneck_ratios=ints("bottleneck_ratio"), group_widths=ints("group_width"),
            block_type=self.block_type, se_ratio=self.se_ratio,
            stem_type=self.stem_type)


def _uniform_ints(rng, lo, hi, non_decreasing):
    """One uniform integer in `[lo, hi]` per stage; if `non_decreasing`, a
    uniform non-decreasing sequence (stars and bars: distinct sorted values
    from `range(hi - lo + stages)` shifted down by their index)."""
    if not non_decreasing:
        return [int(v) for v in rng.integers(lo, hi + 1, size=NUM_STAGES)]
    picks = np.sort(rng.choice(hi - lo + NUM_STAGES, size=NUM_STAGES, replace=False))
    return [int(lo + v - i) for i, v in enumerate(picks)]


class AnyNetXADesignSpace(AnyNetXDesignSpace):
    """AnyNetXA: per stage `d_i`, `w_i`, `b_i`, `g_i`, no constraints (16
    degrees of freedom). Arguments as for `AnyNetXDesignSpace`."""

    name = "anynetx_a"


class AnyNetXBDesignSpace(AnyNetXDesignSpace):
    """AnyNetXB: AnyNetXA with one bottleneck ratio `b` for all stages."""

    name = "anynetx_b"
    shared_bottleneck = True


class AnyNetXCDesignSpace(AnyNetXBDesignSpace):
    """AnyNetXC: AnyNetXB with one group width `g` for all stages."""

    name = "anynetx_c"
    shared_group = True


class AnyNetXDDesignSpace(AnyNetXCDesignSpace):
    """AnyNetXD: AnyNetXC with non-decreasing widths, `w_{i+1} >= w_i`."""

    name = "anynetx_d"
    ordered_widths = True


class AnyNetXEDesignSpace(AnyNetXDDesignSpace):
    """AnyNetXE: AnyNetXD with non-decreasing depths, `d_{i+1} >= d_i`."""

    name = "anynetx_e"
    ordered_depths = True


SPACE_NAMES = tuple(SPACES)


def design_space(name, **kwargs):
    """The design space called `name` (one of `SPACE_NAMES`).

    Args:
        name: `"regnet"`, `"anynetx_a"`, ..., `"anynetx_e"`.
        **kwargs: the space's arguments (ranges, `block_type`, `stem_type`,
            `input_size`, `channels`, `classes`, `flops`, `params`).

    Example:

    ```python
    space = design_space("anynetx_e", flops=(None, 400e6))
    values, _ = space.sample_in_budget(np.random.default_rng(0))
    model = keras_regnet.AnyNet(space.spec(values))
    ```
    """
    if name not in SPACES:
        raise invalid("name", name, f"one of {SPACE_NAMES}")
    return SPACES[name](**kwargs)

