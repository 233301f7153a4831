"""Runtime behaviour of the built models: grouped conv, backends, saving,
training and the training options (issue 2)."""

import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_regnet
from keras_regnet.models import blocks
from keras_regnet import runtime
from keras_regnet.models import layers as regnet_layers

from _backend_check import conv_inputs, conv_results
from conftest import random_images, randomize_bn, run_python

HELPER = os.path.join(os.path.dirname(__file__), "_backend_check.py")
# A 4-block RegNet whose stages have 2, 4 and 8 groups in the 3x3 conv.
SMALL = dict(depth=4, w0=16, wa=16, wm=2.0, group_width=8, stem_type="cifar",
             input_shape=(32, 32, 3), classes=10)


@pytest.fixture(autouse=True)
def _fresh_session():
    yield
    keras.backend.clear_session()


@contextlib.contextmanager
def _policy(name):
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _images(n, seed=0):
    return random_images(n, SMALL["input_shape"], seed)


def _randomize(model, seed=0):
    """Random BN (see `randomize_bn`) and a classifier large enough that the
    outputs differ across images."""
    rng = randomize_bn(model, seed)
    head = model.get_layer("predictions")
    head.kernel.assign(rng.normal(0, 0.3, head.kernel.shape).astype("float32"))


def _assert_close(actual, desired, rel=1e-5):
    """Close to `rel` of the largest magnitude in `desired`."""
    np.testing.assert_allclose(
        actual, desired, rtol=rel, atol=rel * float(np.max(np.abs(desired))))


def _assert_conv_results_close(actual, desired, rel=1e-5):
    for i in desired:
        for what, a, d in zip(("output", "d/dinput", "d/dkernel"),
                              actual[i], desired[i]):
            try:
                _assert_close(a, d, rel)
            except AssertionError as e:
                raise AssertionError(f"case {i}, {what}: {e}") from None


# --- NativeConv2D ------------------------------------------------------------

def test_grouped_conv_matches_keras_conv_on_tensorflow():
    arrays = conv_inputs()
    _assert_conv_results_close(
        conv_results(keras_regnet.NativeConv2D, arrays),
        conv_results(keras.layers.Conv2D, arrays))


def _refuse_keras_grouped_conv(monkeypatch):
    """Makes Keras' own (XLA-compiled) grouped conv raise."""
    import keras.src.backend.tensorflow.nn as keras_tf_nn
    import keras.src.ops.nn as keras_ops_nn

    # Conv2D calls ops.conv, which dispatches through this module's conv.
    assert keras_ops_nn.backend.nn is keras_tf_nn
    keras_conv = keras_tf_nn.conv

    def conv_refusing_groups(inputs, kernel, *args, **kwargs):
        if inputs.shape[-1] != kernel.shape[-2]:
            raise RuntimeError("Keras' grouped conv was called")
        return keras_conv(inputs, kernel, *args, **kwargs)

    monkeypatch.setattr(keras_tf_nn, "conv", conv_refusing_groups)


