"""Layers that Keras does not provide in the form RegNet needs."""

import keras
import numpy as np
from keras import ops

_NATIVE_GROUPED_CONV = None


def native_grouped_conv_ok():
    """Whether TensorFlow's own grouped conv is correct in this process.

    Keras sends every grouped convolution on the TensorFlow backend through
    an XLA-compiled function, because TensorFlow's CPU kernel is broken
    without oneDNN. With oneDNN (TensorFlow's default on x86) or on a GPU
    the plain op is correct and 36-57x faster to train. Decided once per
    process by comparing one small grouped conv against Keras' own path.
    """
    global _NATIVE_GROUPED_CONV
    if _NATIVE_GROUPED_CONV is None:
        _NATIVE_GROUPED_CONV = keras.backend.backend() == "tensorflow" and _probe()
    return _NATIVE_GROUPED_CONV


def _probe():
    import tensorflow as tf

    rng = np.random.default_rng(0)
    # The first call may come while a model is being traced: run eagerly.
    with tf.init_scope():
        x = tf.constant(rng.standard_normal((2, 9, 9, 8)), tf.float32)
        k = tf.constant(rng.standard_normal((3, 3, 2, 8)), tf.float32)
        try:
            native = tf.nn.convolution(x, k, strides=2, padding="SAME")
        except Exception:  # noqa: BLE001 - any failure means "not usable here"
            return False
        reference = ops.conv(x, k, strides=2, padding="same")
        return bool(np.allclose(native.numpy(), np.asarray(reference), atol=1e-4))


@keras.saving.register_keras_serializable(package="keras_regnet")
class GroupedConv2D(keras.layers.Conv2D):
    """`Conv2D` whose grouped convolution runs natively on TensorFlow.

    Same arguments, weights and outputs as `keras.layers.Conv2D`. On the
    TensorFlow backend, when `native_grouped_conv_ok()`, the convolution
    calls `tf.nn.convolution` directly instead of Keras' XLA-compiled
    wrapper; elsewhere it is exactly `Conv2D`.
    """

    def convolution_op(self, inputs, kernel):
        if (self.groups == 1 or self.data_format != "channels_last"
                or not native_grouped_conv_ok()):
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        return tf.nn.convolution(
            inputs,
            kernel,
            strides=list(self.strides),
            padding=self.padding.upper(),
            dilations=list(self.dilation_rate),
            data_format="NHWC",
        )


@keras.saving.register_keras_serializable(package="keras_regnet")
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops a residual branch per sample while training.

    Args:
        rate: probability of dropping the branch.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise ValueError(
                f"Invalid `rate`: {rate!r}. Expected a number in [0, 1).")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0:
            return inputs
        keep = 1.0 - self.rate
        shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        mask = keras.random.uniform(shape, seed=self.seed_generator,
                                    dtype=inputs.dtype) < keep
        return inputs * ops.cast(mask, inputs.dtype) / keep

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
