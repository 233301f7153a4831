"""AnyNet: a Keras Functional model for any `AnyNetSpec`."""

import math
import numbers
import re

import keras
from keras import layers

from keras_regnet import weights as weights_lib
from keras_regnet.runtime import native_grouped_conv_ok
from keras_regnet.design.checks import (check, check_choice, check_int, check_real,
                                        invalid, is_real)
from keras_regnet.design.spec import (BOTTLENECK_BLOCKS, MAX_CLASSES, MAX_INPUT_SIZE,
                                      MIN_INPUT_SIZES, AnyNetSpec, bottleneck_width)
from keras_regnet.models import blocks

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
POOLINGS = (None, "avg", "max")
PADDINGS = ("same", "symmetric")
DATA_FORMATS = ("channels_last", "channels_first")
# A channels-first model computes channels-last (see `blocks.DATA_FORMAT`)
# after this transpose of its input.
TO_CHANNELS_LAST = "to_channels_last"


def _input_shape(input_shape, include_top, min_size, required_channels, default_size,
                 channels_last):
    if input_shape is None:
        size = default_size if include_top else None
        channels = required_channels or 3
        input_shape = (size, size, channels) if channels_last else (channels, size, size)
    input_shape = tuple(input_shape)
    if len(input_shape) != 3:
        raise ValueError(
            f"Invalid `input_shape`: {input_shape}. Expected 3 dimensions "
            "(height, width, channels).")
    for v in input_shape:
        check(v is None or (isinstance(v, numbers.Integral) and not isinstance(v, bool)
                             and 1 <= v <= MAX_INPUT_SIZE), "input_shape",
               input_shape, f"None or integers in [1, {MAX_INPUT_SIZE}]")
    spatial = input_shape[:2] if channels_last else input_shape[1:]
    channels = input_shape[2] if channels_last else input_shape[0]
    if any(s is not None and s < min_size for s in spatial):
        raise ValueError(
            f"Invalid `input_shape`: {input_shape}. Height and width must be "
            f">= {min_size} for this model (its stem and total stride).")
    if channels is None or channels < 1 or (
            required_channels and channels != required_channels):
        allowed = (f"{required_channels} channels for these weights"
                   if required_channels else "at least 1 channel")
        raise ValueError(
            f"Invalid `input_shape`: {input_shape}. Expected {allowed}.")
    return input_shape