def test_grouped_conv_path_follows_the_machine(monkeypatch):
    """Native where TensorFlow's op is correct (oneDNN on, or a GPU), the
    portable formulation otherwise; never Keras' XLA path."""
    native = runtime.onednn_enabled() or bool(tf.config.list_physical_devices("GPU"))
    assert runtime.native_grouped_conv_ok() is native
    assert runtime.grouped_conv_path() == ("native" if native else "portable")
    arrays = conv_inputs()
    reference = conv_results(keras.layers.Conv2D, arrays)
    _refuse_keras_grouped_conv(monkeypatch)
    with pytest.raises(RuntimeError, match="grouped conv was called"):
        conv_results(keras.layers.Conv2D, arrays)
    _assert_conv_results_close(
        conv_results(keras_regnet.NativeConv2D, arrays), reference)
    # A whole model, traced by fit(), trains without Keras' grouped conv.
    model = keras_regnet.RegNet(**SMALL)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    history = model.fit(_images(8), np.arange(8), batch_size=4, epochs=1,
                        verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parametrize("native", [True, False])
def test_native_and_portable_grouped_convs_match_keras(monkeypatch, native):
    if native and not runtime.native_grouped_conv_ok():
        pytest.skip("TensorFlow's grouped conv has no gradient here (oneDNN "
                    "off); test_grouped_conv_without_onednn covers this machine")
    monkeypatch.setitem(runtime._PROBES,
                        runtime._compare_with_keras_conv, native)
    arrays = conv_inputs()
    _assert_conv_results_close(conv_results(keras_regnet.NativeConv2D, arrays),
                               conv_results(keras.layers.Conv2D, arrays))


@pytest.mark.parametrize("c_in,c_out,groups,stride,padding", [
    (8, 16, 8, 1, "SAME"),   # depthwise, multiplier 2
    (12, 24, 3, 2, "SAME"),  # 4 inputs per group: depthwise and a sum
    (16, 16, 4, 2, "VALID"),
    (40, 40, 4, 2, "SAME"),  # 10 inputs per group: one conv per group
    (48, 24, 2, 1, "SAME"),
])
def test_portable_grouped_conv_formulations(c_in, c_out, groups, stride, padding):
    rng = np.random.default_rng(1)
    x = tf.constant(rng.standard_normal((2, 9, 10, c_in)), tf.float32)
    k = tf.constant(rng.standard_normal((3, 3, c_in // groups, c_out)), tf.float32)
    cot = None

    def forward_and_grads(conv):
        nonlocal cot
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            y = conv()
            if cot is None:
                cot = tf.constant(rng.standard_normal(y.shape), tf.float32)
            loss = tf.reduce_sum(y * cot)
        return [y, *tape.gradient(loss, [x, k])]

    reference = forward_and_grads(lambda: keras.ops.conv(
        x, k, strides=stride, padding=padding.lower()))
    ours = forward_and_grads(lambda: regnet_layers.grouped_conv(
        x, k, (stride, stride), padding, groups))
    for a, b in zip(ours, reference):
        _assert_close(np.asarray(a), np.asarray(b))


def test_pointwise_conv_is_one_matmul_in_training():
    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 5, 6, 8)), tf.float32)
    cotangent = tf.constant(rng.standard_normal((2, 5, 6, 12)), tf.float32)
    ours = keras_regnet.NativeConv2D(12, 1, use_bias=False)
    reference = keras.layers.Conv2D(12, 1, use_bias=False)
    for layer in (ours, reference):
        layer.build(x.shape)
    reference.kernel.assign(ours.kernel)

    def forward_and_grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * cotangent)
        return [layer(x, training=True), *tape.gradient(loss, [x, layer.kernel])]

    for a, b in zip(forward_and_grads(ours), forward_and_grads(reference)):
        _assert_close(np.asarray(a), np.asarray(b))
    spec = tf.TensorSpec((None, 5, 6, 8))
    graphs = {training: tf.function(lambda x, t=training: ours(x, training=t))
              .get_concrete_function(spec).graph for training in (True, False)}
    ops = {t: {op.type for op in g.get_operations()} for t, g in graphs.items()}
    assert "MatMul" in ops[True] and "Conv2D" not in ops[True]
    assert "Conv2D" in ops[False]  # Grappler fuses it with BN and ReLU
    assert graphs[True].outputs[0].shape.as_list() == [None, 5, 6, 12]


@pytest.mark.parametrize("size, padding, use_bias", [
    (5, "same", False), (6, "valid", True), (7, "valid", False), (8, "same", True)])
@pytest.mark.parametrize("training", [True, False])
def test_strided_pointwise_conv_matches_keras(size, padding, use_bias, training):
    """The shortcut projection samples every other pixel, then convolves at
    stride 1: Conv2D's outputs and gradients, odd and even sizes alike."""
    rng = np.random.default_rng(size)
    x = tf.constant(rng.standard_normal((3, size, size + 1, 8)), tf.float32)
    ours = keras_regnet.NativeConv2D(16, 1, strides=2, padding=padding, use_bias=use_bias)
    reference = keras.layers.Conv2D(16, 1, strides=2, padding=padding, use_bias=use_bias)
    for layer in (ours, reference):
        layer.build(x.shape)
    reference.set_weights([rng.standard_normal(w.shape) for w in ours.get_weights()])
    ours.set_weights(reference.get_weights())

    def forward_and_grads(layer):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=training)
            loss = tf.reduce_sum(y * y)
        return [y, *tape.gradient(loss, [x, *layer.trainable_weights])]

    for a, b in zip(forward_and_grads(ours), forward_and_grads(reference)):
        assert a.shape == b.shape
        _assert_close(np.asarray(a), np.asarray(b))


