"""Layers that Keras does not provide in the form RegNet needs."""

import keras
from keras import ops

from keras_regnet.design.checks import invalid
from keras_regnet.runtime import native_bf16_batch_norm_ok, native_grouped_conv_ok


@keras.saving.register_keras_serializable(package="keras_regnet")
class NativeConv2D(keras.layers.Conv2D):
    """`Conv2D` computed by TensorFlow's fastest correct ops.

    Same arguments, weights and outputs as `keras.layers.Conv2D`. On the
    TensorFlow backend, channels-last:

    - a grouped convolution calls `tf.nn.convolution` directly instead of
      Keras' XLA-compiled wrapper, when `native_grouped_conv_ok()`;
    - a strided 1x1 convolution (the shortcut projection) takes every
      stride-th pixel first (a 1x1 max pool) and then runs at stride 1: the
      same values, and it avoids a oneDNN fault of TensorFlow 2.21 (heap
      corruption in some strided 1x1 convolutions at odd batch sizes, seen
      on AVX-512/AMX CPUs);
    - in training, a 1x1 convolution without bias or activation is one
      `MatMul` over the channel axis, whose backward pass oneDNN computes
      1.5-2.5x faster than the convolution's in bfloat16 (in inference the
      convolution stays, for Grappler to fuse with BN and ReLU).

    Elsewhere it is exactly `Conv2D`.
    """

    def call(self, inputs, training=None):
        if not self._is_pointwise_nhwc():
            return super().call(inputs)
        import tensorflow as tf

        if self.strides != (1, 1):
            # A 1x1 max pool subsamples: every stride-th pixel, at the speed
            # of oneDNN's pooling (a strided slice halves bf16 inference).
            inputs = tf.nn.max_pool2d(inputs, 1, self.strides, "VALID")
        if (training and not self.use_bias
                and self.activation is keras.activations.linear):
            c_in, c_out = self.kernel.shape[-2:]
            outputs = tf.matmul(tf.reshape(inputs, [-1, c_in]),
                                tf.reshape(self.kernel, [c_in, c_out]))
            return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [c_out]], 0))
        outputs = tf.nn.conv2d(inputs, self.kernel, strides=1, padding="VALID")
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs)

    def _is_pointwise_nhwc(self):
        # For a 1x1 kernel "same" and "valid" give the same output size.
        return (keras.backend.backend() == "tensorflow"
                and self.data_format == "channels_last"
                and self.kernel_size == (1, 1)
                and self.dilation_rate == (1, 1) and self.groups == 1)

    def convolution_op(self, inputs, kernel):
        if (self.groups == 1 or self.data_format != "channels_last"
                or self.dilation_rate != (1, 1)
                or keras.backend.backend() != "tensorflow"):
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf

        padding = self.padding.upper()
        if native_grouped_conv_ok():
            return tf.nn.convolution(inputs, kernel, strides=list(self.strides),
                                     padding=padding, data_format="NHWC")
        return grouped_conv(inputs, kernel, self.strides, padding, self.groups)


def portable_formulation(group_width):
    """`grouped_conv`'s formulation for groups of `group_width` input
    channels: `"depthwise"` up to 4, `"split"` above (measured on a CPU
    without oneDNN by `bench/grouped_conv.py`)."""
    return "depthwise" if group_width <= 4 else "split"


