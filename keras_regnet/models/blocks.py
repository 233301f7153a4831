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
    """

    padding: str = "same"
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-5
    zero_init_last_bn: bool = False

    @property
    def channel_axis(self):
        return -1 if keras.config.image_data_format() == "channels_last" else 1


def conv_init():
    """He initialisation over fan-out, as in the reference implementation.

    A new initializer per layer: one drawn at import would give every
    kernel of a shape the same values (its seed is fixed when it is made)
    and escape `keras.utils.set_random_seed`."""
    return keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal")


def conv_bn(x, filters, kernel_size, opts, name, stride=1, groups=1,
            relu=True, last=False):
    """Conv (no bias) + BN (+ ReLU), named `{name}_conv`, `_bn`, `_relu`."""
    padding = "same"
    if kernel_size > 1 and stride > 1 and opts.padding == "symmetric":
        x = layers.ZeroPadding2D(kernel_size // 2, name=f"{name}_pad")(x)
        padding = "valid"
    x = NativeConv2D(filters, kernel_size, strides=stride, padding=padding,
                     groups=groups, use_bias=False,
                     kernel_initializer=conv_init(), name=f"{name}_conv")(x)
    x = FusedBatchNormalization(
        axis=opts.channel_axis, momentum=opts.bn_momentum,
        epsilon=opts.bn_epsilon,
        gamma_initializer="zeros" if last and opts.zero_init_last_bn else "ones",
        name=f"{name}_bn")(x)
    if relu:
        x = InputDtypeReLU(name=f"{name}_relu")(x)
    return x


def stem(x, spec, opts):
    return conv_bn(x, spec.stem_width, 3, opts, "stem",
                   stride=spec.stem_stride)


def squeeze_excite(x, w_b, w_se, name):
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Conv2D(w_se, 1, kernel_initializer=conv_init(),
                      name=f"{name}_se_reduce")(s)
    s = layers.ReLU(name=f"{name}_se_relu")(s)
    s = layers.Conv2D(w_b, 1, kernel_initializer=conv_init(),
                      name=f"{name}_se_expand")(s)
    s = layers.Activation("sigmoid", name=f"{name}_se_sigmoid")(s)
    return layers.Multiply(name=f"{name}_se_scale")([x, s])


def projection(x, w_in, w_out, stride, opts, name):
    if w_in == w_out and stride == 1:
        return x
    return conv_bn(x, w_out, 1, opts, f"{name}_proj", stride=stride, relu=False)


def residual(shortcut, branch, drop_rate, name):
    if drop_rate:
        branch = DropPath(drop_rate, name=f"{name}_drop_path")(branch)
    x = layers.Add(name=f"{name}_add")([shortcut, branch])
    return layers.ReLU(name=f"{name}_out")(x)


def x_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name, drop_rate=0.0):
    """X block: 1x1, grouped 3x3, 1x1 with a residual; Y block if `se_ratio`."""
    shortcut = projection(x, w_in, w_out, stride, opts, name)
    w_b = bottleneck_width(w_out, b)
    y = conv_bn(x, w_b, 1, opts, f"{name}_a")
    y = conv_bn(y, w_b, 3, opts, f"{name}_b", stride=stride, groups=w_b // g)
    if se_ratio:
        y = squeeze_excite(y, w_b, se_width(w_in, se_ratio), name)
    y = conv_bn(y, w_out, 1, opts, f"{name}_c", relu=False, last=True)
    return residual(shortcut, y, drop_rate, name)


def res_basic_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
                    drop_rate=0.0):
    """ResNet basic block: two 3x3 convs with a residual."""
    shortcut = projection(x, w_in, w_out, stride, opts, name)
    y = conv_bn(x, w_out, 3, opts, f"{name}_a", stride=stride)
    y = conv_bn(y, w_out, 3, opts, f"{name}_b", relu=False, last=True)
    return residual(shortcut, y, drop_rate, name)


def vanilla_block(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
                  drop_rate=0.0):
    """Plain block: two 3x3 convs, no residual (so no stochastic depth)."""
    y = conv_bn(x, w_out, 3, opts, f"{name}_a", stride=stride)
    y = conv_bn(y, w_out, 3, opts, f"{name}_b", relu=False)
    return layers.ReLU(name=f"{name}_out")(y)


# Block type -> its builder, the twin of `keras_regnet.design.complexity.BLOCKS`;
# every builder takes `(x, w_in, w_out, stride, b, g, se_ratio, opts, name,
# drop_rate)`, the blocks that have no bottleneck or SE ignoring b, g, se_ratio.
BLOCKS = {"x": x_block, "y": x_block, "res_basic": res_basic_block,
          "vanilla": vanilla_block}


def head(x, spec, opts, include_top, pooling, classes, classifier_activation):
    if spec.head_width:
        x = conv_bn(x, spec.head_width, 1, opts, "head")
    if include_top:
        x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
        # Outputs stay float32 under mixed precision.
        dtype = "float32" if keras.config.dtype_policy().name.startswith("mixed") else None
        return layers.Dense(classes, activation=classifier_activation,
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
                            dtype=dtype, name="predictions")(x)
    if pooling == "avg":
        return layers.GlobalAveragePooling2D(name="avg_pool")(x)
    if pooling == "max":
        return layers.GlobalMaxPooling2D(name="max_pool")(x)
    return x