def build(spec, *, include_top=True, weights=None, input_tensor=None,
          input_shape=None, pooling=None, classes=1000,
          classifier_activation="softmax", include_preprocessing=True,
          name="anynet", model_name=None, drop_path_rate=0.0,
          zero_init_last_bn=False, bn_momentum=0.9, bn_epsilon=1e-5, padding=None,
          data_format=None):
    """Builds the Functional model of `spec`; all checks run first.

    `padding` (`"same"` or `"symmetric"`, see `blocks.BuildOptions`) is the
    weights' convention when None; `data_format` Keras'
    `image_data_format()` when None."""
    if not isinstance(name, str) or not name:
        raise invalid("name", name, "a non-empty string")
    if not isinstance(spec, AnyNetSpec):
        raise invalid("spec", spec, "an AnyNetSpec")
    if pooling not in POOLINGS:
        raise invalid("pooling", pooling, f"one of {POOLINGS}")
    for arg, value in (("include_top", include_top),
                       ("include_preprocessing", include_preprocessing),
                       ("zero_init_last_bn", zero_init_last_bn)):
        check(isinstance(value, bool), arg, value, "True or False")
    check_int("classes", classes, MAX_CLASSES)
    check(is_real(drop_path_rate) and 0 <= drop_path_rate < 1,
           "drop_path_rate", drop_path_rate, "a number in [0, 1)")
    check(is_real(bn_momentum) and 0 <= bn_momentum < 1, "bn_momentum",
           bn_momentum, "a number in [0, 1)")
    check_real("bn_epsilon", bn_epsilon, high=1.0)
    if padding is not None:
        check_choice("padding", padding, PADDINGS)
    data_format = data_format or keras.config.image_data_format()
    check_choice("data_format", data_format, DATA_FORMATS)
    if include_top:
        try:
            keras.activations.get(classifier_activation)
        except ValueError:
            raise ValueError(
                f"Invalid `classifier_activation`: {classifier_activation!r}. "
                "Expected None, a callable or the name of a Keras activation "
                "('softmax', 'linear', ...).") from None
        if isinstance(weights, str) and weights == "imagenet":
            # As keras.applications: the pretrained top was trained with softmax.
            check(classifier_activation in (None, "softmax", keras.activations.softmax),
                  "classifier_activation", classifier_activation,
                  "None or 'softmax' with weights='imagenet' and include_top=True")
    plan = weights_lib.resolve(weights, model_name=model_name,
                               include_top=include_top, classes=classes)
    if include_top and plan.kind == "imagenet" and input_shape is not None:
        # As keras.applications: the pretrained top was trained at 224x224.
        size = ((224, 224, 3) if data_format == "channels_last"
                else (3, 224, 224))
        if tuple(input_shape) != size:
            raise ValueError(
                f"Invalid `input_shape`: {input_shape}. With include_top=True "
                f"and weights='imagenet' the input must be {size}, the "
                "224x224 RGB images the ImageNet top was trained on; pass "
                f"input_shape=None or {size}, or include_top=False for other "
                "sizes.")
    if input_tensor is not None and input_shape is None:
        input_shape = tuple(input_tensor.shape[1:])
    min_size = max(spec.total_stride, MIN_INPUT_SIZES[spec.stem_type])
    input_shape = _input_shape(input_shape, include_top, min_size, plan.channels,
                               plan.input_size, data_format == "channels_last")
    opts = blocks.BuildOptions(padding=padding or plan.padding, bn_momentum=bn_momentum,
                               bn_epsilon=bn_epsilon,
                               zero_init_last_bn=zero_init_last_bn,
                               activation=spec.activation, downsample=spec.downsample)

    if keras.backend.backend() == "tensorflow" and _has_grouped_convs(spec):
        # Decides the grouped-conv path now, so that a slow one is reported
        # when the model is built rather than when it first runs.
        native_grouped_conv_ok()
    if input_tensor is None:
        inputs = layers.Input(shape=input_shape)
    elif not keras.utils.is_keras_tensor(input_tensor):
        inputs = layers.Input(tensor=input_tensor, shape=input_shape)
    else:
        inputs = input_tensor
    channels_first = data_format == "channels_first"
    x = inputs
    if channels_first:
        x = layers.Permute((2, 3, 1), name=TO_CHANNELS_LAST)(x)
    if include_preprocessing:
        x = layers.Rescaling(1.0 / 255, name="rescaling")(x)
        if plan.preprocessing == "imagenet":
            x = layers.Normalization(
                axis=blocks.CHANNEL_AXIS, mean=IMAGENET_MEAN,
                variance=[s**2 for s in IMAGENET_STD], name="normalization")(x)
    x = blocks.stem(x, spec, opts)
    num_blocks = sum(spec.depths)
    for i, (s, b, w_in, w_out, st, br, g) in enumerate(spec.blocks()):
        prefix = f"s{s}_b{b}"
        drop = drop_path_rate * i / max(num_blocks - 1, 1)
        build_block = blocks.BLOCKS[spec.block_type]
        x = build_block(x, w_in, w_out, st, br, g, spec.se_ratio, opts, prefix,
                        drop_rate=drop)
    x = blocks.head(x, spec, opts, include_top, pooling, classes,
                    classifier_activation)
    if channels_first and len(x.shape) == 4:
        x = layers.Permute((3, 1, 2), name="to_channels_first")(x)
    if input_tensor is not None:
        inputs = keras.utils.get_source_inputs(input_tensor)
    model = keras.Model(inputs, x, name=name)
    plan.load(model)
    return model


def _has_grouped_convs(spec):
    return spec.block_type in BOTTLENECK_BLOCKS and any(
        g < bottleneck_width(w, b) for w, b, g in
        zip(spec.widths, spec.bottleneck_ratios, spec.group_widths))


