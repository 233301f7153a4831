"""Model scaling: a network with `s` times the flops (Dollar et al. 2021).

Flops grow as `d * w**2 * r**2` (depth, width, resolution). A strategy
spreads the factor `s` over them with exponents `e_d + 2 e_w + 2 e_r = 1`,
and scales the group width by its own exponent `e_g`: `d -> d * s**e_d`,
`w -> w * s**e_w`, `g -> g * s**e_g`, `r -> r * s**e_r`, each rounded as
pycls' scaler (`pycls.models.scaler.scale_model`) rounds it.
"""

import dataclasses
import math
import re
from typing import NamedTuple

from keras_regnet.design.checks import check, invalid, is_number
from keras_regnet.design.complexity import complexity
from keras_regnet.design.regnet import QUANTUM, make_compatible
from keras_regnet.design.spec import BOTTLENECK_BLOCKS, AnyNetSpec
from keras_regnet.design.zoo import MODEL_NAMES, zoo_spec

# pycls' scaling types: letters ("dw": equal weights) or weighted letters
# ("d1_w8_g8_r1"); the weights of d, w and r share the factor, g follows w's.
SCALING_TYPE = re.compile(r"[dwgr]+|[dwgr]\d+(\.\d+)?(_[dwgr]\d+(\.\d+)?)*")


def scaling_exponents(scaling_type):
    """`(e_d, e_w, e_g, e_r)` of a pycls scaling type, e.g. `"d1_w8_g8_r1"`."""
    if not (isinstance(scaling_type, str) and SCALING_TYPE.fullmatch(scaling_type)):
        raise invalid("strategy", scaling_type,
                      f"one of {tuple(STRATEGIES)} or a pycls scaling type such "
                      "as 'd1_w8_g8_r1' or 'dw'")
    if "_" in scaling_type or scaling_type[-1].isdigit():
        parts = {part[0]: float(part[1:]) for part in scaling_type.split("_")}
        check(len(parts) == scaling_type.count("_") + 1, "strategy", scaling_type,
              "each of d, w, g, r at most once")
    else:
        parts = dict.fromkeys(scaling_type, 1.0)
    weight = {c: parts.get(c, 0.0) for c in "dwgr"}
    total = weight["d"] + weight["w"] + weight["r"] or weight["g"] / 2 or 1.0
    return (weight["d"] / total, weight["w"] / total / 2,
            weight["g"] / total / 2, weight["r"] / total / 2)


# EfficientNet's compound scaling (Tan & Le 2019): per unit of phi, depth x
# alpha, width x beta, resolution x gamma, flops x alpha * beta^2 * gamma^2.
EFFICIENTNET_ALPHA, EFFICIENTNET_BETA, EFFICIENTNET_GAMMA = 1.2, 1.1, 1.15
_EFFICIENTNET_FLOPS = math.log(
    EFFICIENTNET_ALPHA * EFFICIENTNET_BETA**2 * EFFICIENTNET_GAMMA**2)
_E_D, _E_W, _E_R = (math.log(x) / _EFFICIENTNET_FLOPS for x in (
    EFFICIENTNET_ALPHA, EFFICIENTNET_BETA, EFFICIENTNET_GAMMA))
# strategy: (e_d, e_w, e_g, e_r); any pycls scaling type is accepted too.
STRATEGIES = {
    # "Fast compound scaling": mostly width with the group width, a little
    # depth and resolution (Dollar et al. 2021; pycls' "d1_w8_g8_r1").
    "dWr": scaling_exponents("d1_w8_g8_r1"),
    "efficientnet": (_E_D, _E_W, _E_W, _E_R),
    "d": scaling_exponents("d"),
    "w": scaling_exponents("w"),
    "r": scaling_exponents("r"),
}
# pycls rounds the input side to multiples of 4.
RESOLUTION_QUANTUM = 4
# With `match_flops`: the largest relative miss of the target flops, beyond
# which the factor is searched.
TOLERANCE = 0.1
# Corrections tried when rounding misses: x 2 ** (k / 32), |k| <= 32.
_SEARCH_STEPS = 32


class Scaled(NamedTuple):
    """Result of `scale`: the network, its input size and the flops ratio
    it achieves (its flops at `input_size` over the original's)."""

    spec: AnyNetSpec
    input_size: int
    flops_ratio: float