def test_odd_batches_train_and_infer_with_onednn():
    """TensorFlow 2.21's oneDNN corrupted the heap (abort) in the shortcut's
    strided 1x1 convolution of this model at odd batch sizes on AVX-512/AMX
    CPUs; with oneDNN forced, training, inference and the export now run."""
    code = textwrap.dedent("""
        import keras, numpy as np
        import keras_regnet
        from keras_regnet.design.spec import AnyNetSpec
        from keras_regnet.models.inference import inference_model
        from keras_regnet.runtime import onednn_enabled

        assert onednn_enabled()
        spec = AnyNetSpec(depths=(1, 1), widths=(8, 16), strides=(2, 2),
                          bottleneck_ratios=(2, 2), group_widths=(4, 8),
                          stem_type="cifar", stem_width=32, block_type="x")
        model = keras_regnet.AnyNet(spec, input_shape=(32, 32, 1), classes=10)
        model.compile(keras.optimizers.SGD(0.1, momentum=0.9),
                      "sparse_categorical_crossentropy")
        rng = np.random.default_rng(0)
        for n in (3, 1, 29):
            x = rng.random((n, 32, 32, 1)).astype("float32") * 255
            model.fit(x, rng.integers(0, 10, n), batch_size=n, epochs=2, verbose=0)
            y = np.asarray(model(x, training=False))
            z = np.asarray(inference_model(model)(x))
            assert np.allclose(y, z, atol=1e-4), abs(y - z).max()
        print("ok")
    """)
    assert run_python(["-c", code], TF_ENABLE_ONEDNN_OPTS="1").stdout.endswith("ok\n")


# --- FusedBatchNormalization -------------------------------------------------

def _batch_norm_results(cls, x, cotangent, weights):
    """Per mode (inference, training): gradients w.r.t. x, gamma and beta and
    the inference output after the step; and the weights at the end."""
    layer = cls(momentum=0.9, epsilon=1e-5)
    layer.build(x.shape)
    layer.set_weights(weights)
    per_mode = []
    for training in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x, training=training)
            loss = tf.reduce_sum(tf.cast(out, tf.float32) * cotangent)
        grads = tape.gradient(loss, [x] + layer.trainable_variables)
        per_mode.append([np.asarray(tf.cast(t, tf.float32)) for t in grads] + [
            np.asarray(tf.cast(layer(x, training=False), tf.float32))])
    return per_mode, [np.asarray(w) for w in layer.get_weights()], out.dtype


def check_batch_norm_matches_keras(policy, channels, native_bf16):
    """`native_bf16`: whether oneDNN's bf16 batch norm is expected to run."""
    rng = np.random.default_rng(0)
    x = tf.constant(rng.normal(1.0, 3.0, (4, 7, 7, channels)).astype("float32"))
    cotangent = tf.constant(rng.normal(size=x.shape).astype("float32"))
    weights = [rng.uniform(0.5, 2, channels), rng.normal(size=channels),
               rng.normal(size=channels), rng.uniform(0.5, 2, channels)]
    with _policy(policy):
        x = tf.cast(x, keras.config.dtype_policy().compute_dtype)
        (ref_modes, ref_weights, ref_dtype), (modes, weights_after, dtype) = [
            _batch_norm_results(cls, x, cotangent, weights) for cls in
            (keras.layers.BatchNormalization, regnet_layers.FusedBatchNormalization)]
    assert ref_dtype == x.dtype
    assert runtime.native_bf16_batch_norm_ok() == native_bf16
    in_float32 = x.dtype == tf.bfloat16 and (channels % 16 or not native_bf16)
    assert dtype == (tf.float32 if in_float32 else x.dtype)
    rel = 1e-5 if policy == "float32" else 1e-2  # bf16 keeps 8 bits
    for ref, got in zip(ref_modes, modes):
        for a, b in zip(ref, got):
            _assert_close(b, a, rel)
    for a, b in zip(ref_weights, weights_after):  # moving statistics
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("policy,channels", [
    ("float32", 16), ("mixed_bfloat16", 16), ("mixed_bfloat16", 24)])
