"""Keras builders of the AnyNet stem, blocks and head.

Each builder mirrors the complexity function of the same name in
`keras_regnet.design.complexity`; change both together. Builders take and
return symbolic tensors; layer names are stable (see README).
"""

import dataclasses

import keras
from keras import layers

from keras_regnet.design.spec import bottleneck_width, se_width
from keras_regnet.models.layers import (DropPath, FusedBatchNormalization,
                                        InputDtypeReLU, NativeConv2D)


@dataclasses.dataclass(frozen=True)
class BuildOptions:
    """How layers are made, independent of the network's shape.

    Args:
        padding: `"same"` (Keras' convention, used by the Keras 2 weights)
            or `"symmetric"` (PyTorch's `k // 2` on each side, used by the
            pycls, torchvision and timm weights). They differ only for
            strided convs on even-sized inputs.
        bn_momentum: BatchNormalization momentum (0.9 is the paper's 0.1).
        bn_epsilon: BatchNormalization epsilon.
        zero_init_last_bn: initialise the last BN gamma of each residual
            branch to zero, so that every block starts as the identity.
        activation: `"relu"` or `"silu"` (`AnyNetSpec.activation`).
        downsample: `"conv"` or `"avg"` (`AnyNetSpec.downsample`).
    """

    padding: str = "same"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    zero_init_last_bn: bool = False
    activation: str = "relu"
    downsample: str = "conv"


# The builders compute channels-last whatever `keras.config.image_data_format()`
# says (TensorFlow has no channels-first convolution on a CPU); a channels-first
# model transposes at its edges (`keras_regnet.models.anynet`).
DATA_FORMAT = "channels_last"
CHANNEL_AXIS = -1


