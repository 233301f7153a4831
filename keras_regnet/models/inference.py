"""Inference export: BatchNormalization folded into the preceding convolution.

In inference a BN layer is a fixed per-channel affine map, so a conv
followed by BN equals one conv with scaled kernel and a bias:
`s = gamma / sqrt(moving_variance + epsilon)`, `kernel' = kernel * s`,
`bias' = (bias - moving_mean) * s + beta`. The folded model has one
operation less per conv (TensorFlow then fuses conv, bias and ReLU into
one kernel), which is what makes bfloat16 inference fast on CPU.

For batch inference on a CPU the batch can also be cut into slices that
run concurrently (`batch_splits=2`): small models leave TensorFlow's
inter-op threads idle between their many short ops, and two independent
streams fill them (RegNetX002 at batch 32: +9% fp32, +13% bf16 on 2 cores;
a batch of one runs its image in both slices, 12-24% slower).
"""

import keras
import numpy as np

from keras_regnet.design.checks import invalid
from keras_regnet.files import atomic_path, check_target
from keras_regnet.models.layers import BatchMerge, BatchSplit

_DTYPES = ("float32", "bfloat16")
# Identity in inference: dropped from the exported graph.
_TRAINING_ONLY = ("DropPath", "Dropout", "SpatialDropout2D")


def _check_args(model, dtype, batch_splits):
    if not isinstance(model, keras.Model) or not hasattr(model, "_nodes_by_depth"):
        raise invalid("model", model, "a functional keras.Model (e.g. from "
                                      "keras_regnet.RegNetX002)")
    if dtype not in _DTYPES:
        raise invalid("dtype", dtype, f"one of {_DTYPES}")
    if not (isinstance(batch_splits, int) and not isinstance(batch_splits, bool)
            and batch_splits >= 1):
        raise invalid("batch_splits", batch_splits, "an integer >= 1")


def _is_conv(layer):
    return (isinstance(layer, keras.layers.Conv2D)
            and layer.data_format == "channels_last"
            and layer.activation is keras.activations.linear)


