"""Analytic complexity of an AnyNet, in the paper's conventions.

flops: multiply-adds of conv and dense layers (plus one per bias);
params: trainable parameters (BN gamma and beta count, moving stats do not);
acts: summed output sizes of conv and dense layers.

Each function mirrors the builder of the same name in
`keras_regnet.models.blocks`; change both together.
"""

from keras_regnet.design.checks import check, check_int, invalid
from keras_regnet.design.spec import (MAX_CLASSES, MAX_INPUT_SIZE, MAX_WIDTH,
                                      AnyNetSpec, bottleneck_width, se_width)


class _Counter:
    __slots__ = ("h", "w", "flops", "params", "acts")

    def __init__(self, h, w):
        self.h, self.w = h, w
        self.flops = self.params = self.acts = 0

    def conv(self, w_in, w_out, k, stride=1, groups=1, bias=False):
        # Output size of a 'same'-padded conv, equal to PyTorch's pad k // 2.
        self.h = (self.h - 1) // stride + 1
        self.w = (self.w - 1) // stride + 1
        hw = self.h * self.w
        self.flops += k * k * w_in * w_out * hw // groups + (w_out if bias else 0)
        self.params += k * k * w_in * w_out // groups + (w_out if bias else 0)
        self.acts += w_out * hw

    def bn(self, width):
        self.params += 2 * width

    def branch(self, fn):
        """Counts a parallel branch without moving the spatial size."""
        h, w = self.h, self.w
        fn()
        self.h, self.w = h, w


def stem(cx, spec, channels):
    cx.conv(channels, spec.stem_width, 3, spec.stem_stride)
    if not spec.preactivation:  # a pre-activation network's first block has it
        cx.bn(spec.stem_width)


def squeeze_excite(cx, w_b, w_se):
    def count():
        cx.h = cx.w = 1
        cx.conv(w_b, w_se, 1, bias=True)
        cx.conv(w_se, w_b, 1, bias=True)
    cx.branch(count)


def projection(cx, w_in, w_out, stride, bn=True):
    """The shortcut's 1x1 conv (strided, or after a 2x2 average pool: the
    same count) and BN, where the shapes change."""
    if w_in != w_out or stride != 1:
        cx.branch(lambda: (cx.conv(w_in, w_out, 1, stride), bn and cx.bn(w_out)))


def bottleneck(cx, w_in, w_out, stride, b, g, se_ratio):
    """1x1, grouped 3x3, SE (if `se_ratio`), 1x1, each conv with its BN."""
    w_b = bottleneck_width(w_out, b)
    cx.conv(w_in, w_b, 1)
    cx.bn(w_b)
    cx.conv(w_b, w_b, 3, stride, groups=w_b // g)
    cx.bn(w_b)
    if se_ratio:
        squeeze_excite(cx, w_b, se_width(w_in, se_ratio))
    cx.conv(w_b, w_out, 1)
    cx.bn(w_out)


def x_block(cx, w_in, w_out, stride, b, g, se_ratio):
    """X block (Y block when `se_ratio` > 0)."""
    projection(cx, w_in, w_out, stride)
    bottleneck(cx, w_in, w_out, stride, b, g, se_ratio)


def z_block(cx, w_in, w_out, stride, b, g, se_ratio):
    """Z block: the bottleneck alone (its shortcut, where there is one, is
    the identity)."""
    bottleneck(cx, w_in, w_out, stride, b, g, se_ratio)


def v_block(cx, w_in, w_out, stride, b, g, se_ratio):
    """V block: BN before each conv; the shortcut's conv has none."""
    cx.bn(w_in)
    projection(cx, w_in, w_out, stride, bn=False)
    w_b = bottleneck_width(w_out, b)
    cx.conv(w_in, w_b, 1)
    cx.bn(w_b)
    cx.conv(w_b, w_b, 3, stride, groups=w_b // g)
    if se_ratio:
        squeeze_excite(cx, w_b, se_width(w_in, se_ratio))
    cx.bn(w_b)
    cx.conv(w_b, w_out, 1)


def res_basic_block(cx, w_in, w_out, stride, b, g, se_ratio):
    projection(cx, w_in, w_out, stride)
    vanilla_block(cx, w_in, w_out, stride, b, g, se_ratio)


def vanilla_block(cx, w_in, w_out, stride, b, g, se_ratio):
    cx.conv(w_in, w_out, 3, stride)
    cx.bn(w_out)
    cx.conv(w_out, w_out, 3)
    cx.bn(w_out)


# Block type -> its counter, the twin of `keras_regnet.models.blocks.BLOCKS`;
# every counter takes `(cx, w_in, w_out, stride, b, g, se_ratio)`.
BLOCKS = {"x": x_block, "y": x_block, "z": z_block, "v": v_block,
          "res_basic": res_basic_block, "vanilla": vanilla_block}


def head(cx, w_in, head_width, classes):
    if head_width:
        cx.conv(w_in, head_width, 1)
        cx.bn(head_width)
        w_in = head_width
    if classes:
        cx.h = cx.w = 1
        cx.conv(w_in, classes, 1, bias=True)


def complexity(spec, input_size=224, classes=1000, channels=3):
    """Counts flops, params and acts of a model without building it.

    Args:
        spec: an `AnyNetSpec`, or the name of a published model
            (e.g. `"RegNetX002"`).
        input_size: input height and width (int) or `(height, width)`.
        classes: size of the classification head; 0 counts no head.
        channels: input channels.

    Returns:
        A dict with integer `"flops"` (multiply-adds), `"params"` and
        `"acts"`.
    """
    if isinstance(spec, str):
        from keras_regnet.design.zoo import zoo_spec
        spec = zoo_spec(spec)
    if not isinstance(spec, AnyNetSpec):
        raise invalid("spec", spec, "an AnyNetSpec or a model name")
    h, w = (tuple(input_size) if isinstance(input_size, (tuple, list))
            and len(input_size) == 2 else (input_size, input_size))
    for v in (h, w):
        check_int("input_size", v, MAX_INPUT_SIZE)
    check(isinstance(classes, int) and not isinstance(classes, bool)
           and 0 <= classes <= MAX_CLASSES, "classes", classes,
           f"an integer in [0, {MAX_CLASSES}]")
    check_int("channels", channels, MAX_WIDTH)
    cx = _Counter(h, w)
    stem(cx, spec, channels)
    w_in = spec.stem_width
    for d, w_out, stride, b, g in zip(spec.depths, spec.widths, spec.strides,
                                      spec.bottleneck_ratios, spec.group_widths):
        count = BLOCKS[spec.block_type]
        count(cx, w_in, w_out, stride, b, g, spec.se_ratio)
        if d > 1:
            # The stage's other blocks are alike: count one, add the rest.
            before = cx.flops, cx.params, cx.acts
            count(cx, w_out, w_out, 1, b, g, spec.se_ratio)
            cx.flops, cx.params, cx.acts = (
                now + (now - was) * (d - 2)
                for now, was in zip((cx.flops, cx.params, cx.acts), before))
        w_in = w_out
    head(cx, spec.widths[-1], spec.head_width, classes)
    return {"flops": cx.flops, "params": cx.params, "acts": cx.acts}