def AnyNet(spec=None, *, include_top=True, weights=None, input_tensor=None,
           input_shape=None, pooling=None, classes=1000,
           classifier_activation="softmax", include_preprocessing=True,
           name="anynet", drop_path_rate=0.0, zero_init_last_bn=False,
           bn_momentum=0.9, bn_epsilon=1e-5, **spec_fields):
    """Instantiates an AnyNet: any stem, stage layout, block and head.

    Reference:
    - [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678)
      (CVPR 2020)

    Either pass an `AnyNetSpec` or its fields as keyword arguments, e.g.
    `AnyNet(depths=(4, 6), widths=(32, 80), group_widths=16)`.

    Args:
        spec: an `keras_regnet.AnyNetSpec`.
        include_top: whether to include the global-pooling and dense
            classification head.
        weights: `None` (random initialisation) or the path to a weights
            file.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple, e.g. `(96, 96, 1)`.
        pooling: with `include_top=False`, `None` (4D feature map), `"avg"`
            or `"max"` global pooling.
        classes: number of classes, with `include_top=True`.
        classifier_activation: activation of the top layer (applied), or
            `None` for logits.
        include_preprocessing: whether the model rescales its `[0, 255]`
            inputs itself.
        name: model name.
        drop_path_rate: stochastic depth rate of the last block; it grows
            linearly from 0 over the blocks.
        zero_init_last_bn: zero-initialise the last BN gamma of each
            residual branch.
        bn_momentum: BatchNormalization momentum (Keras convention).
        bn_epsilon: BatchNormalization epsilon.
        **spec_fields: `AnyNetSpec` fields when `spec` is None.

    Returns:
        A Keras `Model` instance.
    """
    if spec is None:
        spec = AnyNetSpec(**spec_fields)
    elif spec_fields:
        raise ValueError(
            f"Invalid arguments: {sorted(spec_fields)}. Pass either `spec` or "
            "AnyNetSpec fields, not both.")
    return build(spec, include_top=include_top, weights=weights,
                 input_tensor=input_tensor, input_shape=input_shape,
                 pooling=pooling, classes=classes,
                 classifier_activation=classifier_activation,
                 include_preprocessing=include_preprocessing, name=name,
                 drop_path_rate=drop_path_rate,
                 zero_init_last_bn=zero_init_last_bn,
                 bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)


_STAGE_OUT = re.compile(r"^s(\d+)_b(\d+)_out$")


def _levels(model):
    """`(stem level, {level: tensor})` of a model built by this package, the
    level of a tensor at stride `2**n` being n, in the model's data format."""
    last, stem = {}, None
    for layer in model.layers:
        m = _STAGE_OUT.match(layer.name)
        if m:
            stage, blk = int(m.group(1)), int(m.group(2))
            if blk >= last.get(stage, (0, None))[0]:
                last[stage] = (blk, layer.output)
        elif layer.name.startswith("stem_"):
            stem = layer  # the stem's last layer comes last
    if not last or stem is None:
        raise ValueError(
            f"Invalid `model`: {model.name!r} has no stem and stage outputs named "
            "'stem_*' and 's<stage>_b<block>_out'. Expected a keras_regnet model.")
    stem_level = round(math.log2(model.get_layer("stem_conv").strides[0]))
    levels = {stem_level: stem.output}
    levels.update({stem_level + s: last[s][1] for s in sorted(last)})
    if any(layer.name == TO_CHANNELS_LAST for layer in model.layers):
        levels = {n: layers.Permute((3, 1, 2), name=f"p{n}_channels_first")(x)
                  for n, x in levels.items()}
    return stem_level, levels


def pyramid_outputs(model):
    """The feature maps of each stride of a model built by this package.

    Args:
        model: a model built by this package (`include_top` either way).

    Returns:
        `{"P1": stem output, "P2": first stage's output, ...}`: symbolic
        tensors of `model`'s graph, `"Pn"` at stride `2**n`, in the model's
        image data format (the CIFAR stem's stride-1 output is left out).
    """
    return {f"P{n}": x for n, x in _levels(model)[1].items() if n > 0}


def feature_model(model):
    """A model giving each stage's output, for detection/segmentation.

    Args:
        model: a model built by this package (`include_top` either way).

    Returns:
        A Keras `Model` from `model`'s inputs to a list of the stage outputs,
        finest first (strides 4, 8, 16, 32 for the ImageNet stem), in the
        model's image data format.
    """
    stem_level, levels = _levels(model)
    inputs = model.inputs[0] if len(model.inputs) == 1 else model.inputs
    return keras.Model(inputs, [x for n, x in levels.items() if n != stem_level],
                       name=f"{model.name}_features")