@pytest.mark.parametrize("native_bf16", [False, True])
def test_fused_batch_norm_matches_keras_batch_norm(monkeypatch, policy,
                                                   channels, native_bf16):
    # The float32 fallback runs anywhere; TensorFlow's bf16 kernel only where
    # the probe found it (oneDNN without AVX-512 has none).
    if native_bf16 and not runtime.native_bf16_batch_norm_ok():
        pytest.skip("no bfloat16 fused batch norm on this CPU; the float32 "
                    "fallback case covers it")
    monkeypatch.setitem(runtime._PROBES,
                        runtime._run_bf16_batch_norm, native_bf16)
    check_batch_norm_matches_keras(policy, channels, native_bf16)


@pytest.mark.parametrize("native,channels,dtype", [
    (True, 16, "bfloat16"), (True, 24, "float32"), (False, 16, "float32")])
def test_bf16_batch_norm_trains_in_fp32_unless_16k_channels(
        monkeypatch, native, channels, dtype):
    monkeypatch.setitem(runtime._PROBES,
                        runtime._run_bf16_batch_norm, native)
    with _policy("mixed_bfloat16"):
        layer = regnet_layers.FusedBatchNormalization()
    spec = tf.TensorSpec((None, 7, 7, channels), tf.bfloat16)
    graph = tf.function(lambda x: layer(x, training=True)).get_concrete_function(
        spec).graph
    norms = [op for op in graph.get_operations() if op.type == "FusedBatchNormV3"]
    assert [op.get_attr("T").name for op in norms] == [dtype]