def conv_init():
    """He initialisation over fan-out, as in the reference implementation.

    A new initializer per layer: one drawn at import would give every
    kernel of a shape the same values (its seed is fixed when it is made)
    and escape `keras.utils.set_random_seed`."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


# Activation name -> the layer after a BN; it computes in its input's dtype
# (see `InputDtypeReLU`).
ACTIVATION_LAYERS = {
    "relu": InputDtypeReLU,
    "silu": lambda name: layers.Activation("silu", autocast=False, name=name),
}


# Activation name -> the plain layer (in the SE, after a residual's add).
PLAIN_ACTIVATIONS = {"relu": layers.ReLU,
                     "silu": lambda name: layers.Activation("silu", name=name)}


def activate(x, opts, name):
    """The activation of `opts`, named `{name}_relu` or `{name}_silu`."""
    return ACTIVATION_LAYERS[opts.activation](name=f"{name}_{opts.activation}")(x)


def conv(x, filters, kernel_size, opts, name, stride=1, groups=1):
    """Conv (no bias), named `{name}_conv`."""
    padding = "same"
    if kernel_size > 1 and stride > 1 and opts.padding == "symmetric":
        x = layers.ZeroPadding2D(kernel_size // 2, data_format=DATA_FORMAT,
                                 name=f"{name}_pad")(x)
        padding = "valid"
    return NativeConv2D(filters, kernel_size, strides=stride, padding=padding,
                        groups=groups, use_bias=False, data_format=DATA_FORMAT,
                        kernel_initializer=conv_init(), name=f"{name}_conv")(x)


def batch_norm(x, opts, name, last=False):
    """BN named `{name}_bn`; `last`: the last of a residual branch."""
    return FusedBatchNormalization(
        axis=CHANNEL_AXIS, momentum=opts.bn_momentum,
        epsilon=opts.bn_epsilon,
        gamma_initializer="zeros" if last and opts.zero_init_last_bn else "ones",
        name=f"{name}_bn")(x)


def conv_bn(x, filters, kernel_size, opts, name, stride=1, groups=1,
            act=True, last=False):
    """Conv (no bias) + BN (+ the activation), named `{name}_conv`, `_bn`,
    `_relu` or `_silu`."""
    x = conv(x, filters, kernel_size, opts, name, stride, groups)
    x = batch_norm(x, opts, name, last)
    return activate(x, opts, name) if act else x


def stem(x, spec, opts):
    if spec.preactivation:  # the first block normalises and activates
        return conv(x, spec.stem_width, 3, opts, "stem", stride=spec.stem_stride)
    return conv_bn(x, spec.stem_width, 3, opts, "stem",
                   stride=spec.stem_stride)


def squeeze_excite(x, w_b, w_se, opts, name):
    s = layers.GlobalAveragePooling2D(keepdims=True, data_format=DATA_FORMAT,
                                      name=f"{name}_se_pool")(x)
    s = layers.Conv2D(w_se, 1, kernel_initializer=conv_init(),
                      data_format=DATA_FORMAT, name=f"{name}_se_reduce")(s)
    s = PLAIN_ACTIVATIONS[opts.activation](name=f"{name}_se_{opts.activation}")(s)
    s = layers.Conv2D(w_b, 1, kernel_initializer=conv_init(),
                      data_format=DATA_FORMAT, name=f"{name}_se_expand")(s)
    s = layers.Activation("sigmoid", name=f"{name}_se_sigmoid")(s)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def projection(x, w_in, w_out, stride, opts, name, bn=True):
    """The shortcut: `x`, or where the shapes change a strided 1x1 conv
    (`downsample="avg"`: a 2x2 average pool, then a 1x1 conv) and its BN."""
    if w_in == w_out and stride == 1:
        return x
    if opts.downsample == "avg" and stride > 1:
        # TensorFlow's "same" average pool leaves the padding out of the mean,
        # as PyTorch's ceil_mode with count_include_pad=False does.
        x = layers.AveragePooling2D(2, 2, padding="same", data_format=DATA_FORMAT,
                                    name=f"{name}_proj_pool")(x)
        stride = 1
    if not bn:
        return conv(x, w_out, 1, opts, f"{name}_proj", stride=stride)
    return conv_bn(x, w_out, 1, opts, f"{name}_proj", stride=stride, act=False)


def residual(shortcut, branch, drop_rate, name, opts=None):
    """`shortcut + branch` (`branch` dropped per sample at `drop_rate`),
    then the activation of `opts`, or none; the output is `{name}_out`."""
    if drop_rate:
        branch = DropPath(drop_rate, name=f"{name}_drop_path")(branch)
    x = layers.Add(name=f"{name}_add")([shortcut, branch])
    if opts is None:
        return layers.Identity(name=f"{name}_out")(x)
    return PLAIN_ACTIVATIONS[opts.activation](name=f"{name}_out")(x)


def bottleneck(x, w_in, w_out, stride, b, g, se_ratio, opts, name):
    """1x1, grouped 3x3, SE (if `se_ratio`), 1x1 without activation."""
    w_b = bottleneck_width(w_out, b)
    y = conv_bn(x, w_b, 1, opts, f"{name}_a")
    y = conv_bn(y, w_b, 3, opts, f"{name}_b", stride=stride, groups=w_b // g)
    if se_ratio:
        y = squeeze_excite(y, w_b, se_width(w_in, se_ratio), opts, name)
    return conv_bn(y, w_out, 1, opts, f"{name}_c", act=False, last=True)


def x_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name, drop_rate=0.0):
    """X block: 1x1, grouped 3x3, 1x1 with a residual; Y block if `se_ratio`."""
    shortcut = projection(x, w_in, w_out, stride, opts, name)
    y = bottleneck(x, w_in, w_out, stride, b, g, se_ratio, opts, name)
    return residual(shortcut, y, drop_rate, name, opts)


def z_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name, drop_rate=0.0):
    """Z block (RegNetZ): the X block's branch, inverted by b < 1, with no
    activation at its end; the identity is added where the shapes match,
    and nothing elsewhere."""
    y = bottleneck(x, w_in, w_out, stride, b, g, se_ratio, opts, name)
    if w_in == w_out and stride == 1:
        return residual(x, y, drop_rate, name)
    return layers.Identity(name=f"{name}_out")(y)


def v_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name, drop_rate=0.0):
    """V block (RegNetV): the X/Y block with BN and activation before each
    conv; the shortcut (a 1x1 conv without BN where the shapes change)
    starts after the first BN and activation."""
    x = activate(batch_norm(x, opts, f"{name}_a"), opts, f"{name}_a")
    shortcut = projection(x, w_in, w_out, stride, opts, name, bn=False)
    w_b = bottleneck_width(w_out, b)
    y = conv(x, w_b, 1, opts, f"{name}_a")
    y = activate(batch_norm(y, opts, f"{name}_b"), opts, f"{name}_b")
    y = conv(y, w_b, 3, opts, f"{name}_b", stride=stride, groups=w_b // g)
    if se_ratio:
        y = squeeze_excite(y, w_b, se_width(w_in, se_ratio), opts, name)
    y = activate(batch_norm(y, opts, f"{name}_c"), opts, f"{name}_c")
    y = conv(y, w_out, 1, opts, f"{name}_c")
    return residual(shortcut, y, drop_rate, name)


def res_basic_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
                    drop_rate=0.0):
    """ResNet basic block: two 3x3 convs with a residual."""
    shortcut = projection(x, w_in, w_out, stride, opts, name)
    y = conv_bn(x, w_out, 3, opts, f"{name}_a", stride=stride)
    y = conv_bn(y, w_out, 3, opts, f"{name}_b", act=False, last=True)
    return residual(shortcut, y, drop_rate, name, opts)


def vanilla_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
                  drop_rate=0.0):
    """Plain block: two 3x3 convs, no residual (so no stochastic depth)."""
    y = conv_bn(x, w_out, 3, opts, f"{name}_a", stride=stride)
    y = conv_bn(y, w_out, 3, opts, f"{name}_b", act=False)
    return PLAIN_ACTIVATIONS[opts.activation](name=f"{name}_out")(y)


# Block type -> its builder, the twin of `keras_regnet.design.complexity.BLOCKS`;
# every builder takes `(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
# drop_rate)`, the blocks that have no bottleneck or SE ignoring b, g, se_ratio.
BLOCKS = {"x": x_block, "y": x_block, "z": z_block, "v": v_block,
          "res_basic": res_basic_block, "vanilla": vanilla_block}


def head(x, spec, opts, include_top, pooling, classes, classifier_activation):
    if spec.head_width:
        x = conv_bn(x, spec.head_width, 1, opts, "head")
    elif spec.final_activation:
        x = activate(x, opts, "final")
    if include_top:
        x = layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="avg_pool")(x)
        # Outputs stay float32 under mixed precision.
        dtype = "float32" if keras.config.dtype_policy().name.startswith("mixed") else None
        return layers.Dense(classes, activation=classifier_activation,
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                            dtype=dtype, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(data_format=DATA_FORMAT, name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(data_format=DATA_FORMAT, name="max_pool")(x)
    return x