def scale(name_or_spec, flops_factor, strategy="dWr", input_size=224,
          match_flops=False):
    """Scales a network to `flops_factor` times its flops, as pycls does.

    The network's stages are scaled (a published model's as `zoo_spec`
    gives them, as pycls' `scale_model` does): depths to `round(d * s**e_d)`
    (at least 1); widths to `round(w * s**e_w / 8) * 8` (at least 8); group
    widths to `round(g * s**e_g)`, kept if at most 2, 4 if at most 5, else
    the nearest multiple of 8; then `make_compatible`; the input side to
    `round(input_size * s**e_r / 4) * 4`. The stem and the head width
    (RegNetZ) are kept. `flops_factor=1` returns the network unchanged.

    With `match_flops=True`, if rounding leaves the flops (as `complexity`
    counts them, at the new input size) more than 10 % from `flops_factor`
    times the original's, the closest of two corrections is taken: the
    width factor (with the group width's, where the strategy scales it;
    for a strategy without width: its largest factor) times `2**(k / 32)`,
    or the whole factor `s` times `2**(k / 32)`, `|k| <= 32`, never taking
    a factor across 1.

    Args:
        name_or_spec: a model name (e.g. `"RegNetY016"`) or an `AnyNetSpec`.
        flops_factor: the factor `s` (> 0).
        strategy: `"dWr"` (Dollar et al. 2021, pycls' `"d1_w8_g8_r1"`:
            `e_d` 0.1, `e_w` = `e_g` 0.4, `e_r` 0.05), `"efficientnet"`
            (Tan & Le 2019: `s = (1.2 * 1.1**2 * 1.15**2) ** phi`, depth
            `1.2**phi`, width and group width `1.1**phi`, resolution
            `1.15**phi`), `"d"`, `"w"`, `"r"` alone, or any pycls scaling
            type (e.g. `"d1_w2"`, `"dw"`).
        input_size: the original network's input side.
        match_flops: correct the factors until the flops come within 10 %
            of the target.

    Returns:
        A `Scaled(spec, input_size, flops_ratio)` named tuple; `flops_ratio`
        is the flops achieved over the original's.

    Raises:
        ValueError: a bad argument, or with `match_flops` no correction
            comes within 10 % (e.g. depth alone cannot shrink stages of one
            block).

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
    exponents = STRATEGIES.get(strategy) if isinstance(strategy, str) else None
    exponents = exponents or scaling_exponents(strategy)
    if not (isinstance(input_size, int) and not isinstance(input_size, bool)
            and input_size >= 1):
        raise invalid("input_size", input_size, "an integer >= 1")
    check(isinstance(match_flops, bool), "match_flops", match_flops, "True or False")
    if flops_factor == 1:
        return Scaled(original, input_size, 1.0)
    base = complexity(original, input_size=input_size)["flops"]

    def scaled(factors):
        f_d, f_w, f_g, f_r = factors
        spec = _scale_stages(original, f_d, f_w, f_g)
        size = max(RESOLUTION_QUANTUM, round(input_size * f_r / RESOLUTION_QUANTUM)
                   * RESOLUTION_QUANTUM)
        ratio = complexity(spec, input_size=size)["flops"] / base
        return Scaled(spec, size, ratio)

    def miss(result):
        return abs(result.flops_ratio / flops_factor - 1)

    result = scaled([flops_factor ** e for e in exponents])
    if not match_flops or miss(result) <= TOLERANCE:
        return result
    e_d, e_w, e_g, e_r = exponents
    corrected = ([1, 2] if e_g else [1]) if e_w else [0 if e_d >= e_r else 3]
    factor = flops_factor ** exponents[corrected[0]]
    # Only corrections that keep every factor on its side of 1: no dimension
    # shrinks when the network grows, or grows when it shrinks.
    steps = [2 ** (k / _SEARCH_STEPS) for k in sorted(
        range(-_SEARCH_STEPS, _SEARCH_STEPS + 1), key=abs)]
    tries = [[flops_factor ** e * (t if i in corrected else 1.0)
              for i, e in enumerate(exponents)]
             for t in steps if (factor * t - 1) * (factor - 1) >= 0]
    tries += [[(flops_factor * t) ** e for e in exponents] for t in steps
              if (flops_factor * t - 1) * (flops_factor - 1) >= 0]
    result = min((scaled(x) for x in tries), key=miss)
    if miss(result) > TOLERANCE:
        raise invalid("flops_factor", flops_factor,
                      f"a factor that strategy {strategy!r} can reach within "
                      f"{TOLERANCE:.0%} for this network (the closest: "
                      f"{result.flops_ratio:.3g}, depths {result.spec.depths}, "
                      f"widths {result.spec.widths}, input {result.input_size})")
    return result


def _scale_stages(spec, f_d, f_w, f_g):
    """`spec` with depths, widths and group widths scaled as pycls does."""
    widths = [max(1, round(w * f_w / QUANTUM)) * QUANTUM for w in spec.widths]
    groups = spec.group_widths
    if spec.block_type in BOTTLENECK_BLOCKS:
        widths, groups = make_compatible(
            widths, spec.bottleneck_ratios, [_group_width(g * f_g) for g in groups])
    return dataclasses.replace(
        spec, depths=tuple(max(1, round(d * f_d)) for d in spec.depths),
        widths=tuple(widths), group_widths=tuple(groups))


def _group_width(g):
    """pycls' group widths: 1 or 2 kept, 4 up to 5, multiples of 8 above."""
    g = max(1, round(g))
    return g if g <= 2 else 4 if g <= 5 else round(g / QUANTUM) * QUANTUM
