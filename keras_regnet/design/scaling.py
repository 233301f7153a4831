"""Model scaling: a network with `s` times the flops (Dollar et al. 2021).

Flops grow as `d * w**2 * r**2` (depth, width, resolution; the group width
scales with the width, so the number of groups is kept). A strategy spreads
the factor `s` over the three with exponents `e_d + 2 e_w + 2 e_r = 1`:
`d -> d * s**e_d`, `w -> w * s**e_w`, `r -> r * s**e_r`.
"""

import dataclasses
import math
from typing import NamedTuple

from keras_regnet.design.checks import invalid, is_number
from keras_regnet.design.complexity import complexity
from keras_regnet.design.regnet import QUANTUM, make_compatible
from keras_regnet.design.spec import BOTTLENECK_BLOCKS, AnyNetSpec
from keras_regnet.design.zoo import MODEL_NAMES, zoo_spec

# EfficientNet's compound scaling (Tan & Le 2019): per unit of phi, depth x
# alpha, width x beta, resolution x gamma, flops x alpha * beta^2 * gamma^2.
EFFICIENTNET_ALPHA, EFFICIENTNET_BETA, EFFICIENTNET_GAMMA = 1.2, 1.1, 1.15
_EFFICIENTNET_FLOPS = math.log(
    EFFICIENTNET_ALPHA * EFFICIENTNET_BETA**2 * EFFICIENTNET_GAMMA**2)
# strategy: (e_d, e_w, e_r).
STRATEGIES = {
    # "Fast compound scaling": mostly width (with the group width), a little
    # depth and resolution (Dollar et al. 2021).
    "dWr": (0.1, 0.4, 0.05),
    "efficientnet": tuple(math.log(x) / _EFFICIENTNET_FLOPS for x in (
        EFFICIENTNET_ALPHA, EFFICIENTNET_BETA, EFFICIENTNET_GAMMA)),
    "d": (1.0, 0.0, 0.0),
    "w": (0.0, 0.5, 0.0),
    "r": (0.0, 0.0, 0.5),
}
# Largest relative miss of the target flops; beyond it the factor is searched.
TOLERANCE = 0.1
# Corrections tried when rounding misses: x 2 ** (k / 32), |k| <= 32.
_SEARCH_STEPS = 32


class Scaled(NamedTuple):
    """Result of `scale`: the network, its input size and the flops ratio
    it achieves (its flops at `input_size` over the original's)."""

    spec: AnyNetSpec
    input_size: int
    flops_ratio: float