def _graph(model):
    """Per operation of `model`'s own graph: its nodes, consumers and output rank."""
    uses, consumers, ranks = {}, {}, {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            op = node.operation
            uses[id(op)] = uses.get(id(op), 0) + 1
            ranks[id(op)] = len(node.outputs[0].shape)
            for tensor in node.input_tensors:
                producer = tensor._keras_history.operation
                consumers.setdefault(id(producer), []).append(op)
    return uses, consumers, ranks


def _foldable_pairs(model, uses, consumers):
    """{bn layer: conv layer} for each BN whose input is a conv's only use."""
    pairs = {}
    for nodes in model._nodes_by_depth.values():
        for node in nodes:
            bn = node.operation
            if (not isinstance(bn, keras.layers.BatchNormalization)
                    or bn.axis not in (-1, 3) or uses[id(bn)] != 1
                    or len(node.input_tensors) != 1):
                continue
            conv = node.input_tensors[0]._keras_history.operation
            if (_is_conv(conv) and uses.get(id(conv)) == 1
                    and consumers.get(id(conv)) == [bn]):
                pairs[bn] = conv
    return pairs


def _foldable_rescaling(model, uses, consumers):
    """{rescaling layer: conv} for a pure scaling that feeds only a conv.

    A zero padding in between commutes with the scaling.
    """
    pairs = {}
    for layer in model.layers:
        if (not isinstance(layer, keras.layers.Rescaling) or layer.offset != 0
                or not isinstance(layer.scale, (int, float))
                or uses.get(id(layer)) != 1):
            continue
        nxt = consumers.get(id(layer), [])
        if (len(nxt) == 1 and isinstance(nxt[0], keras.layers.ZeroPadding2D)
                and uses.get(id(nxt[0])) == 1):
            nxt = consumers.get(id(nxt[0]), [])
        if len(nxt) == 1 and _is_conv(nxt[0]) and uses.get(id(nxt[0])) == 1:
            pairs[layer] = nxt[0]
    return pairs


def _folded_weights(conv, bn, input_scale=1.0):
    kernel = np.asarray(conv.kernel, "float64") * input_scale
    bias = np.asarray(conv.bias, "float64") if conv.use_bias else 0.0
    if bn is None:
        return [kernel.astype("float32")] + ([bias.astype("float32")] if conv.use_bias else [])
    c = kernel.shape[-1]
    gamma = np.asarray(bn.gamma, "float64") if bn.scale else np.ones(c)
    beta = np.asarray(bn.beta, "float64") if bn.center else np.zeros(c)
    scale = gamma / np.sqrt(np.asarray(bn.moving_variance, "float64") + bn.epsilon)
    mean = np.asarray(bn.moving_mean, "float64")
    return [(kernel * scale).astype("float32"),
            ((bias - mean) * scale + beta).astype("float32")]


def inference_model(model, dtype="float32", batch_splits=1):
    """Rebuilds a model for inference, with BatchNormalization folded away.

    Every BN layer that follows a (grouped) convolution is folded into that
    convolution, which gains a bias; dropout and stochastic-depth layers
    are dropped. In `float32` the outputs equal `model(x, training=False)`
    up to float rounding. In `bfloat16` weights and activations are
    bfloat16, while global pooling, the classifier and every model output
    are float32.

    Args:
        model: a functional Keras model, e.g. from `keras_regnet.RegNetX002`.
        dtype: `"float32"` or `"bfloat16"`.
        batch_splits: the batch is cut into this many slices that run
            concurrently (`BatchSplit` / `BatchMerge`; the outputs are the
            same). 2 speeds up batch inference on a CPU; keep 1 for single
            images and on a GPU.

    Returns:
        A new functional `keras.Model` with the same inputs and outputs and
        the same layer names, less the folded BN layers. It is for inference
        only: it has no BN layers to train.
    """
    _check_args(model, dtype, batch_splits)
    uses, consumers, ranks = _graph(model)
    pairs = _foldable_pairs(model, uses, consumers)
    rescalings = _foldable_rescaling(model, uses, consumers)
    folded_convs = {id(conv): bn for bn, conv in pairs.items()}
    input_scales = {id(conv): r.scale for r, conv in rescalings.items()}
    clones = {}

    def clone(layer):
        if (layer in pairs or layer in rescalings
                or type(layer).__name__ in _TRAINING_ONLY):
            return lambda x, **kwargs: x
        if id(layer) not in clones:
            config = layer.get_config()
            config["dtype"] = "float32" if ranks.get(id(layer), 4) < 4 else dtype
            if id(layer) in folded_convs:
                config.update(use_bias=True, bias_initializer="zeros")
            clones[id(layer)] = type(layer).from_config(config)
        return clones[id(layer)]

    inputs = [keras.Input(batch_shape=x.shape, dtype=x.dtype, name=x.name)
              for x in model.inputs]
    if batch_splits == 1:
        outputs = keras.tree.flatten(
            model._run_through_graph(inputs, operation_fn=clone))
    else:
        # Every slice runs through the same (shared) cloned layers.
        slices = [BatchSplit(batch_splits, name=f"batch_split_{i}" if i else "batch_split")(x)
                  for i, x in enumerate(inputs)]
        results = [keras.tree.flatten(model._run_through_graph(
            list(part), operation_fn=clone)) for part in zip(*slices)]
        outputs = [BatchMerge(name=f"{name}_merge")([inputs[0], *part])
                   for name, part in zip(model.output_names, zip(*results))]
    outputs = [keras.layers.Identity(dtype="float32", name=f"{x.name}_float32")(x)
               if x.dtype != "float32" else x for x in outputs]
    for layer in model.layers:
        new = clones.get(id(layer))
        if new is None:
            continue
        if id(layer) in folded_convs or id(layer) in input_scales:
            new.set_weights(_folded_weights(layer, folded_convs.get(id(layer)),
                                            input_scales.get(id(layer), 1.0)))
        elif layer.weights:
            new.set_weights(layer.get_weights())
    return keras.Model(inputs if len(inputs) > 1 else inputs[0],
                       outputs if len(outputs) > 1 else outputs[0],
                       name=model.name)


def export_inference(model, filepath, dtype="float32", batch_splits=1):
    """Writes the BN-folded inference model as a TensorFlow SavedModel.

    The SavedModel's `serve` endpoint takes the model's input and returns
    float32 outputs. The export is written to a temporary folder beside
    `filepath` and renamed into place; it holds the marker file
    `.keras_regnet`, by which a later export may replace it.

    Args:
        model: a functional Keras model, e.g. from `keras_regnet.RegNetX002`.
        filepath: folder to write the SavedModel to: a new path, or a
            folder keras_regnet wrote, such as an earlier export (nothing
            else is replaced).
        dtype: `"float32"` or `"bfloat16"`.
        batch_splits: as for `inference_model`.

    Returns:
        The inference model that was exported.

    Raises:
        ValueError: bad arguments, or `filepath` exists and is not an
            earlier export (checked before any work).
    """
    _check_args(model, dtype, batch_splits)
    filepath = check_target(filepath, "filepath")
    folded = inference_model(model, dtype, batch_splits)
    with atomic_path(filepath, "filepath") as tmp:
        write_savedmodel(folded, tmp)
    return folded


def write_savedmodel(model, path):
    """Writes a one-input Keras model into the folder `path` as a TensorFlow
    SavedModel: `tf.saved_model.load(path).serve(x)` gives
    `model(x, training=False)`, also as the `serving_default` signature.

    On the TensorFlow backend each variable is stored once (Keras 3.15's
    `model.export` stores each twice on TensorFlow 2.21: a SavedModel twice
    the model's size); other backends go through `model.export`.
    """
    if keras.backend.backend() != "tensorflow" or len(model.inputs) != 1:
        model.export(path, format="tf_saved_model", verbose=False)
        return
    import tensorflow as tf

    module = tf.Module()
    module.serve = tf.function(
        lambda x: model(x, training=False),
        input_signature=[tf.TensorSpec((None, *model.inputs[0].shape[1:]),
                                       model.inputs[0].dtype, name="inputs")])
    module.model_variables = [v.value for v in model.variables]
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
