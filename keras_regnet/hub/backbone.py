"""`RegNetBackbone`: any RegNet/AnyNet as a keras-hub `FeaturePyramidBackbone`."""

import keras
import keras_hub

from keras_regnet import weights as weights_lib
from keras_regnet.design.checks import check_choice, invalid
from keras_regnet.design.spec import AnyNetSpec
from keras_regnet.design.zoo import ZOO, zoo_params, zoo_spec
from keras_regnet.hub import timm_layout
from keras_regnet.models import anynet
from keras_regnet.models.regnet import RegNet


def backbone_spec(spec):
    """A zoo name, an `AnyNetSpec` or its config dict -> `(spec, name)`."""
    if isinstance(spec, str) and spec in ZOO:
        return zoo_spec(spec), spec
    if isinstance(spec, AnyNetSpec):
        return spec, None
    if isinstance(spec, dict):
        return AnyNetSpec.from_config(spec), None
    raise invalid("spec", spec, f"a model name ({', '.join(ZOO)}), an AnyNetSpec "
                                "or its config dict")


@keras.saving.register_keras_serializable(package="keras_regnet")
class RegNetBackbone(timm_layout.TimmLayoutPresets,
                     keras_hub.models.FeaturePyramidBackbone):
    """A RegNet or any AnyNet as a keras-hub backbone.

    The network without its classification top and without preprocessing
    (a `RegNetImageConverter` scales the images), giving the last stage's
    feature map. `pyramid_outputs` holds `"P1"` (the stem, stride 2) to
    `"P5"` (the last stage, stride 32), so that keras-hub's RetinaNet and
    DeepLabV3 take it as their image encoder.

    Example:

    ```python
    backbone = keras_regnet.hub.RegNetBackbone("RegNetY016")
    spec = keras_regnet.design.regnet_spec(depth=13, w0=24, wa=36.44, wm=2.49,
                                           group_width=8)
    backbone = keras_regnet.hub.RegNetBackbone(spec, image_shape=(64, 64, 3))
    ```

    Args:
        spec: a model name (`"RegNetX002"` ... `"RegNetY2560"`, the RegNetZ/V
            family too), a `keras_regnet.AnyNetSpec`, or its `to_config()`.
        image_shape: the input shape, `(height, width, channels)` (channels
            first with `data_format="channels_first"`).
        padding: `"same"` (the Keras 2 weights') or `"symmetric"` (PyTorch's:
            pycls, torchvision, timm weights).
        data_format: None (Keras' `image_data_format()`), `"channels_last"`
            or `"channels_first"`.
        dtype: the dtype policy of the layers.
    """

    def __init__(self, spec, image_shape=(None, None, 3), padding="same",
                 data_format=None, dtype=None, **kwargs):
        spec, model_name = backbone_spec(spec)
        check_choice("padding", padding, anynet.PADDINGS)
        data_format = data_format or keras.config.image_data_format()
        inner = anynet.build(spec, include_top=False, input_shape=tuple(image_shape),
                             include_preprocessing=False, padding=padding,
                             data_format=data_format, name="regnet",
                             model_name=model_name)
        kwargs.setdefault("name", "regnet_backbone")
        super().__init__(inputs=inner.inputs[0], outputs=inner.outputs[0],
                         dtype=dtype, **kwargs)
        self.spec = spec
        self.model_name = model_name
        self.image_shape = tuple(image_shape)
        self.padding = padding
        self.data_format = data_format
        self.pyramid_outputs = anynet.pyramid_outputs(inner)

    @classmethod
    def from_weights(cls, model, weights="imagenet", classes=1000, **kwargs):
        """A backbone of a published model with its weights.

        Args:
            model: a model name, e.g. `"RegNetY016"`.
            weights: as the model's constructor takes them: `"imagenet"`, a
                timm tag, the path to a weights file, or None.
            classes: the classes of the weights' top, if they have one.
            **kwargs: `RegNetBackbone` arguments (`image_shape`, `dtype`, ...).

        Returns:
            `(backbone, source)`: the backbone (the weights' padding, every
            layer's weights) and the keras.applications-style model they
            were loaded into, logits on its top, without preprocessing,
            whose `plan` attribute holds the weights' `WeightsPlan`.
        """
        if not (isinstance(model, str) and model in ZOO):
            raise invalid("model", model, f"one of {tuple(ZOO)}")
        plan = weights_lib.resolve(weights, model_name=model, include_top=True,
                                   classes=classes)
        source = RegNet(**zoo_params(model), weights=weights, model_name=model,
                        classes=classes, classifier_activation=None,
                        include_preprocessing=False, name=model.lower())
        source.plan = plan
        backbone = cls(model, padding=plan.padding, **kwargs)
        for layer in backbone.layers:
            if layer.weights:
                layer.set_weights(source.get_layer(layer.name).get_weights())
        return backbone, source

    @classmethod
    def from_timm(cls, checkpoint, **kwargs):
        """The backbone of a `timm_layout.TimmCheckpoint`."""
        return cls.from_weights(checkpoint.model, checkpoint.weights, checkpoint.classes,
                                **kwargs)[0]

    def get_config(self):
        config = super().get_config()
        config.update(spec=self.model_name or self.spec.to_config(),
                      image_shape=self.image_shape, padding=self.padding,
                      data_format=self.data_format)
        return config
