"""The published RegNets: the paper's RegNetX/Y (appendix; pycls model
zoo), and the family beyond it that timm defines (RegNetZ, RegNetV, the
large RegNetY of SEER and SWAG)."""

import dataclasses
from functools import partial

from keras_regnet.design.checks import invalid
from keras_regnet.design.regnet import regnet_spec
from keras_regnet.design.spec import SE_RATIO


@dataclasses.dataclass(frozen=True)
class RegNetParams:
    """A RegNet's parameters: `regnet_spec(**dataclasses.asdict(p))`."""

    depth: int
    w0: int
    wa: float
    wm: float
    group_width: int
    bottleneck_ratio: float = 1.0
    se_ratio: float = 0.0
    block_type: str = None
    activation: str = "relu"
    downsample: str = "conv"
    head_width: int = 0


def with_se(**params):
    """A RegNetY: the RegNetX block with SE of the paper's ratio."""
    return RegNetParams(**params, se_ratio=SE_RATIO)


# b = 1 for all.
ZOO = {
    "RegNetX002": RegNetParams(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8),
    "RegNetX004": RegNetParams(depth=22, w0=24, wa=24.48, wm=2.54, group_width=16),
    "RegNetX006": RegNetParams(depth=16, w0=48, wa=36.97, wm=2.24, group_width=24),
    "RegNetX008": RegNetParams(depth=16, w0=56, wa=35.73, wm=2.28, group_width=16),
    "RegNetX016": RegNetParams(depth=18, w0=80, wa=34.01, wm=2.25, group_width=24),
    "RegNetX032": RegNetParams(depth=25, w0=88, wa=26.31, wm=2.25, group_width=48),
    "RegNetX040": RegNetParams(depth=23, w0=96, wa=38.65, wm=2.43, group_width=40),
    "RegNetX064": RegNetParams(depth=17, w0=184, wa=60.83, wm=2.07, group_width=56),
    "RegNetX080": RegNetParams(depth=23, w0=80, wa=49.56, wm=2.88, group_width=120),
    "RegNetX120": RegNetParams(depth=19, w0=168, wa=73.36, wm=2.37, group_width=112),
    "RegNetX160": RegNetParams(depth=22, w0=216, wa=55.59, wm=2.10, group_width=128),
    "RegNetX320": RegNetParams(depth=23, w0=320, wa=69.86, wm=2.00, group_width=168),
    "RegNetY002": with_se(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8),
    "RegNetY004": with_se(depth=16, w0=48, wa=27.89, wm=2.09, group_width=8),
    "RegNetY006": with_se(depth=15, w0=48, wa=32.54, wm=2.32, group_width=16),
    "RegNetY008": with_se(depth=14, w0=56, wa=38.84, wm=2.40, group_width=16),
    "RegNetY016": with_se(depth=27, w0=48, wa=20.71, wm=2.65, group_width=24),
    "RegNetY032": with_se(depth=21, w0=80, wa=42.63, wm=2.66, group_width=24),
    "RegNetY040": with_se(depth=22, w0=96, wa=31.41, wm=2.24, group_width=64),
    "RegNetY064": with_se(depth=25, w0=112, wa=33.22, wm=2.27, group_width=72),
    "RegNetY080": with_se(depth=17, w0=192, wa=76.82, wm=2.19, group_width=56),
    "RegNetY120": with_se(depth=19, w0=168, wa=73.36, wm=2.37, group_width=112),
    "RegNetY160": with_se(depth=18, w0=200, wa=106.23, wm=2.48, group_width=112),
    "RegNetY320": with_se(depth=20, w0=232, wa=115.89, wm=2.53, group_width=232),
}
# The paper's 24 models, those with ImageNet weights of Keras 2.
MODEL_NAMES = tuple(ZOO)

# timm's RegNetZ (b = 1/4: an inverted bottleneck, 4x wider inside), its
# pre-activation RegNetV and the large RegNetY (`timm/models/regnet.py`).
RegNetZ = partial(RegNetParams, bottleneck_ratio=0.25, se_ratio=SE_RATIO, block_type="z",
                  activation="silu")
RegNetV = partial(RegNetParams, se_ratio=SE_RATIO, block_type="v", activation="silu")
ZOO.update({
    "RegNetZ005": RegNetZ(depth=21, w0=16, wa=10.7, wm=2.51, group_width=4, head_width=1024),
    "RegNetZ040": RegNetZ(depth=28, w0=48, wa=14.5, wm=2.226, group_width=8),
    "RegNetZ040H": RegNetZ(depth=28, w0=48, wa=14.5, wm=2.226, group_width=8,
                           head_width=1536),
    "RegNetV040": RegNetV(depth=22, w0=96, wa=31.41, wm=2.24, group_width=64),
    "RegNetV064": RegNetV(depth=25, w0=112, wa=33.22, wm=2.27, group_width=72,
                          downsample="avg"),
    "RegNetY640": with_se(depth=20, w0=352, wa=147.48, wm=2.4, group_width=328),
    "RegNetY1280": with_se(depth=27, w0=456, wa=160.83, wm=2.52, group_width=264),
    "RegNetY2560": with_se(depth=27, w0=640, wa=230.83, wm=2.53, group_width=373),
})
FAMILY_NAMES = tuple(name for name in ZOO if name not in MODEL_NAMES)


def zoo_params(name):
    """The six RegNet parameters of a published model (and its SE ratio),
    as keyword arguments of `regnet_spec`."""
    if name not in ZOO:
        raise invalid("name", name, f"one of {tuple(ZOO)}")
    return dataclasses.asdict(ZOO[name])


def zoo_spec(name):
    """The `AnyNetSpec` of a published model, e.g. `zoo_spec("RegNetY016")`."""
    return regnet_spec(**zoo_params(name))
