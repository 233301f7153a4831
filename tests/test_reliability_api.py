"""Bad input to the Python API: each is refused by a `ValueError` that names
the argument, shows the value and says what is allowed, before any model is
built (the weights-file battery is in test_reliability_weights.py)."""

import math

import pytest

import keras_regnet
import tuner
from keras_regnet import design

NAN, INF = float("nan"), float("inf")
X002 = dict(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8)
STAGES = dict(depths=(1, 2), widths=(16, 32), group_widths=8)


def _regnet(**bad):
    return design.regnet_spec(**(X002 | bad))


def _anynet(**bad):
    return design.AnyNetSpec(**(STAGES | bad))


def _model(**bad):
    return keras_regnet.RegNetX002(**({"weights": None} | bad))


# (call, argument named, words of what is allowed)
CASES = [
    # The six RegNet numbers: bools, non-finite, huge (would hang or take all
    # memory), and a slope whose widths leave every sane range.
    (lambda: _regnet(depth=True), "depth", "integer in [1, 1000]"),
    (lambda: _regnet(depth=NAN), "depth", "integer"),
    (lambda: _regnet(depth=10**9), "depth", "[1, 1000]"),
    (lambda: _regnet(w0=8 * 10**11), "w0", "[1, 65536]"),
    (lambda: _regnet(w0=True), "w0", "integer"),
    (lambda: _regnet(wa=INF), "wa", "finite number > 0"),
    (lambda: _regnet(wa=NAN), "wa", "finite number > 0"),
    (lambda: _regnet(wa=60000.0, depth=900), "wa", "widths under 65536"),
    (lambda: _regnet(wm=INF), "wm", "finite number > 1"),
    (lambda: _regnet(wm=True), "wm", "finite number > 1"),
    (lambda: _regnet(group_width=True), "group_width", "integer"),
    (lambda: _regnet(group_width=2.0), "group_width", "integer"),
    (lambda: _regnet(bottleneck_ratio=NAN), "bottleneck_ratio", "finite"),
    (lambda: _regnet(bottleneck_ratio=-1), "bottleneck_ratio", "> 0"),
    (lambda: keras_regnet.RegNet(10**7, 24, 36.44, 2.49, 8, weights=None),
     "depth", "[1, 1000]"),
    # Any stage layout.
    (lambda: _anynet(depths=(10**6, 1)), "depth", "[1, 1000]"),
    (lambda: _anynet(depths=(600, 600)), "depths", "at most 1000 blocks"),
    (lambda: _anynet(depths=(True, 1)), "depth", "integer"),
    (lambda: _anynet(widths=(NAN, 32)), "width", "integer"),
    (lambda: _anynet(widths=(16, 10**6)), "width", "[1, 65536]"),
    (lambda: _anynet(strides=(True, 2)), "stride", "1 or 2"),
    (lambda: _anynet(bottleneck_ratios=(INF, 1)), "bottleneck_ratio", "finite"),
    (lambda: _anynet(stem_width=0), "stem_width", "integer"),
    (lambda: _anynet(head_width=True), "head_width", "[0, 65536]"),
    (lambda: _anynet(block_type="y", se_ratio=NAN), "se_ratio", "finite"),
    (lambda: keras_regnet.AnyNet(depths=(10**6,), widths=(8,), weights=None),
     "depth", "[1, 1000]"),
    # Constructors: types, ranges and head sizes that would exhaust memory.
    (lambda: _model(classes=True), "classes", "[1, 100000]"),
    (lambda: _model(classes=10**12), "classes", "[1, 100000]"),
    (lambda: _model(classes=2.5), "classes", "integer"),
    (lambda: _model(input_shape=(NAN, 224, 3)), "input_shape", "integers in [1, 16384]"),
    (lambda: _model(input_shape=(10**6, 10**6, 3), include_top=False),
     "input_shape", "[1, 16384]"),
    (lambda: _model(input_shape=(224, 224, True)), "input_shape", "integers"),
    (lambda: _model(include_top="yes"), "include_top", "True or False"),
    (lambda: _model(include_preprocessing=1), "include_preprocessing", "True or False"),
    (lambda: _model(zero_init_last_bn=None), "zero_init_last_bn", "True or False"),
    (lambda: _model(drop_path_rate=NAN), "drop_path_rate", "[0, 1)"),
    (lambda: _model(drop_path_rate=-0.1), "drop_path_rate", "[0, 1)"),
    (lambda: _model(bn_momentum=1.5), "bn_momentum", "[0, 1)"),
    (lambda: _model(bn_momentum=NAN), "bn_momentum", "[0, 1)"),
    (lambda: _model(bn_epsilon=0), "bn_epsilon", "> 0"),
    (lambda: _model(bn_epsilon=INF), "bn_epsilon", "finite"),
    (lambda: keras_regnet.RegNetX002(weights=3), "weights", "None, 'imagenet'"),
    # Analytic complexity, the fit, scaling and the design spaces.
    (lambda: keras_regnet.complexity("RegNetX002", input_size=0), "input_size", "[1, 16384]"),
    (lambda: keras_regnet.complexity("RegNetX002", input_size=2.5), "input_size", "integer"),
    (lambda: keras_regnet.complexity("RegNetX002", classes=-1), "classes", "[0, 100000]"),
    (lambda: keras_regnet.complexity("RegNetX002", channels=True), "channels", "integer"),
    (lambda: keras_regnet.fit_regnet([8, NAN]), "block_widths", "positive ints"),
    (lambda: keras_regnet.fit_regnet([]), "block_widths", "non-empty"),
    (lambda: keras_regnet.scale("RegNetX002", NAN), "flops_factor", "finite number > 0"),
    (lambda: keras_regnet.scale("RegNetX002", 0), "flops_factor", "> 0"),
    (lambda: keras_regnet.scale("RegNetX002", 2.0, strategy="zz"), "strategy", "'dWr'"),
    (lambda: keras_regnet.design_space("anynetx_z"), "name", "'anynetx_a'"),
    # Hypermodels.
    (lambda: tuner.RegNetHyperModel(learning_rate=NAN), "learning_rate", "> 0"),
    (lambda: tuner.RegNetHyperModel(learning_rate=(0.1, 0.01)), "learning_rate", "lo <= hi"),
    (lambda: tuner.RegNetHyperModel(weight_decay=-1e-5), "weight_decay", "> 0"),
    (lambda: tuner.RegNetHyperModel(classes=10**9), "classes", "[2, 100000]"),
    (lambda: tuner.RegNetHyperModel(classes=True), "classes", "integer"),
    (lambda: tuner.RegNetHyperModel(input_shape=(0, 32, 3)), "input_shape", "integers"),
    (lambda: tuner.RegNetHyperModel(input_shape=(10**5, 10**5, 3)), "input_shape",
     "[1, 16384]"),
    (lambda: tuner.RegNetHyperModel(depth=(NAN, 5)), "depth", "integers"),
    (lambda: tuner.RegNetHyperModel(flops=(-1, 5)), "flops", "0 <= lo <= hi"),
    (lambda: tuner.RegNetHyperModel(seed=-1), "seed", "[0, 2**32)"),
    (lambda: tuner.RegNetHyperModel(seed=True), "seed", "integer"),
    (lambda: tuner.RegNetHyperModel(mixed_precision="yes"), "mixed_precision",
     "True or False"),
    (lambda: tuner.RegNetHyperModel(lr_schedule="step"), "lr_schedule", "'cosine'"),
    (lambda: tuner.AnyNetHyperModel(space="anynetx_z"), "space", "'anynetx_a'"),
]


@pytest.mark.parametrize("call, arg, allowed", CASES)
def test_bad_input_is_named_with_what_is_allowed(nothing_built, call, arg, allowed):
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert f"Invalid `{arg}`: " in message, message
    assert "Expected" in message and allowed in message, message


def test_the_value_shown_is_the_one_given():
    # wa=inf was once reported as "Invalid `width`: -9223372036854775808".
    with pytest.raises(ValueError, match=r"Invalid `wa`: inf\."):
        _regnet(wa=math.inf)
    with pytest.raises(ValueError, match=r"Invalid `depth`: 1000000000\."):
        _regnet(depth=10**9)