def grouped_conv(inputs, kernel, strides, padding, groups, formulation=None):
    """A grouped NHWC convolution from TensorFlow ops with fast CPU kernels
    and gradients without oneDNN.

    Without oneDNN `tf.nn.convolution` has no grouped gradient on a CPU and
    Keras runs grouped convolutions through XLA, 10-100x slower to train.
    Here narrow groups (at most 4 input channels) are one depthwise
    convolution whose products are summed per group, wider ones one
    convolution per group: 16-70x faster to train than Keras' path, 1.2-3x
    slower than oneDNN's kernel (`python bench/grouped_conv.py`).

    Args:
        inputs: `(N, H, W, C_in)` tensor.
        kernel: `(kh, kw, C_in // groups, C_out)` tensor.
        strides: `(sh, sw)`.
        padding: `"SAME"` or `"VALID"`.
        groups: number of groups.
        formulation: `"depthwise"` or `"split"` (one conv per group);
            default: `portable_formulation` of the group width.
    """
    import tensorflow as tf

    kh, kw, g_in, c_out = kernel.shape
    g_out = c_out // groups
    strides = [1, *strides, 1]
    if (formulation or portable_formulation(g_in)) == "split":
        return tf.concat([tf.nn.conv2d(x, k, strides, padding) for x, k in zip(
            tf.split(inputs, groups, axis=-1), tf.split(kernel, groups, axis=-1))],
            axis=-1)
    # kernel[..., a, i * g_out + j] joins input a to output j of group i. A
    # depthwise kernel with multiplier g_out gives output (i * g_in + a) *
    # g_out + j: input a's share of that output, to be summed over a.
    depthwise = tf.reshape(
        tf.transpose(tf.reshape(kernel, (kh, kw, g_in, groups, g_out)), (0, 1, 3, 2, 4)),
        (kh, kw, groups * g_in, g_out))
    y = tf.nn.depthwise_conv2d(inputs, depthwise, strides, padding)
    if g_in == 1:
        return y
    shape = tf.shape(y)
    y = tf.reshape(y, tf.concat([shape[:3], [groups, g_in, g_out]], 0))
    return tf.reshape(tf.reduce_sum(y, axis=4), tf.concat([shape[:3], [c_out]], 0))


# Models saved by keras_regnet 0.1.0 name the layer by its former name.
keras.saving.get_custom_objects()["keras_regnet>GroupedConv2D"] = NativeConv2D


@keras.saving.register_keras_serializable(package="keras_regnet")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """`BatchNormalization` computed by TensorFlow's fused kernel.

    Same arguments, weights, outputs and moving-statistics updates as
    `keras.layers.BatchNormalization`, except that where it computes bfloat16
    inputs in float32 it returns float32. On the TensorFlow backend, for 4D
    channels-last float32 or bfloat16 inputs (no mask, renorm or
    synchronisation), it calls `FusedBatchNormV3`: one oneDNN kernel forward
    and one backward, which Grappler fuses with the preceding conv and the
    following ReLU in inference, instead of Keras' chain of moments and
    elementwise ops (about 1.4x faster training, 1.3x faster inference).
    Elsewhere it is exactly Keras' layer.
    """

    def call(self, inputs, training=None, mask=None):
        if (keras.backend.backend() != "tensorflow" or mask is not None
                or self.renorm or self.synchronized or len(inputs.shape) != 4
                or self.axis not in (-1, 3)
                or keras.backend.standardize_dtype(inputs.dtype)
                not in ("float32", "bfloat16")):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        channels = inputs.shape[-1]
        training = bool(training and self.trainable)
        # oneDNN's vectorised bf16 batch norm needs 16k channels; for others
        # its scalar kernel trains 3-6x slower than fp32. There the layer
        # computes and returns float32, so that a following `InputDtypeReLU`
        # fuses into the kernel; the next layer's autocast makes it bf16.
        # (In inference Grappler fuses the bf16 op into the convolution.)
        if inputs.dtype == tf.bfloat16 and (not native_bf16_batch_norm_ok()
                                            or training and channels % 16):
            inputs = tf.cast(inputs, tf.float32)
        gamma = tf.convert_to_tensor(self.gamma) if self.scale else tf.ones([channels])
        beta = tf.convert_to_tensor(self.beta) if self.center else tf.zeros([channels])
        if not training:
            return tf.raw_ops.FusedBatchNormV3(
                x=inputs, scale=gamma, offset=beta,
                mean=tf.convert_to_tensor(self.moving_mean),
                variance=tf.convert_to_tensor(self.moving_variance),
                epsilon=self.epsilon, data_format="NHWC",
                is_training=False)[0]
        empty = tf.constant([], tf.float32)
        outputs, mean, variance = tf.raw_ops.FusedBatchNormV3(
            x=inputs, scale=gamma, offset=beta, mean=empty, variance=empty,
            epsilon=self.epsilon, exponential_avg_factor=1.0,
            data_format="NHWC", is_training=True)[:3]
        # The op returns the unbiased batch variance; Keras averages the
        # biased one (the one it normalises with).
        n = tf.cast(tf.size(inputs) // channels, tf.float32)
        variance = variance * (tf.maximum(n - 1.0, 0.0) / n)
        m = self.momentum
        self.moving_mean.assign(self.moving_mean * m + mean * (1.0 - m))
        self.moving_variance.assign(self.moving_variance * m + variance * (1.0 - m))
        return outputs


@keras.saving.register_keras_serializable(package="keras_regnet")
class InputDtypeReLU(keras.layers.ReLU):
    """`ReLU` that computes in its input's dtype rather than autocasting.

    After a `FusedBatchNormalization` that computed in float32 under
    `mixed_bfloat16`, the ReLU stays in float32, TensorFlow fuses it into the
    batch norm kernel, and the next layer casts to bfloat16 (one memory pass
    less forward and a float32 gradient backward: +11% for RegNetX002's
    bf16 training step). Otherwise exactly `keras.layers.ReLU`.
    """

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)