def scale(name_or_spec, flops_factor, strategy="dWr", input_size=224):
    """Scales a network to `flops_factor` times its flops.

    The network's stages are scaled (a published model's as `zoo_spec`
    gives them, as the scaler of Dollar et al. in pycls does): depths by
    `s**e_d` (at least 1), widths by `s**e_w` to multiples of 8, group
    widths alike (to a power of two below 8, a multiple of 8 from there),
    then `make_compatible`; the input side by `s**e_r` to a multiple of 8.
    A factor of exactly 1 leaves its dimension as it is, so
    `flops_factor=1` returns the network unchanged.

    If rounding leaves the flops (as `complexity` counts them, at the new
    input size) more than 10 % from `flops_factor` times the original's,
    the closest of two corrections is taken: the width factor (for `"d"`
    or `"r"` alone: that factor) times `2**(k / 32)`, or the whole factor
    `s` times `2**(k / 32)`, `|k| <= 32`, never taking a factor across 1.

    Args:
        name_or_spec: a model name (e.g. `"RegNetY016"`) or an `AnyNetSpec`.
        flops_factor: the factor `s` (> 0).
        strategy: `"dWr"` (Dollar et al. 2021: `e_d` 0.1, `e_w` 0.4, `e_r`
            0.05), `"efficientnet"` (Tan & Le 2019: `s = (1.2 * 1.1**2 *
            1.15**2) ** phi`, depth `1.2**phi`, width `1.1**phi`,
            resolution `1.15**phi`), or `"d"`, `"w"`, `"r"` alone.
        input_size: the original network's input side.

    Returns:
        A `Scaled(spec, input_size, flops_ratio)` named tuple.

    Raises:
        ValueError: a bad argument, or no correction comes within 10 %
            (e.g. depth alone cannot shrink stages of one block).

    Example:

    ```python
    spec, size, ratio = scale("RegNetY016", 4.0)   # ~6.4 GF, fast compound
    model = keras_regnet.AnyNet(spec, input_shape=(size, size, 3))
    ```
    """
    if isinstance(name_or_spec, str) and name_or_spec in MODEL_NAMES:
        original = zoo_spec(name_or_spec)
    elif isinstance(name_or_spec, AnyNetSpec):
        original = name_or_spec
    else:
        raise invalid("name_or_spec", name_or_spec,
                     f"an AnyNetSpec or one of {MODEL_NAMES}")
    if not (is_number(flops_factor) and math.isfinite(flops_factor)
            and flops_factor > 0):
        raise invalid("flops_factor", flops_factor, "a finite number > 0")
    if strategy not in STRATEGIES:
        raise invalid("strategy", strategy, f"one of {tuple(STRATEGIES)}")
    if not (isinstance(input_size, int) and not isinstance(input_size, bool)
            and input_size >= 1):
        raise invalid("input_size", input_size, "an integer >= 1")
    base = complexity(original, input_size=input_size)["flops"]
    exponents = STRATEGIES[strategy]
    corrected = 1 if exponents[1] else exponents.index(max(exponents))

    def scaled(s, t=1.0):
        """The network at factor `s`, the corrected dimension times `t`."""
        factors = [s ** e for e in exponents]
        factors[corrected] *= t
        f_d, f_w, f_r = factors
        spec = _scale_stages(original, f_d, f_w)
        size = (input_size if f_r == 1 else
                max(QUANTUM, round(input_size * f_r / QUANTUM) * QUANTUM))
        ratio = complexity(spec, input_size=size)["flops"] / base
        return Scaled(spec, size, ratio)

    def miss(result):
        return abs(result.flops_ratio / flops_factor - 1)

    result = scaled(flops_factor)
    if miss(result) > TOLERANCE:
        # Only corrections that keep every factor on its side of 1: no
        # dimension shrinks when the network grows, or grows when it shrinks.
        steps = [2 ** (k / _SEARCH_STEPS) for k in sorted(
            range(-_SEARCH_STEPS, _SEARCH_STEPS + 1), key=abs)]
        factor = flops_factor ** exponents[corrected]
        tries = [(flops_factor, t) for t in steps if (factor * t - 1) * (factor - 1) >= 0]
        tries += [(flops_factor * t, 1.0) for t in steps
                  if (flops_factor * t - 1) * (flops_factor - 1) >= 0]
        result = min((scaled(*x) for x in tries), key=miss)
    if miss(result) > TOLERANCE:
        raise invalid("flops_factor", flops_factor,
                     f"a factor that strategy {strategy!r} can reach within "
                     f"{TOLERANCE:.0%} for this network (the closest: "
                     f"{result.flops_ratio:.3g}, depths {result.spec.depths}, "
                     f"widths {result.spec.widths}, input {result.input_size})")
    return result


def _scale_stages(spec, f_d, f_w):
    """`spec` with depths scaled by `f_d` and widths by `f_w`."""
    def width(w):
        return w if f_w == 1 else max(QUANTUM, round(w * f_w / QUANTUM) * QUANTUM)

    widths, groups = [width(w) for w in spec.widths], spec.group_widths
    if spec.block_type in BOTTLENECK_BLOCKS and f_w != 1:
        widths, groups = make_compatible(
            widths, spec.bottleneck_ratios,
            [_group_width(g * f_w) for g in spec.group_widths])
    return dataclasses.replace(
        spec, depths=tuple(d if f_d == 1 else max(1, round(d * f_d))
                           for d in spec.depths),
        widths=tuple(widths), group_widths=tuple(groups),
        head_width=width(spec.head_width) if spec.head_width else 0)


def _group_width(g):
    """A power of two below 8, a multiple of 8 from there."""
    if g < QUANTUM:
        return 2 ** max(round(math.log2(g)), 0)
    return round(g / QUANTUM) * QUANTUM
