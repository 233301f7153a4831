"""Design math: pure Python and NumPy, no Keras."""

from keras_regnet.design.complexity import complexity
from keras_regnet.design.fit import fit_regnet
from keras_regnet.design.regnet import (make_compatible, quantized_linear,
                                        regnet_spec, stages_from_blocks,
                                        validate_regnet_params)
from keras_regnet.design.sampling import (DesignSpace, HyperParameter,
                                          RegNetDesignSpace)
from keras_regnet.design.scaling import STRATEGIES, Scaled, scale, scaling_exponents
from keras_regnet.design.spaces import (SPACE_NAMES, AnyNetXADesignSpace,
                                        AnyNetXBDesignSpace,
                                        AnyNetXCDesignSpace,
                                        AnyNetXDDesignSpace,
                                        AnyNetXEDesignSpace, design_space)
from keras_regnet.design.spec import (BLOCK_TYPES, STEM_TYPES, AnyNetSpec,
                                      bottleneck_width, se_width)
from keras_regnet.design.zoo import MODEL_NAMES, zoo_params, zoo_spec