def test_relu_after_a_float32_batch_norm_stays_float32(tmp_path, monkeypatch):
    """`conv_bn`'s ReLU takes the BN output uncast (so TensorFlow fuses the
    two), also in a reloaded model."""
    monkeypatch.setitem(runtime._PROBES,
                        runtime._run_bf16_batch_norm, True)
    with _policy("mixed_bfloat16"):
        inputs = keras.Input((8, 8, 3))
        x = blocks.conv_bn(inputs, 24, 3, blocks.BuildOptions(), "a")
        x = blocks.conv_bn(x, 32, 1, blocks.BuildOptions(), "b")
        model = keras.Model(inputs, keras.layers.Conv2D(4, 1)(x))
    path = str(tmp_path / "relu.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    for m in (model, loaded):
        graph = tf.function(lambda x, m=m: m(x, training=True)).get_concrete_function(
            tf.TensorSpec((2, 8, 8, 3))).graph
        relus = [op for op in graph.get_operations() if op.type == "Relu"]
        assert [(op.inputs[0].op.type, op.get_attr("T").name) for op in relus] == [
            ("FusedBatchNormV3", "float32"), ("FusedBatchNormV3", "bfloat16")]
        assert graph.outputs[0].dtype == tf.bfloat16


def test_models_use_the_fused_kernel_on_tensorflow():
    model = keras_regnet.RegNet(**SMALL)
    step = tf.function(lambda x: model(x, training=True))
    ops = {op.type for op in step.get_concrete_function(
        tf.TensorSpec((2, 32, 32, 3))).graph.get_operations()}
    assert "FusedBatchNormV3" in ops
    assert "SquaredDifference" not in ops  # Keras' moments chain


# --- JAX and torch backends -------------------------------------------------

_CROSS_MODEL = dict(SMALL, se_ratio=0.25, drop_path_rate=0.1,
                    classifier_activation=None)


@pytest.fixture(scope="module", params=["jax", "torch"])
def other_backend(request, tmp_path_factory):
    """TensorFlow results, and the same computations run in a subprocess on
    the JAX or torch backend (weights saved by TensorFlow)."""
    backend = request.param
    if importlib.util.find_spec(backend) is None:
        pytest.skip(f"{backend} is not installed; the {backend} backend "
                    "tests need it (pip install -e '.[test]').")
    tmp = tmp_path_factory.mktemp(backend)
    model = keras_regnet.RegNet(**_CROSS_MODEL)
    _randomize(model)
    weights = str(tmp / "small.weights.h5")
    model.save_weights(weights)
    arrays = conv_inputs()
    arrays["images"] = _images(6)
    np.savez(tmp / "in.npz", **arrays)
    tf_results = {
        "model_out": model.predict(arrays["images"], verbose=0),
        "conv": conv_results(keras.layers.Conv2D, arrays),
    }
    keras.backend.clear_session()

    env = {"KERAS_BACKEND": backend}
    if backend == "jax":
        # JAX compiles one XLA program per weight shape just to initialise
        # the model; unoptimised compilation halves the time.
        env["XLA_FLAGS"] = " ".join(filter(None, [
            os.environ.get("XLA_FLAGS"), "--xla_backend_optimization_level=0"]))
    model_kwargs = dict(_CROSS_MODEL, input_shape=list(SMALL["input_shape"]))
    run_python([HELPER, str(tmp / "in.npz"), str(tmp / "out.npz"), weights,
                json.dumps(model_kwargs)], timeout=400, **env)
    out = dict(np.load(tmp / "out.npz"))
    assert str(out["backend"]) == backend
    for prefix in ("grouped", "keras"):
        out[prefix] = {i: tuple(out[f"{i}_{prefix}_{k}"]
                                for k in ("out", "dx", "dkernel"))
                       for i in tf_results["conv"]}
    return tf_results, out


def test_grouped_conv_matches_keras_conv_on_other_backends(other_backend):
    tf_results, out = other_backend
    _assert_conv_results_close(out["grouped"], out["keras"])
    # And both agree with TensorFlow's computation of the same case.
    _assert_conv_results_close(out["grouped"], tf_results["conv"])


def test_forward_pass_matches_tensorflow_on_other_backends(other_backend):
    tf_results, out = other_backend
    expected = tf_results["model_out"]
    # Non-trivial outputs: they differ across images and classes.
    assert np.std(expected, axis=0).min() > 1e-3
    np.testing.assert_allclose(out["model_out"], expected, atol=1e-4, rtol=0)


# --- Saving -----------------------------------------------------------------

@pytest.mark.parametrize("se_ratio", [0.0, 0.25], ids=["X", "Y"])
def test_keras_file_round_trip(tmp_path, se_ratio):
    model = keras_regnet.RegNet(**SMALL, se_ratio=se_ratio,
                                drop_path_rate=0.2, classifier_activation=None,
                                name="small")
    _randomize(model)
    images = _images(4)
    expected = model.predict(images, verbose=0)
    path = str(tmp_path / "small.keras")
    model.save(path)
    keras.backend.clear_session()

    loaded = keras.models.load_model(path)
    assert loaded.name == "small"
    rates = {l.name: l.rate for l in model.layers
             if isinstance(l, keras_regnet.DropPath)}
    assert rates and rates == {l.name: l.rate for l in loaded.layers
                               if isinstance(l, keras_regnet.DropPath)}
    assert isinstance(loaded.get_layer("s1_b1_b_conv"),
                      keras_regnet.NativeConv2D)
    assert any(l.name == "s1_b1_se_reduce" for l in loaded.layers) == bool(se_ratio)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), expected,
                               atol=1e-5, rtol=0)


def test_load_model_in_a_fresh_process(tmp_path):
    """`keras_regnet.load_model` registers the package's layers itself:
    a process that built nothing loads the file and computes the same."""
    model = keras_regnet.RegNet(**SMALL, se_ratio=0.25, classifier_activation=None)
    _randomize(model)
    path, images = str(tmp_path / "m.keras"), str(tmp_path / "images.npy")
    model.save(path)
    np.save(images, _images(2))
    proc = run_python(["-c", textwrap.dedent("""
        import sys
        import numpy as np
        import keras_regnet
        model = keras_regnet.load_model(sys.argv[1])
        np.save(sys.argv[2], model.predict(np.load(sys.argv[2]), verbose=0))
        print(type(model.get_layer("s1_b1_b_conv")).__name__)
        """), path, images])
    assert proc.stdout.split() == ["NativeConv2D"]
    np.testing.assert_allclose(np.load(images), model.predict(_images(2), verbose=0),
                               atol=1e-5, rtol=0)


