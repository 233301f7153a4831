"""RegNetX/Y for Keras 3, generated from the six RegNet parameters."""

from keras_regnet.design import AnyNetSpec, complexity, regnet_spec, zoo_spec
from keras_regnet.design.zoo import MODEL_NAMES
from keras_regnet.models.anynet import AnyNet, feature_model
from keras_regnet.models.inference import export_inference, inference_model
from keras_regnet.models.layers import DropPath, NativeConv2D
from keras_regnet.models.regnet import *  # noqa: F401,F403 - RegNet, the 24 models

__version__ = "0.1.0"