@keras.saving.register_keras_serializable(package="keras_regnet")
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops a residual branch per sample while training.

    Args:
        rate: probability of dropping the branch.
    """

    def __init__(self, rate, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= rate < 1:
            raise invalid("rate", rate, "a number in [0, 1)")
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


def _batch_slices(n, parts):
    """`[(start, stop, first, last)]` for cutting `n` rows into `parts` slices.

    Slice `i` reads rows `start:stop` and owns rows `first:last` of them;
    the owned rows partition the batch as evenly as possible. A slice that
    would own no row (fewer rows than slices) reads one anyway, because
    TensorFlow's convolutions reject empty batches.
    """
    static = isinstance(n, int)
    low, high = (min, max) if static else (ops.minimum, ops.maximum)
    bounds = [i * n // parts for i in range(parts + 1)]
    slices = []
    for i in range(parts):
        start = low(bounds[i], n - 1)
        stop = high(bounds[i + 1], start + 1)
        slices.append((start, stop, bounds[i] - start, bounds[i + 1] - start))
    return slices


@keras.saving.register_keras_serializable(package="keras_regnet")
class BatchSplit(keras.layers.Layer):
    """Cuts the batch into `parts` slices of nearly equal size (see `BatchMerge`).

    The slices are independent, so TensorFlow runs the layers after them
    concurrently on its inter-op threads.
    """

    def __init__(self, parts, **kwargs):
        super().__init__(autocast=False, **kwargs)
        self.parts = parts

    def call(self, inputs):
        return [inputs[start:stop] for start, stop, _, _
                in _batch_slices(ops.shape(inputs)[0], self.parts)]

    def compute_output_spec(self, inputs):
        return [keras.KerasTensor((None, *inputs.shape[1:]), inputs.dtype)
                for _ in range(self.parts)]

    def get_config(self):
        return {**super().get_config(), "parts": self.parts}


@keras.saving.register_keras_serializable(package="keras_regnet")
class BatchMerge(keras.layers.Layer):
    """Joins the results of `BatchSplit`'s slices back into one batch.

    Called on `[batch, *slice_results]`; `batch` (the tensor that was split)
    gives the batch size. A row that two slices read (a batch smaller than
    the number of slices) is taken once.
    """

    def __init__(self, **kwargs):
        super().__init__(autocast=False, **kwargs)

    def call(self, inputs):
        batch, *results = inputs
        slices = _batch_slices(ops.shape(batch)[0], len(results))
        return ops.concatenate([result[first:last] for result, (_, _, first, last)
                                in zip(results, slices)], axis=0)

    def compute_output_spec(self, inputs):
        result = inputs[1]
        return keras.KerasTensor((None, *result.shape[1:]), result.dtype)
