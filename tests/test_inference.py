"""Inference export: BN folded into convs, fp32 and bf16, Keras and SavedModel.

The reference is always the unfolded training-graph model itself, run with
`training=False`, after giving every BN layer non-trivial statistics.
"""

import os

import keras
import numpy as np
import pytest

from conftest import random_images, randomize_bn
from keras_regnet import AnyNet, AnyNetSpec
from keras_regnet.models import inference

# Small X and Y models: projection shortcuts, grouped convs, SE, two stages.
SPECS = {
    "x": AnyNetSpec(depths=(1, 2), widths=(16, 32), group_widths=(8, 8)),
    "y": AnyNetSpec(depths=(1, 2), widths=(16, 32), group_widths=(8, 16),
                    block_type="y", se_ratio=0.25),
}


def _model(block, **kwargs):
    model = AnyNet(SPECS[block], input_shape=(48, 48, 3), classes=10,
                   classifier_activation=None, **kwargs)
    rng = randomize_bn(model, seed=1)
    dense = model.get_layer("predictions")
    dense.set_weights([rng.normal(0, 1, dense.kernel.shape), rng.normal(0, 1, 10)])
    return model


def _images(n=4, size=48, seed=0):
    return random_images(n, (size, size, 3), seed)


@pytest.mark.parametrize("block", ["x", "y"])
def test_fp32_folded_model_matches_training_graph(block):
    model = _model(block)
    folded = inference.inference_model(model)
    x = _images()
    ref = np.asarray(model(x, training=False))
    out = np.asarray(folded(x))
    assert np.abs(ref).max() > 1.0  # logits are not trivially small
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-4)
    assert not any(isinstance(l, keras.layers.BatchNormalization) for l in folded.layers)
    assert not any(isinstance(l, keras.layers.Rescaling) for l in folded.layers)
    convs = [l.name for l in model.layers if isinstance(l, keras.layers.Conv2D)]
    assert [l.name for l in folded.layers if isinstance(l, keras.layers.Conv2D)] == convs
    # Folding must not touch the source model.
    np.testing.assert_array_equal(np.asarray(model(x, training=False)), ref)


@pytest.mark.parametrize("splits", [2, 3])
def test_batch_slices_give_every_row_once(tmp_path, splits):
    import tensorflow as tf

    model = _model("y")
    folded = inference.inference_model(model, batch_splits=splits)
    assert [type(l).__name__ for l in folded.layers].count("BatchSplit") == 1
    path = str(tmp_path / "folded.keras")
    folded.save(path)
    reloaded = keras.saving.load_model(path)
    # Uneven slices, and repeated rows where n < splits; a traced function
    # (unknown batch size, as in the SavedModel) computes them as tensors.
    serve = tf.function(reloaded, input_signature=[tf.TensorSpec((None, 48, 48, 3))])
    for n in range(1, 8):
        x = _images(n=n, seed=n)
        ref = np.asarray(model(x, training=False))
        for out in (folded(x), serve(tf.constant(x))):
            np.testing.assert_allclose(np.asarray(out), ref, rtol=1e-5, atol=1e-4)


def _hand_model(normalize):
    """Rescaling [+ Normalization], then PyTorch-style padded conv-BN-ReLUs."""
    from keras_regnet.models import blocks

    opts = blocks.BuildOptions(padding="symmetric")
    inputs = keras.Input((33, 33, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    if normalize:
        x = keras.layers.Normalization(mean=[0.4, 0.5, 0.6], variance=[0.1, 0.2, 0.3])(x)
    x = blocks.conv_bn(x, 16, 3, opts, "stem", stride=2)
    x = blocks.conv_bn(x, 16, 3, opts, "b", stride=2, groups=2)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(5)(x))
    randomize_bn(model, seed=4)
    return model


@pytest.mark.parametrize("normalize", [False, True])
def test_symmetric_padding_and_preprocessing(normalize):
    model = _hand_model(normalize)
    folded = inference.inference_model(model)
    x = _images(size=33, seed=2)
    np.testing.assert_allclose(np.asarray(folded(x)),
                               np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-4)
    kinds = {type(l).__name__ for l in folded.layers}
    assert "ZeroPadding2D" in kinds
    # A pure scaling folds into the stem conv; one followed by a
    # normalisation does not (its offset would leak through the padding).
    assert ("Rescaling" in kinds) == normalize


def test_drop_path_is_dropped():
    model = _model("x", drop_path_rate=0.2)
    folded = inference.inference_model(model)
    assert any(l.name.endswith("drop_path") for l in model.layers)
    assert not any(l.name.endswith("drop_path") for l in folded.layers)
    x = _images(seed=5)
    np.testing.assert_allclose(np.asarray(folded(x)),
                               np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-4)


def test_bf16_folded_model_is_close_and_bf16():
    model = _model("y")
    folded = inference.inference_model(model, dtype="bfloat16", batch_splits=2)
    x = _images(n=8)
    ref = np.asarray(model(x, training=False))
    out = folded(x)
    assert keras.backend.standardize_dtype(out.dtype) == "float32"
    kernels = [l.kernel for l in folded.layers if isinstance(l, keras.layers.Conv2D)]
    assert kernels and all(keras.backend.standardize_dtype(k.dtype) == "bfloat16"
                           for k in kernels)
    err = np.abs(np.asarray(out) - ref).max() / np.abs(ref).max()
    assert err < 0.05, err


def test_savedmodel_export_round_trip(tmp_path):
    import tensorflow as tf

    model = _model("y")
    path = str(tmp_path / "folded")
    inference.export_inference(model, path)
    (tmp_path / "folded" / "stale.txt").write_text("old")
    inference.export_inference(model, path, batch_splits=2)  # replaces ours
    assert not os.path.exists(os.path.join(path, "stale.txt"))
    assert sorted(os.listdir(tmp_path)) == ["folded"]  # no temporary left
    loaded = tf.saved_model.load(path)
    x = _images(n=5, seed=3)  # uneven halves
    np.testing.assert_allclose(np.asarray(loaded.serve(tf.constant(x))),
                               np.asarray(model(x, training=False)),
                               rtol=1e-5, atol=1e-4)


def test_bad_input():
    with pytest.raises(ValueError, match="dtype"):
        inference.inference_model(_model("x"), dtype="float16")
    with pytest.raises(ValueError, match="model"):
        inference.inference_model("RegNetX002")
    for splits in (0, 2.0, True, None):
        with pytest.raises(ValueError, match="batch_splits"):
            inference.inference_model(_model("x"), batch_splits=splits)


def test_export_to_missing_folder_is_refused(tmp_path):
    with pytest.raises(ValueError, match="filepath"):
        inference.export_inference(_model("x"), str(tmp_path / "no" / "such"))
