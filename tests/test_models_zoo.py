"""Built models against the paper's counts, the analytic counts and the seeds."""

import keras
import numpy as np
import pytest

import keras_regnet
from conftest import PAPER_ZOO, X200MF_EXACT
from keras_regnet import design


def trainable_params(model):
    return sum(int(np.prod(w.shape)) for w in model.trainable_weights)


def counted_from_layers(model):
    """flops and acts read off the built layers' shapes (paper conventions)."""
    flops = acts = 0
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):
            kh, kw, cin_per_group, cout = layer.kernel.shape
            h, w = layer.output.shape[1:3]
            flops += kh * kw * cin_per_group * cout * h * w + (cout if layer.use_bias else 0)
            acts += cout * h * w
        elif isinstance(layer, keras.layers.Dense):
            cin, cout = layer.kernel.shape
            flops += cin * cout + cout
            acts += cout
    return flops, acts


@pytest.mark.parametrize("name", sorted(PAPER_ZOO))
def test_zoo_model_params(name):
    keras.backend.clear_session()
    model = getattr(keras_regnet, name)(weights=None)
    analytic = keras_regnet.complexity(name)
    assert trainable_params(model) == analytic["params"]
    assert round(analytic["params"] / 1e6, 1) == pytest.approx(PAPER_ZOO[name][7], abs=0.051)
    if name in ("RegNetX002", "RegNetY016", "RegNetX032"):
        assert counted_from_layers(model) == (analytic["flops"], analytic["acts"])
    if name == "RegNetX002":
        assert counted_from_layers(model) == (X200MF_EXACT["flops"], X200MF_EXACT["acts"])
        assert trainable_params(model) == X200MF_EXACT["params"]