def test_files_saved_with_the_former_conv_name_load():
    config = keras.saving.serialize_keras_object(
        keras_regnet.NativeConv2D(4, 3, groups=2, name="b_conv"))
    config.update(class_name="GroupedConv2D",
                  registered_name="keras_regnet>GroupedConv2D")
    layer = keras.saving.deserialize_keras_object(config)
    assert type(layer) is keras_regnet.NativeConv2D and layer.groups == 2


@pytest.mark.parametrize("se_ratio", [0.0, 0.25], ids=["X", "Y"])
def test_saved_model_export_round_trip(tmp_path, se_ratio):
    model = keras_regnet.RegNet(**SMALL, se_ratio=se_ratio,
                                drop_path_rate=0.2, classifier_activation=None)
    _randomize(model)
    images = _images(4)
    expected = model.predict(images, verbose=0)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)

    reloaded = tf.saved_model.load(path)
    np.testing.assert_allclose(reloaded.serve(tf.constant(images)).numpy(),
                               expected, atol=1e-5, rtol=0)


# --- Training ---------------------------------------------------------------

def test_training_on_digits_beats_chance():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    # 8x8 images in [0, 16] -> 16x16x1 in [0, 255], the model's input range.
    x = np.kron(digits.images, np.ones((2, 2)))[..., None] * (255 / 16)
    x_train, x_val, y_train, y_val = train_test_split(
        x.astype("float32"), digits.target, test_size=0.25, random_state=0,
        stratify=digits.target)
    keras.utils.set_random_seed(0)
    model = keras_regnet.RegNet(**dict(SMALL, input_shape=(16, 16, 1)))
    model.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=4, verbose=0)
    _, accuracy = model.evaluate(x_val, y_val, verbose=0)
    # Chance is 0.1; measured about 0.97.
    assert accuracy >= 0.9, f"validation accuracy {accuracy:.3f}"


# --- Training options -------------------------------------------------------

def test_drop_path_is_stochastic_in_training_only():
    images = _images(8)
    model = keras_regnet.RegNet(**SMALL, drop_path_rate=0.5,
                                classifier_activation=None)
    blocks = [l.name[:-len("_out")] for l in model.layers
              if l.name.endswith("_out")]
    # Linearly increasing over the blocks, 0 (so no layer) for the first.
    expected = dict(zip(blocks, np.linspace(0, 0.5, len(blocks))))
    rates = {l.name[:-len("_drop_path")]: l.rate for l in model.layers
             if isinstance(l, keras_regnet.DropPath)}
    assert rates.keys() == {b for b, r in expected.items() if r > 0}
    for block, rate in rates.items():
        assert rate == pytest.approx(expected[block])

    train_1 = model(images, training=True).numpy()
    train_2 = model(images, training=True).numpy()
    assert not np.allclose(train_1, train_2)
    infer_1 = model(images, training=False).numpy()
    np.testing.assert_array_equal(model(images, training=False).numpy(), infer_1)

    # Control: without drop path, training-mode outputs are reproducible.
    plain = keras_regnet.RegNet(**SMALL, classifier_activation=None)
    np.testing.assert_allclose(plain(images, training=True).numpy(),
                               plain(images, training=True).numpy(), atol=1e-6)


def test_drop_path_drops_whole_samples():
    layer = keras_regnet.DropPath(0.3, seed=1)
    x = np.ones((4000, 2, 2, 3), "float32")
    y = keras.ops.convert_to_numpy(layer(x, training=True))
    per_sample = y.reshape(len(y), -1)
    kept = per_sample[:, 0] > 0
    np.testing.assert_allclose(per_sample[kept], 1 / 0.7, rtol=1e-6)
    np.testing.assert_array_equal(per_sample[~kept], 0)
    assert abs((~kept).mean() - 0.3) < 0.03  # about 4 standard deviations
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(layer(x, training=False)), x)


