"""RegNet from its six parameters, the paper's 24 RegNetX/Y models, and the
family beyond them (RegNetZ, RegNetV, the large RegNetY)."""

from keras.applications import imagenet_utils

from keras_regnet.design.complexity import complexity
from keras_regnet.design.regnet import regnet_spec
from keras_regnet.design.zoo import FAMILY_NAMES, MODEL_NAMES, RegNetParams, zoo_params
from keras_regnet.models.anynet import build

_COMMON_ARGS = """
        include_top: whether to include the global-pooling and dense
            classification head.
        weights: `None` (random initialisation), `"imagenet"` (pre-training
            on ImageNet), or the path to a weights file.
        input_tensor: optional Keras tensor to use as the model's input.
        input_shape: optional shape tuple; height and width >= 32 with the
            ImageNet stem. Defaults to `(224, 224, 3)` with the top,
            `(None, None, 3)` without. With `include_top=True` and
            `weights="imagenet"` it must be `(224, 224, 3)`, the size the
            ImageNet top was trained at (`ValueError` otherwise, as in
            `keras.applications`); use `include_top=False` for other sizes.
        pooling: with `include_top=False`, `None` (4D output of the last
            stage), `"avg"` or `"max"` global pooling.
        classes: number of classes, with `include_top=True` and no
            pretrained top.
        classifier_activation: activation of the top layer (applied), or
            `None` for logits.
        include_preprocessing: whether the model takes `[0, 255]` inputs and
            applies the preprocessing its weights expect (rescaling to
            `[0, 1]`, plus ImageNet mean/std for PyTorch-converted weights).
        name: model name.
        drop_path_rate: stochastic depth rate of the last block, growing
            linearly from 0 over the blocks.
        zero_init_last_bn: zero-initialise the last BN gamma of each
            residual branch.
        bn_momentum: BatchNormalization momentum (0.9, the paper's 0.1).
        bn_epsilon: BatchNormalization epsilon.

    Returns:
        A Keras `Model` instance."""


def RegNet(depth, w0, wa, wm, group_width, bottleneck_ratio=1.0, se_ratio=0.0,
           *, block_type=None, activation="relu", downsample="conv", head_width=0,
           stem_type="imagenet", stem_width=32, include_top=True,
           weights=None, input_tensor=None, input_shape=None, pooling=None,
           classes=1000, classifier_activation="softmax",
           include_preprocessing=True, name="regnet", drop_path_rate=0.0,
           zero_init_last_bn=False, bn_momentum=0.9, bn_epsilon=1e-5,
           model_name=None):
    spec = regnet_spec(depth, w0, wa, wm, group_width, bottleneck_ratio,
                       se_ratio, stem_type=stem_type, stem_width=stem_width,
                       block_type=block_type, activation=activation,
                       downsample=downsample, head_width=head_width)
    return build(spec, include_top=include_top, weights=weights,
                 input_tensor=input_tensor, input_shape=input_shape,
                 pooling=pooling, classes=classes,
                 classifier_activation=classifier_activation,
                 include_preprocessing=include_preprocessing, name=name,
                 model_name=model_name, drop_path_rate=drop_path_rate,
                 zero_init_last_bn=zero_init_last_bn,
                 bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)


RegNet.__doc__ = f"""Instantiates a RegNet from the six design-space parameters.

    Reference:
    - [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678)
      (CVPR 2020)

    Stage widths and depths follow the quantized linear rule, then each
    stage is made compatible with its group width.

    Args:
        depth: total number of blocks d.
        w0: initial width, a multiple of 8.
        wa: width slope (> 0).
        wm: width multiplier (> 1).
        group_width: group width g of the 3x3 convolutions.
        bottleneck_ratio: bottleneck ratio b (inner width = width / b).
        se_ratio: 0 for RegNetX; 0.25 for RegNetY (squeeze-and-excitation
            width as a fraction of each block's input width).
        block_type: None (`"y"` with SE, else `"x"`), `"z"` (RegNetZ's
            inverted linear bottleneck, with b < 1) or `"v"` (RegNetV's
            pre-activation block); see `keras_regnet.AnyNetSpec`.
        activation: `"relu"` (the paper's) or `"silu"` (RegNetZ/V).
        downsample: the shortcut where a block changes shape: `"conv"`
            (strided 1x1 conv) or `"avg"` (2x2 average pool, 1x1 conv).
        head_width: if > 0, a 1x1 conv + BN + activation of this width
            before pooling (RegNetZ).
        stem_type: `"imagenet"` (stride 2) or `"cifar"` (stride 1).
        stem_width: stem output channels.{_COMMON_ARGS}
        model_name: name of the published model, for `weights="imagenet"`.
"""


KINDS = {"x": "RegNetX", "y": "RegNetY (with squeeze-and-excitation)",
         "z": "RegNetZ (inverted linear bottleneck, SiLU)",
         "v": "RegNetV (pre-activation RegNetY, SiLU)"}
REFERENCES = {
    "RegNetZ": "\n    - [Fast and Accurate Model Scaling](https://arxiv.org/abs/2103.06877)"
               " (CVPR 2021)",
}


