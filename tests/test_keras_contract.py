"""Keras' own applications tests (shipped in the keras wheel), run against our
constructors: the keras.applications contract, in both image data formats,
on whatever machine runs the suite."""

import ast
import io
import os
import subprocess
import sys
import unittest

import keras
import numpy as np

import keras_regnet
from keras_regnet.models.anynet import feature_model

# (constructor, channels of the last feature map, module with
# preprocess_input/decode_predictions), as in Keras' MODEL_LIST.
OUR_MODELS = [(keras_regnet.RegNetY002, 368, keras_regnet),
              (keras_regnet.RegNetZ005, 1024, keras_regnet)]
# Downloads an image and the ImageNet weights; the weights are tested offline
# in test_weights_keras2.py.
NEEDS_NETWORK = "test_application_base"


def _keras_applications_tests():
    path = os.path.join(os.path.dirname(keras.__file__), "src", "applications",
                        "applications_test.py")
    tree = ast.parse(open(path).read(), path)
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                getattr(t, "id", None) == "MODEL_LIST" for t in node.targets):
            node.value = ast.Name("OUR_MODELS", ast.Load())
            break
    else:
        raise AssertionError(f"{path} has no MODEL_LIST to replace")
    namespace = {"__name__": "keras_applications_test", "OUR_MODELS": OUR_MODELS}
    exec(compile(ast.fix_missing_locations(tree), path, "exec"), namespace)
    return namespace["ApplicationsTest"]


def test_keras_applications_suite_passes_in_both_data_formats():
    case = _keras_applications_tests()
    names = [n for n in unittest.TestLoader().getTestCaseNames(case)
             if not n.startswith(NEEDS_NETWORK)]
    suite = unittest.TestSuite(case(n) for n in names)
    out = io.StringIO()
    result = unittest.TextTestRunner(stream=out, verbosity=2).run(suite)
    assert result.wasSuccessful(), out.getvalue()
    assert not result.skipped, result.skipped
    # 5 tests x 2 models x 2 data formats, all run.
    assert result.testsRun == len(names) == 5 * len(OUR_MODELS) * 2
    assert keras.config.image_data_format() == "channels_last"


def test_channels_first_model_runs_and_equals_channels_last():
    """A channels_first model computes channels-last inside, so it runs on
    any backend and device, with the same weights and results."""
    keras.utils.set_random_seed(0)
    last = keras_regnet.RegNetY002(weights=None, include_top=False,
                                   input_shape=(48, 48, 3))
    keras.config.set_image_data_format("channels_first")
    try:
        first = keras_regnet.RegNetY002(weights=None, include_top=False,
                                        input_shape=(3, 48, 48))
        first_features = feature_model(first)
    finally:
        keras.config.set_image_data_format("channels_last")
    first.set_weights(last.get_weights())
    x = np.random.default_rng(0).uniform(0, 255, (2, 48, 48, 3)).astype("float32")
    nchw = x.transpose(0, 3, 1, 2)
    numpy = keras.ops.convert_to_numpy
    np.testing.assert_allclose(numpy(first(nchw)),
                               numpy(last(x)).transpose(0, 3, 1, 2), atol=1e-5)
    expected = [numpy(f).transpose(0, 3, 1, 2) for f in feature_model(last)(x)]
    got = [numpy(f) for f in first_features(nchw)]
    assert [g.shape[1] for g in got] == [24, 56, 152, 368]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=1e-5)


def test_channels_first_from_the_start_of_a_program(tmp_path):
    """A program that sets channels_first before anything else builds, runs
    and trains a model (the runtime probes, too, run in that setting)."""
    code = """
import keras
keras.config.set_image_data_format("channels_first")
import numpy as np
import keras_regnet
model = keras_regnet.RegNetY002(weights=None, input_shape=(3, 32, 32), classes=3)
model.compile("sgd", "sparse_categorical_crossentropy")
x = np.random.default_rng(0).uniform(0, 255, (4, 3, 32, 32))
model.fit(x, np.arange(4) % 3, epochs=1, verbose=0)
print(model.predict(x, verbose=0).shape)
"""
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "(4, 3)"
