"""The published RegNetX/Y models (paper, appendix; pycls model zoo)."""

from keras_regnet.design.regnet import regnet_spec

# name: (d, w0, wa, wm, g). RegNetY adds SE with ratio 0.25; b = 1 for all.
REGNET_X = {
    "RegNetX002": (13, 24, 36.44, 2.49, 8),
    "RegNetX004": (22, 24, 24.48, 2.54, 16),
    "RegNetX006": (16, 48, 36.97, 2.24, 24),
    "RegNetX008": (16, 56, 35.73, 2.28, 16),
    "RegNetX016": (18, 80, 34.01, 2.25, 24),
    "RegNetX032": (25, 88, 26.31, 2.25, 48),
    "RegNetX040": (23, 96, 38.65, 2.43, 40),
    "RegNetX064": (17, 184, 60.83, 2.07, 56),
    "RegNetX080": (23, 80, 49.56, 2.88, 120),
    "RegNetX120": (19, 168, 73.36, 2.37, 112),
    "RegNetX160": (22, 216, 55.59, 2.10, 128),
    "RegNetX320": (23, 320, 69.86, 2.00, 168),
}
REGNET_Y = {
    "RegNetY002": (13, 24, 36.44, 2.49, 8),
    "RegNetY004": (16, 48, 27.89, 2.09, 8),
    "RegNetY006": (15, 48, 32.54, 2.32, 16),
    "RegNetY008": (14, 56, 38.84, 2.40, 16),
    "RegNetY016": (27, 48, 20.71, 2.65, 24),
    "RegNetY032": (21, 80, 42.63, 2.66, 24),
    "RegNetY040": (22, 96, 31.41, 2.24, 64),
    "RegNetY064": (25, 112, 33.22, 2.27, 72),
    "RegNetY080": (17, 192, 76.82, 2.19, 56),
    "RegNetY120": (19, 168, 73.36, 2.37, 112),
    "RegNetY160": (18, 200, 106.23, 2.48, 112),
    "RegNetY320": (20, 232, 115.89, 2.53, 232),
}
SE_RATIO = 0.25
MODEL_NAMES = tuple(REGNET_X) + tuple(REGNET_Y)


def zoo_params(name):
    """The six RegNet parameters of a published model, as keyword args."""
    table = REGNET_Y if name in REGNET_Y else REGNET_X
    if name not in table:
        raise ValueError(
            f"Unknown model name: {name!r}. Expected one of {MODEL_NAMES}.")
    d, w0, wa, wm, g = table[name]
    return dict(depth=d, w0=w0, wa=wa, wm=wm, group_width=g,
                bottleneck_ratio=1.0,
                se_ratio=SE_RATIO if table is REGNET_Y else 0.0)


def zoo_spec(name):
    """The `AnyNetSpec` of a published model, e.g. `zoo_spec("RegNetY016")`."""
    return regnet_spec(**zoo_params(name))