def _zoo_constructor(model_name):
    params = zoo_params(model_name)
    cx = complexity(model_name)
    default_weights = "imagenet" if model_name in MODEL_NAMES else None

    def constructor(include_top=True, weights=default_weights, input_tensor=None,
                    input_shape=None, pooling=None, classes=1000,
                    classifier_activation="softmax",
                    include_preprocessing=True, name=model_name.lower(),
                    drop_path_rate=0.0, zero_init_last_bn=False,
                    bn_momentum=0.9, bn_epsilon=1e-5):
        return RegNet(**params, include_top=include_top, weights=weights,
                      input_tensor=input_tensor, input_shape=input_shape,
                      pooling=pooling, classes=classes,
                      classifier_activation=classifier_activation,
                      include_preprocessing=include_preprocessing, name=name,
                      model_name=model_name, drop_path_rate=drop_path_rate,
                      zero_init_last_bn=zero_init_last_bn,
                      bn_momentum=bn_momentum, bn_epsilon=bn_epsilon)

    constructor.__name__ = constructor.__qualname__ = model_name
    kind = KINDS[params["block_type"] or ("y" if params["se_ratio"] else "x")]
    extra = "".join(f", {k}={params[k]!r}" for k in ("activation", "downsample", "head_width")
                    if params[k] != RegNetParams.__dataclass_fields__[k].default)
    weights_note = ("" if model_name in MODEL_NAMES else
                    "\n    `weights` is None by default; timm's weight tags\n"
                    "    (`keras_regnet.weights.tags(name)`) or a timm checkpoint\n"
                    "    (`weights=path`) load its ImageNet weights.\n")
    constructor.__doc__ = f"""Instantiates the {model_name} architecture, a {kind}.

    Reference:
    - [Designing Network Design Spaces](https://arxiv.org/abs/2003.13678)
      (CVPR 2020){REFERENCES.get(model_name[:7], "")}

    d={params['depth']}, w0={params['w0']}, wa={params['wa']},
    wm={params['wm']}, g={params['group_width']}, b={params['bottleneck_ratio']:g}{extra}:
    {cx['flops'] / 1e9:.2f} G multiply-adds and {cx['params'] / 1e6:.1f} M
    parameters at 224x224 with 1000 classes.
{weights_note}
    Args:{_COMMON_ARGS}
"""
    return constructor


RegNetX002 = _zoo_constructor("RegNetX002")
RegNetX004 = _zoo_constructor("RegNetX004")
RegNetX006 = _zoo_constructor("RegNetX006")
RegNetX008 = _zoo_constructor("RegNetX008")
RegNetX016 = _zoo_constructor("RegNetX016")
RegNetX032 = _zoo_constructor("RegNetX032")
RegNetX040 = _zoo_constructor("RegNetX040")
RegNetX064 = _zoo_constructor("RegNetX064")
RegNetX080 = _zoo_constructor("RegNetX080")
RegNetX120 = _zoo_constructor("RegNetX120")
RegNetX160 = _zoo_constructor("RegNetX160")
RegNetX320 = _zoo_constructor("RegNetX320")
RegNetY002 = _zoo_constructor("RegNetY002")
RegNetY004 = _zoo_constructor("RegNetY004")
RegNetY006 = _zoo_constructor("RegNetY006")
RegNetY008 = _zoo_constructor("RegNetY008")
RegNetY016 = _zoo_constructor("RegNetY016")
RegNetY032 = _zoo_constructor("RegNetY032")
RegNetY040 = _zoo_constructor("RegNetY040")
RegNetY064 = _zoo_constructor("RegNetY064")
RegNetY080 = _zoo_constructor("RegNetY080")
RegNetY120 = _zoo_constructor("RegNetY120")
RegNetY160 = _zoo_constructor("RegNetY160")
RegNetY320 = _zoo_constructor("RegNetY320")
RegNetZ005 = _zoo_constructor("RegNetZ005")
RegNetZ040 = _zoo_constructor("RegNetZ040")
RegNetZ040H = _zoo_constructor("RegNetZ040H")
RegNetV040 = _zoo_constructor("RegNetV040")
RegNetV064 = _zoo_constructor("RegNetV064")
RegNetY640 = _zoo_constructor("RegNetY640")
RegNetY1280 = _zoo_constructor("RegNetY1280")
RegNetY2560 = _zoo_constructor("RegNetY2560")
CONSTRUCTORS = {name: globals()[name] for name in (*MODEL_NAMES, *FAMILY_NAMES)}
__all__ = ["RegNet", *CONSTRUCTORS, "preprocess_input", "decode_predictions"]


def preprocess_input(x, data_format=None):
    """A placeholder kept for API compatibility with `keras.applications`.

    RegNet models preprocess inside the model (`include_preprocessing=True`):
    pass inputs in `[0, 255]` and this function returns them unchanged.

    Args:
        x: a floating point numpy array or tensor.
        data_format: optional data format of the image tensor (unused).

    Returns:
        The unchanged `x`.
    """
    return x


def decode_predictions(preds, top=5):
    """Decodes ImageNet predictions into `(class_name, description, score)`."""
    return imagenet_utils.decode_predictions(preds, top=top)
