"""The AnyNet specification: everything that defines a network's shape."""

import dataclasses
from typing import Tuple

from keras_regnet.design.checks import check, check_choice, check_int, check_real, is_real

# Stem type -> the stride of its 3x3 conv, and the smallest input it takes
# (32 for the ImageNet stem, as keras.applications).
STEM_STRIDES = {"imagenet": 2, "cifar": 1}
MIN_INPUT_SIZES = {"imagenet": 32, "cifar": 8}
STEM_TYPES = tuple(STEM_STRIDES)
# The paper's Y block: SE width = 1/4 of the block's input width.
SE_RATIO = 0.25
BLOCK_TYPES = ("x", "y", "z", "v", "res_basic", "vanilla")
# Blocks built from a bottleneck and a grouped 3x3 conv; the others ignore b and g.
BOTTLENECK_BLOCKS = ("x", "y", "z", "v")
# Blocks whose SE is optional (Y blocks always have one, the others none).
OPTIONAL_SE_BLOCKS = ("z", "v")
# Blocks after which the network ends in an activation of its own (their
# outputs have none): the linear Z block and the pre-activation V block.
OPEN_ENDED_BLOCKS = ("z", "v")
ACTIVATIONS = ("relu", "silu")
# How a residual shortcut changes width or resolution: a strided 1x1 conv
# (the paper's), or a 2x2 average pool then a 1x1 conv (ResNet-D's).
DOWNSAMPLES = ("conv", "avg")
# Far beyond any published network (the largest RegNets have 28 blocks and
# widths under 4,000); larger values would take minutes or all memory to build.
MAX_BLOCKS = 1000
MAX_WIDTH = 65536
MAX_INPUT_SIZE = 16384
MAX_CLASSES = 100000