def test_zero_init_last_bn():
    model = keras_regnet.RegNet(**SMALL, zero_init_last_bn=True)
    bns = [l for l in model.layers
           if isinstance(l, keras.layers.BatchNormalization)]
    last = [l for l in bns if l.name.endswith("_c_bn")]
    assert len(last) == len([l for l in model.layers if l.name.endswith("_out")])
    for layer in bns:
        gamma = keras.ops.convert_to_numpy(layer.gamma)
        np.testing.assert_array_equal(gamma, 0 if layer in last else 1,
                                      err_msg=layer.name)
    # So a block without projection starts as the identity: s3_b2 here.
    features = keras.Model(model.inputs, [model.get_layer("s3_b1_out").output,
                                          model.get_layer("s3_b2_out").output])
    block_in, block_out = features.predict(_images(2), verbose=0)
    np.testing.assert_array_equal(block_out, block_in)

    resnet = keras_regnet.AnyNet(
        depths=(1, 2), widths=(16, 32), block_type="res_basic",
        stem_type="cifar", input_shape=(16, 16, 3), classes=10,
        zero_init_last_bn=True)
    for layer in resnet.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma = keras.ops.convert_to_numpy(layer.gamma)
            is_last = layer.name.endswith("_b_bn") and layer.name.startswith("s")
            np.testing.assert_array_equal(gamma, 0 if is_last else 1,
                                          err_msg=layer.name)


def test_batch_norm_momentum_and_epsilon():
    model = keras_regnet.RegNet(**SMALL, se_ratio=0.25)
    bns = [l for l in model.layers
           if isinstance(l, keras.layers.BatchNormalization)]
    assert len(bns) > 10
    for layer in bns:
        assert (layer.momentum, layer.epsilon) == (0.9, 1e-5), layer.name

    # One training step moves the statistics 10% of the way to the batch's.
    images = _images(8)
    conv = keras.Model(model.inputs, model.get_layer("stem_conv").output)
    activations = conv.predict(images, verbose=0)
    model(images, training=True)
    stem_bn = model.get_layer("stem_bn")
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stem_bn.moving_mean),
        0.1 * activations.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(stem_bn.moving_variance),
        0.9 + 0.1 * activations.var(axis=(0, 1, 2)), rtol=1e-4)


@pytest.mark.parametrize("activation", ["softmax", None])
def test_classifier_activation_is_applied(activation):
    model = keras_regnet.RegNet(**SMALL, classifier_activation=activation)
    images = _images(4)
    head = model.get_layer("predictions")
    # Logits well away from uniform, so that softmax visibly changes them.
    head.kernel.assign(np.random.default_rng(0).normal(
        0, 0.3, head.kernel.shape).astype("float32"))
    pooled = keras.Model(model.inputs, model.get_layer("avg_pool").output)
    kernel, bias = head.get_weights()
    logits = pooled.predict(images, verbose=0) @ kernel + bias
    outputs = model.predict(images, verbose=0)
    if activation == "softmax":
        np.testing.assert_allclose(outputs.sum(axis=-1), 1, rtol=1e-6)
        probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
        np.testing.assert_allclose(
            outputs, probs / probs.sum(axis=-1, keepdims=True), atol=1e-6)
    else:
        np.testing.assert_allclose(outputs, logits, atol=1e-5, rtol=1e-5)
        assert not np.allclose(outputs.sum(axis=-1), 1)


def test_model_name_is_kept():
    assert keras_regnet.RegNet(**SMALL, name="tiny").name == "tiny"
    assert keras_regnet.AnyNet(depths=(1,), widths=(16,), group_widths=8,
                               stem_type="cifar", input_shape=(16, 16, 3),
                               classes=10).name == "anynet"


