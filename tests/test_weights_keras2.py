"""Keras 2 (tf_keras) RegNet weights in our Keras 3 models."""

import numpy as np
import pytest

import keras_regnet
from keras_regnet.design.spec import se_width
from keras_regnet.design.zoo import MODEL_NAMES, zoo_spec
from keras_regnet.weights import imagenet, resolve

tf_keras = pytest.importorskip("tf_keras", reason="needs tf-keras (Keras 2)")
k2_regnet = pytest.importorskip("tf_keras.src.applications.regnet",
                                reason="needs tf-keras' RegNet")

SIZE = 64


def randomized_keras2(name, include_top, seed):
    """A tf_keras RegNet with random weights and BN statistics."""
    model = getattr(tf_keras.applications, name)(
        weights=None, include_top=include_top, input_shape=(SIZE, SIZE, 3))
    rng = np.random.default_rng(seed)
    for v in model.weights:
        n = v.name
        if "gamma" in n:
            v.assign(rng.uniform(0.3, 1.0, v.shape))
        elif "moving_variance" in n:
            v.assign(rng.uniform(0.5, 2.0, v.shape))
        elif "beta" in n or "moving_mean" in n or "bias" in n:
            v.assign(rng.normal(0.0, 0.1, v.shape))
    return model


@pytest.mark.parametrize("name", ["RegNetX002", "RegNetY002"])
@pytest.mark.parametrize("include_top", [True, False])
def test_keras2_file_loads_with_identical_outputs(name, include_top, tmp_path):
    ref = randomized_keras2(name, include_top, seed=len(name) + include_top)
    path = str(tmp_path / f"{name}.h5")
    ref.save_weights(path)
    plan = resolve(path, model_name=name, include_top=include_top)
    assert (plan.padding, plan.preprocessing) == ("same", "rescale")
    model = getattr(keras_regnet, name)(
        weights=path, include_top=include_top, input_shape=(SIZE, SIZE, 3),
        classifier_activation=None)
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    expected = ref(x, training=False).numpy()  # Keras 2 RegNet's top: logits
    got = np.asarray(model(x, training=False))
    assert got.shape == expected.shape
    assert expected.std() > 0.1  # a non-degenerate comparison
    assert np.abs(got - expected).max() <= 1e-4


def test_keras2_file_of_another_size_names_the_first_misfit(tmp_path):
    path = str(tmp_path / "x002.h5")
    randomized_keras2("RegNetX002", False, seed=0).save_weights(path)
    with pytest.raises(ValueError) as e:
        keras_regnet.RegNetX004(weights=path, include_top=False,
                                input_shape=(SIZE, SIZE, 3))
    message = str(e.value)
    assert "regnetx002_Stage_0_XBlock_0_conv_1x1_1" in message
    assert "s1_b1_a_conv" in message
    assert "widths (24, 56, 152, 368)" in message  # the file's layout
    assert "widths (32, 64, 160, 384)" in message  # the model's layout


def test_imagenet_registry_matches_keras2():
    for name in MODEL_NAMES:
        key = name.lower().removeprefix("regnet")
        for include_top, sha in zip((True, False), k2_regnet.WEIGHTS_HASHES[key]):
            fname = f"regnet{key}{'' if include_top else '_notop'}.h5"
            assert imagenet.imagenet_file(name, include_top) == (
                fname, k2_regnet.BASE_WEIGHTS_PATH + fname, sha)


def test_every_keras2_regnet_has_our_layout():
    # Keras 2 builds groups = width // group_width (0 -> 1 group) and SE
    # width int(0.25 * w_in); the ImageNet files fit only if these agree.
    for name in MODEL_NAMES:
        cfg = k2_regnet.MODEL_CONFIGS[name.lower().removeprefix("regnet")]
        spec = zoo_spec(name)
        assert list(spec.depths) == cfg["depths"], name
        assert list(spec.widths) == cfg["widths"], name
        assert spec.block_type == cfg["block_type"].lower(), name
        for _, _, w_in, w_out, _, _, g in spec.blocks():
            assert max(1, w_out // cfg["group_width"]) == w_out // g, name
            if spec.se_ratio:
                assert int(w_in * 0.25) == se_width(w_in, spec.se_ratio), name


def test_native_keras3_weights_round_trip(tmp_path):
    model = keras_regnet.RegNetY002(weights=None, input_shape=(SIZE, SIZE, 3))
    path = str(tmp_path / "y002.weights.h5")
    model.save_weights(path)
    plan = resolve(path, model_name="RegNetY002")
    assert (plan.kind, plan.padding, plan.preprocessing) == ("native", "same", "rescale")
    again = keras_regnet.RegNetY002(weights=path, input_shape=(SIZE, SIZE, 3))
    x = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")
    np.testing.assert_allclose(np.asarray(again(x)), np.asarray(model(x)), atol=1e-6)


@pytest.fixture(scope="module")
def keras2_top_file(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("k2") / "x002.h5")
    randomized_keras2("RegNetX002", True, seed=0).save_weights(path)
    return path


@pytest.mark.parametrize("kwargs, words", [
    (dict(weights="imagenet", model_name="RegNetX002", classes=10),
     ["`classes`", "10", "1000", "include_top=False"]),
    (dict(weights="imagenet", model_name=None), ["`weights`", "'imagenet'", "RegNetY320"]),
    (dict(weights=3), ["`weights`", "3", "'imagenet'"]),
    (dict(weights="imagenett"), ["`weights`", "'imagenett'", "does not exist"]),
    (dict(weights="/no/such/file.h5"), ["`weights`", "/no/such/file.h5", "does not exist"]),
])
def test_bad_weights_arguments(kwargs, words):
    with pytest.raises(ValueError) as e:
        resolve(**kwargs)
    for word in words:
        assert word in str(e.value)


def test_file_top_must_match_classes(keras2_top_file):
    with pytest.raises(ValueError, match=r"`classes`: 10\. The top of .* has 1000"):
        resolve(keras2_top_file, classes=10)
    assert resolve(keras2_top_file, include_top=False, classes=10).channels == 3


def test_notop_file_cannot_give_a_top(tmp_path):
    path = str(tmp_path / "x002_notop.h5")
    randomized_keras2("RegNetX002", False, seed=0).save_weights(path)
    with pytest.raises(ValueError, match="`include_top`.*no classification top"):
        resolve(path, include_top=True)


def test_unknown_file_format(tmp_path):
    path = tmp_path / "notes.h5"
    path.write_text("not weights")
    with pytest.raises(ValueError, match="not a weights file"):
        resolve(str(path))
