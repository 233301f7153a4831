"""The RegNet rule: six numbers -> per-stage widths and depths (paper, sec. 4)."""

import math

import numpy as np

from keras_regnet.design.checks import check, check_int, check_real
from keras_regnet.design.spec import MAX_BLOCKS, MAX_WIDTH, AnyNetSpec

# The paper's RegNet design space (sec. 4): d < 64, w0 < 256, 0 < wa < 256,
# 1.5 <= wm <= 3, b in {1, 2, 4}, g in {1, 2, 4, 8, 16, 32}.
QUANTUM = 8


def validate_regnet_params(depth, w0, wa, wm, group_width, bottleneck_ratio,
                           q=QUANTUM):
    """Raises `ValueError` naming the first invalid RegNet parameter."""
    check_int("q", q, MAX_WIDTH)
    check_int("depth", depth, MAX_BLOCKS)
    check_int("w0", w0, MAX_WIDTH)
    check(w0 % q == 0, "w0", w0, f"a positive multiple of {q}")
    check_real("wa", wa, high=MAX_WIDTH)
    check_real("wm", wm, above=1, high=MAX_WIDTH)
    check_int("group_width", group_width, MAX_WIDTH)
    check_real("bottleneck_ratio", bottleneck_ratio, high=MAX_WIDTH)
    widest = max(quantized_linear(depth, w0, wa, wm, q))
    check(widest <= MAX_WIDTH, "wa", wa,
           f"a slope that keeps the widths under {MAX_WIDTH} (depth {depth}, "
           f"w0 {w0} and wm {wm} give {widest})")


def quantized_linear(depth, w0, wa, wm, q=QUANTUM):
    """Per-block widths from the quantized linear rule.

    u_j = w0 + wa * j, s_j = round(log(u_j / w0) / log(wm)),
    w_j = w0 * wm ** s_j rounded to a multiple of q.

    Returns:
        A list of `depth` ints, one width per block.
    """
    u = w0 + wa * np.arange(depth)
    s = np.round(np.log(u / w0) / np.log(wm))
    w = w0 * np.power(wm, s)
    return (np.round(w / q) * q).astype(int).tolist()


def stages_from_blocks(block_widths):
    """Merges consecutive equal widths into stages: `(widths, depths)`."""
    widths, depths = [], []
    for w in block_widths:
        if widths and widths[-1] == w:
            depths[-1] += 1
        else:
            widths.append(w)
            depths.append(1)
    return widths, depths


def make_compatible(widths, bottleneck_ratios, group_widths):
    """Makes each stage's widths agree with its group width, as pycls does.

    The group width is capped at the bottleneck width, and the bottleneck
    width rounded to a multiple of the group width (of the least common
    multiple of the group width and the expansion 1/b, for an inverted
    bottleneck b < 1, so that the stage width stays whole); the stage
    width follows.

    Returns:
        `(widths, group_widths)` as lists of ints.
    """
    out_w, out_g = [], []
    for w, b, g in zip(widths, bottleneck_ratios, group_widths):
        w_b = max(1, int(w / b))
        g = min(g, w_b)
        m = math.lcm(g, round(1 / b)) if b < 1 else g
        w_b = max(m, int(round(w_b / m) * m))
        out_w.append(int(w_b * b))
        out_g.append(g)
    return out_w, out_g


def regnet_spec(depth, w0, wa, wm, group_width, bottleneck_ratio=1.0,
                se_ratio=0.0, stem_type="imagenet", stem_width=32, q=QUANTUM, *,
                block_type=None, activation="relu", downsample="conv", head_width=0):
    """The `AnyNetSpec` of a RegNet given its six parameters.

    Args:
        depth: total number of blocks d.
        w0: initial width (a multiple of `q`).
        wa: width slope.
        wm: width multiplier (> 1).
        group_width: group width g.
        bottleneck_ratio: bottleneck ratio b.
        se_ratio: 0 for RegNetX; > 0 (0.25 in the paper) for RegNetY.
        stem_type: `"imagenet"` or `"cifar"`.
        stem_width: stem output channels.
        q: width quantum.
        block_type: None (`"y"` with SE, else `"x"`), or an
            `AnyNetSpec.block_type` (`"z"`, `"v"`).
        activation, downsample, head_width: as in `AnyNetSpec`.
    """
    validate_regnet_params(depth, w0, wa, wm, group_width, bottleneck_ratio, q)
    widths, depths = stages_from_blocks(quantized_linear(depth, w0, wa, wm, q))
    n = len(widths)
    widths, groups = make_compatible(
        widths, [bottleneck_ratio] * n, [group_width] * n)
    return AnyNetSpec(
        depths=tuple(depths),
        widths=tuple(widths),
        strides=(2,) * n,
        bottleneck_ratios=(bottleneck_ratio,) * n,
        group_widths=tuple(groups),
        block_type=block_type or ("y" if se_ratio else "x"),
        se_ratio=se_ratio,
        stem_type=stem_type,
        stem_width=stem_width,
        head_width=head_width,
        activation=activation,
        downsample=downsample,
    )