@pytest.mark.parametrize("seed", range(len(design.BLOCK_TYPES)))
def test_complexity_matches_built_model(seed):
    """Analytic counts equal counts taken from random built models, one per
    block type."""
    rng = np.random.default_rng(seed)
    size = int(rng.choice([32, 40, 64]))
    block = design.BLOCK_TYPES[seed]
    widths = sorted(int(rng.integers(1, 9)) * 8 for _ in range(3))
    spec = design.AnyNetSpec(
        depths=tuple(int(d) for d in rng.integers(1, 3, 3)),
        widths=tuple(widths), strides=(1, 2, 2),
        bottleneck_ratios={"z": 0.5, "res_basic": 1, "vanilla": 1}.get(block, 2),
        group_widths=4 if block in design.spec.BOTTLENECK_BLOCKS else 1,
        block_type=block, se_ratio={"y": 0.25, "z": 0.25, "v": 0.5}.get(block, 0.0),
        stem_type=["imagenet", "cifar"][seed % 2], stem_width=16,
        head_width=int(rng.choice([0, 64])), activation=["relu", "silu"][seed % 2],
        downsample=["conv", "avg"][seed // 3])
    keras.backend.clear_session()
    model = keras_regnet.AnyNet(spec, input_shape=(size, size, 3), classes=7)
    cx = keras_regnet.complexity(spec, input_size=size, classes=7)
    assert trainable_params(model) == cx["params"]
    assert counted_from_layers(model) == (cx["flops"], cx["acts"])


def test_d2l_regnetx32_layer_summary():
    """Seed 000: RegNetX32 on 96x96x1 -> 48x48x32, 24x24x32, 12x12x80, 10."""
    model = keras_regnet.AnyNet(depths=(4, 6), widths=(32, 80), group_widths=16,
                                input_shape=(96, 96, 1), classes=10)
    shapes = [model.get_layer(n).output.shape[1:]
              for n in ("stem_relu", "s1_b4_out", "s2_b6_out", "predictions")]
    assert shapes == [(48, 48, 32), (24, 24, 32), (12, 12, 80), (10,)]


def test_stable_layer_names_and_features():
    model = keras_regnet.RegNetY002(weights=None)
    assert model.name == "regnety002"
    names = {layer.name for layer in model.layers}
    assert {"rescaling", "stem_conv", "stem_bn", "stem_relu", "s1_b1_proj_conv",
            "s1_b1_a_conv", "s1_b1_b_conv", "s1_b1_se_reduce", "s1_b1_se_expand",
            "s1_b1_c_bn", "s1_b1_out", "s4_b7_out", "avg_pool", "predictions"} <= names
    assert isinstance(model.get_layer("s2_b1_b_conv"), keras_regnet.NativeConv2D)
    features = keras_regnet.feature_model(
        keras_regnet.RegNetY002(weights=None, include_top=False, input_shape=(64, 64, 3)))
    spec = design.zoo_spec("RegNetY002")
    assert [tuple(o.shape[1:]) for o in features.outputs] == [
        (64 // 4, 64 // 4, spec.widths[0]), (8, 8, spec.widths[1]),
        (4, 4, spec.widths[2]), (2, 2, spec.widths[3])]


@pytest.mark.parametrize("pooling, shape", [(None, (7, 7, 368)), ("avg", (368,)),
                                            ("max", (368,))])
def test_no_top_pooling(pooling, shape):
    model = keras_regnet.RegNetX002(weights=None, include_top=False, pooling=pooling,
                                    input_shape=(224, 224, 3))
    assert tuple(model.output.shape[1:]) == shape


def test_input_tensor_and_symmetric_padding():
    x = keras.Input((64, 64, 3))
    model = keras_regnet.RegNet(6, 16, 16.0, 2.0, 8, input_tensor=x, classes=5)
    assert model.inputs[0] is x and tuple(model.output.shape) == (None, 5)


@pytest.mark.parametrize("kwargs, arg", [
    (dict(pooling="min", include_top=False), "pooling"),
    (dict(input_shape=(16, 16, 3)), "input_shape"),
    (dict(input_shape=(224, 224)), "input_shape"),
    (dict(classes=0), "classes"),
    (dict(drop_path_rate=1.0), "drop_path_rate"),
    (dict(classifier_activation="softmaxx"), "classifier_activation"),
    (dict(weights="/nonexistent/regnet.weights.h5"), "weights"),
    (dict(weights="imagenet", classes=10), "classes"),
    (dict(weights="imagenet", classifier_activation="relu"), "classifier_activation"),
    (dict(weights="imagenet", input_shape=(224, 224, 1), include_top=False), "input_shape"),
])
def test_bad_input_fails_before_building(nothing_built, kwargs, arg):
    kwargs = {"weights": None, **kwargs}
    with pytest.raises(ValueError, match=f"`{arg}`"):
        keras_regnet.RegNetX002(**kwargs)


def test_bad_regnet_parameters_fail_before_building(nothing_built):
    with pytest.raises(ValueError, match="`wm`: 0.9"):
        keras_regnet.RegNet(13, 24, 36.44, 0.9, 8)
    with pytest.raises(ValueError, match="`block_type`"):
        keras_regnet.AnyNet(depths=(1,), widths=(8,), block_type="w")


class _Download(Exception):
    """Raised instead of downloading: the call got past all its checks."""


def _outcome(make):
    """How far a constructor call gets: `("ValueError", message)` or
    `("download", None)`."""
    try:
        make()
    except ValueError as e:
        return "ValueError", str(e)
    except _Download:
        return "download", None
    raise AssertionError("the weights were neither refused nor downloaded")


@pytest.mark.parametrize("include_top, input_shape", [
    (True, (299, 299, 3)), (True, (None, None, 3)), (True, (64, 64, 3)),
    (True, (224, 224, 3)), (False, (299, 299, 3)), (False, (None, None, 3)),
    (False, (224, 224, 1)),
])
def test_imagenet_input_shape_follows_keras_applications(
        include_top, input_shape, monkeypatch):
    from keras.src.utils import file_utils

    from keras_regnet.models import blocks

    def download(*args, **kwargs):
        raise _Download()
    monkeypatch.setattr(file_utils, "get_file", download)
    monkeypatch.setattr(keras_regnet.weights, "fetch", download)
    args = dict(weights="imagenet", include_top=include_top,
                input_shape=input_shape)
    keras.backend.clear_session()
    theirs, _ = _outcome(lambda: keras.applications.EfficientNetV2B0(**args))
    if theirs == "ValueError":  # then ours must refuse before building
        monkeypatch.setattr(blocks, "stem", download)
    ours, message = _outcome(lambda: keras_regnet.RegNetX002(**args))
    assert ours == theirs
    if ours == "ValueError" and include_top:
        assert message.startswith(f"Invalid `input_shape`: {input_shape}.")
        assert "(224, 224, 3)" in message and "include_top=False" in message