@dataclasses.dataclass(frozen=True)
class AnyNetSpec:
    """Shape of an AnyNet: stem, per-stage body and head.

    Args:
        depths: blocks per stage.
        widths: output width (channels) per stage.
        strides: stride of each stage's first block (default 2 everywhere).
        bottleneck_ratios: per-stage bottleneck ratio b; the inner width of
            a block is `width / b` (default 1, no bottleneck).
        group_widths: per-stage channels per group of the 3x3 conv.
        block_type: one of `"x"` (residual bottleneck with grouped conv),
            `"y"` (X with squeeze-and-excitation), `"z"` (RegNetZ's
            inverted bottleneck: b < 1 expands, SE optional, no activation
            after the last 1x1 conv, a residual only where the shapes
            match), `"v"` (RegNetV's pre-activation X/Y block: BN and
            activation before each conv, SE optional), `"res_basic"`
            (ResNet basic block), `"vanilla"` (two plain 3x3 convs).
        se_ratio: SE width as a fraction of the block's input width; > 0
            for `"y"` blocks, >= 0 for `"z"` and `"v"`, 0 for the others.
        stem_type: `"imagenet"` (3x3 conv, stride 2) or `"cifar"`
            (3x3 conv, stride 1, for small images).
        stem_width: stem output channels.
        head_width: if > 0, a 1x1 conv + BN + activation of this width
            before pooling.
        activation: `"relu"` (the paper's) or `"silu"` (RegNetZ/V), in the
            blocks, their SE, the stem and the head.
        downsample: the shortcut where a block changes width or
            resolution: `"conv"` (strided 1x1 conv, the paper's) or `"avg"`
            (2x2 average pool, then 1x1 conv).
    """

    depths: Tuple[int, ...]
    widths: Tuple[int, ...]
    strides: Tuple[int, ...] = None
    bottleneck_ratios: Tuple[float, ...] = None
    group_widths: Tuple[int, ...] = None
    block_type: str = "x"
    se_ratio: float = 0.0
    stem_type: str = "imagenet"
    stem_width: int = 32
    head_width: int = 0
    activation: str = "relu"
    downsample: str = "conv"

    def __post_init__(self):
        n = len(self.depths) if hasattr(self.depths, "__len__") else -1
        check(n >= 1, "depths", self.depths, "a non-empty sequence of ints")
        defaults = {"strides": 2, "bottleneck_ratios": 1.0, "group_widths": 1}
        for field in ("depths", "widths", *defaults):
            value = getattr(self, field)
            if value is None:
                value = (defaults[field],) * n
            elif not hasattr(value, "__len__"):
                value = (value,) * n
            value = tuple(value)
            check(len(value) == n, field, value, f"{n} values, one per stage")
            object.__setattr__(self, field, value)
        for d in self.depths:
            check_int("depth", d, MAX_BLOCKS)
        check(sum(self.depths) <= MAX_BLOCKS, "depths", self.depths,
               f"at most {MAX_BLOCKS} blocks in all")
        for w in self.widths:
            check_int("width", w, MAX_WIDTH)
        for s in self.strides:
            check(s in (1, 2) and not isinstance(s, bool), "stride", s, "1 or 2")
        for b in self.bottleneck_ratios:
            check_real("bottleneck_ratio", b, high=MAX_WIDTH)
        for g in self.group_widths:
            check_int("group_width", g, MAX_WIDTH)
        check(self.block_type in BLOCK_TYPES, "block_type", self.block_type,
               f"one of {BLOCK_TYPES}")
        check(self.stem_type in STEM_TYPES, "stem_type", self.stem_type,
               f"one of {STEM_TYPES}")
        check_int("stem_width", self.stem_width, MAX_WIDTH)
        check_int("head_width", self.head_width, MAX_WIDTH, low=0)
        check(is_real(self.se_ratio), "se_ratio", self.se_ratio,
               "a finite number")
        check_choice("activation", self.activation, ACTIVATIONS)
        check_choice("downsample", self.downsample, DOWNSAMPLES)
        if self.block_type == "y":
            check(0 < self.se_ratio <= 1, "se_ratio", self.se_ratio,
                  "a number in (0, 1] for 'y' blocks")
        elif self.block_type in OPTIONAL_SE_BLOCKS:
            check(0 <= self.se_ratio <= 1, "se_ratio", self.se_ratio,
                  f"a number in [0, 1] for '{self.block_type}' blocks")
        else:
            check(self.se_ratio == 0, "se_ratio", self.se_ratio,
                  f"0 for '{self.block_type}' blocks (SE needs block_type "
                  "'y', 'z' or 'v')")
        if self.block_type in BOTTLENECK_BLOCKS:
            for w, b, g in zip(self.widths, self.bottleneck_ratios,
                               self.group_widths):
                w_b = bottleneck_width(w, b)
                check(w_b >= 1 and w_b % g == 0, "group_widths",
                       self.group_widths,
                       f"divisors of the bottleneck widths (stage width {w} "
                       f"/ b {b} = {w_b}); make_compatible() fixes this")

    @property
    def num_stages(self):
        return len(self.depths)

    @property
    def preactivation(self):
        """Whether BN and activation come before each conv (RegNetV)."""
        return self.block_type == "v"

    @property
    def final_activation(self):
        """Whether an activation follows the last block (the open-ended
        blocks' networks without a head conv)."""
        return self.block_type in OPEN_ENDED_BLOCKS and not self.head_width

    @property
    def stem_stride(self):
        return STEM_STRIDES[self.stem_type]

    @property
    def total_stride(self):
        """Input size / the last stage's output size."""
        return self.stem_stride * 2 ** sum(s == 2 for s in self.strides)

    def blocks(self):
        """Yields `(stage, block, w_in, w_out, stride, b, g)`, 1-indexed."""
        w_in = self.stem_width
        for s, (d, w, st, b, g) in enumerate(zip(
                self.depths, self.widths, self.strides,
                self.bottleneck_ratios, self.group_widths), start=1):
            for i in range(1, d + 1):
                yield s, i, w_in, w, st if i == 1 else 1, b, g
                w_in = w

    def to_config(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def bottleneck_width(width, bottleneck_ratio):
    """Inner width of a bottleneck block: `round(width / b)`."""
    return int(round(width / bottleneck_ratio))


def se_width(w_in, se_ratio):
    """SE width from the block's *input* width, as in the paper."""
    return int(round(w_in * se_ratio))
