"""Deployment as keras.applications users do it (issue 22): the SavedModel
that `model.export` writes, converted to TFLite by TensorFlow's converter and
to ONNX by tf2onnx, gives the Keras model's outputs, for every block type."""

import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_regnet
from conftest import random_images, randomize_bn

# One small network of each block type (with its options), 40 px: odd maps.
SPECS = {
    "x": dict(block_type="x"),
    "y": dict(block_type="y", se_ratio=0.25),
    "z": dict(block_type="z", se_ratio=0.25, bottleneck_ratios=0.25, activation="silu",
              head_width=96),
    "v": dict(block_type="v", se_ratio=0.25, activation="silu", downsample="avg"),
    "res_basic": dict(block_type="res_basic"),
    "vanilla": dict(block_type="vanilla"),
}
SIZE = 40


def _model(block):
    keras.utils.set_random_seed(0)
    model = keras_regnet.AnyNet(depths=(1, 2, 1), widths=(16, 32, 64), group_widths=8,
                                input_shape=(SIZE, SIZE, 3), classes=5,
                                classifier_activation=None, **SPECS[block])
    randomize_bn(model)
    return model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """block -> (Keras model, its SavedModel folder)."""
    out = {}
    for block in SPECS:
        model = _model(block)
        path = str(tmp_path_factory.mktemp(block) / "saved_model")
        model.export(path, verbose=False)
        out[block] = model, path
    return out


@pytest.mark.parametrize("block", list(SPECS))
def test_tflite_equals_keras(exported, block):
    import tensorflow as tf

    model, path = exported[block]
    flatbuffer = tf.lite.TFLiteConverter.from_saved_model(path).convert()
    interpreter = tf.lite.Interpreter(model_content=flatbuffer)
    interpreter.allocate_tensors()
    x = random_images(1, (SIZE, SIZE, 3), seed=1)
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)


# The ResNet and plain blocks' ops are the X block's.
@pytest.mark.parametrize("block", ["x", "y", "z", "v"])
def test_onnx_equals_keras(exported, tmp_path, block):
    import onnxruntime  # the deploy extra (in the test extra), as tf2onnx

    model, path = exported[block]
    onnx = str(tmp_path / "model.onnx")
    done = subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", path,
                           "--output", onnx, "--opset", "17"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    session = onnxruntime.InferenceSession(onnx, providers=["CPUExecutionProvider"])
    x = random_images(2, (SIZE, SIZE, 3), seed=2)
    got = session.run(None, {session.get_inputs()[0].name: x})[0]
    np.testing.assert_allclose(got, model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)