def test_grouped_conv_without_onednn_is_portable_and_says_so():
    """With oneDNN off, TensorFlow's grouped conv has no gradient on a CPU:
    the portable formulation trains, Keras' XLA path is never taken, and one
    warning names the fix."""
    script = textwrap.dedent("""
        import warnings
        import numpy as np
        import keras_regnet
        import keras.src.backend.tensorflow.nn as keras_tf_nn
        from keras_regnet import runtime
        keras_conv = keras_tf_nn.conv

        def conv(inputs, kernel, *args, **kwargs):
            if inputs.shape[-1] != kernel.shape[-2]:
                raise RuntimeError("Keras' grouped conv was called")
            return keras_conv(inputs, kernel, *args, **kwargs)

        keras_tf_nn.conv = conv
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            for _ in range(2):
                m = keras_regnet.RegNet(2, 16, 16.0, 2.0, 8, stem_type="cifar",
                                        input_shape=(16, 16, 3), classes=3)
        m.compile("sgd", "sparse_categorical_crossentropy")
        h = m.fit(np.random.rand(8, 16, 16, 3), np.arange(8) % 3, epochs=1,
                  verbose=0)
        assert np.isfinite(h.history["loss"][0])
        ours = [w for w in caught if "TF_ENABLE_ONEDNN_OPTS=1" in str(w.message)]
        print("warnings", len(ours), "path", runtime.grouped_conv_path(),
              "onednn", runtime.onednn_enabled())
        """)
    out = run_python(["-c", script], TF_ENABLE_ONEDNN_OPTS="0",
                     KERAS_BACKEND="tensorflow")
    assert "warnings 1 path portable onednn False" in out.stdout


def test_importing_keras_regnet_first_turns_onednn_on():
    """What a user gets who sets nothing: oneDNN on any x86 CPU, and with it
    the native grouped conv; a user's own setting wins."""
    script = ("import keras_regnet, keras, platform\n"
              "from keras_regnet import runtime\n"
              "print(platform.machine(), runtime.onednn_enabled(),"
              " runtime.grouped_conv_path())\n")
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, text=True,
                          capture_output=True, timeout=300)
    machine, onednn, path = proc.stdout.split()
    if machine.lower() in ("x86_64", "amd64"):
        assert (onednn, path) == ("True", "native"), proc.stderr[-2000:]
    out = run_python(["-c", script], TF_ENABLE_ONEDNN_OPTS="0")
    assert out.stdout.split()[1:] == ["False", "portable"]


@pytest.mark.parametrize("setting, onednn, cause, fix", [
    (None, False, "TensorFlow was imported before keras_regnet", "set TF_ENABLE_ONEDNN_OPTS=1 before"),
    ("1", False, "TF_ENABLE_ONEDNN_OPTS=1 was set after TensorFlow had been imported",
     "set TF_ENABLE_ONEDNN_OPTS=1 before"),
    ("0", False, "(TF_ENABLE_ONEDNN_OPTS=0)", "set TF_ENABLE_ONEDNN_OPTS=1 instead"),
    ("1", True, "oneDNN is on, but TensorFlow's grouped convolution did not match", None),
])
def test_slow_path_warning_names_the_cause_and_a_fix_that_applies(monkeypatch, setting,
                                                                  onednn, cause, fix):
    if setting is None:
        monkeypatch.delenv("TF_ENABLE_ONEDNN_OPTS", raising=False)
    else:
        monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", setting)
    monkeypatch.setattr(runtime, "onednn_enabled", lambda: onednn)
    message = runtime.slow_path_message()
    assert cause in message, message
    if fix:
        assert fix in message, message
    else:
        assert "For full speed" not in message, message


def test_every_kernel_is_drawn_on_its_own_and_seeded_builds_repeat():
    """One initializer made at import gave every kernel of a shape the same
    values, whatever the seed."""
    keras.utils.set_random_seed(1)
    model = keras_regnet.RegNetX002(weights=None, input_shape=(32, 32, 3), classes=10)
    a, b = (model.get_layer(f"s3_b{i}_a_conv").kernel.numpy() for i in (2, 3))
    assert a.shape == b.shape and abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.1
    keras.utils.set_random_seed(1)
    again = keras_regnet.RegNetX002(weights=None, input_shape=(32, 32, 3), classes=10)
    for v, w in zip(model.weights, again.weights):
        np.testing.assert_array_equal(v.numpy(), w.numpy(), err_msg=v.path)
