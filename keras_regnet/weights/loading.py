"""Putting a layer dict into a built model, checking every name and shape."""

import re

from keras_regnet.design.spec import AnyNetSpec

_BLOCK_LAYER = re.compile(r"^s(\d+)_b(\d+)_")


def infer_spec(shapes):
    """The `AnyNetSpec` whose layers have these shapes.

    Strides (2 per stage), the stem type (ImageNet), the activation (ReLU)
    and the shortcut's downsampling (a strided conv) are not visible in the
    weights and are assumed.

    Args:
        shapes: dict of layer name -> {variable name: shape} (a layer dict's
            arrays work too).

    Returns:
        An `AnyNetSpec`.

    Raises:
        ValueError: the layers do not form an AnyNet.
    """
    def shape(layer, var="kernel"):
        if var not in shapes.get(layer, {}):
            raise ValueError(f"The weights have no {var!r} for layer {layer!r}, "
                             "which an AnyNet with these stages has.")
        value = shapes[layer][var]
        return tuple(getattr(value, "shape", value))

    if "stem_conv" not in shapes:
        raise ValueError("The weights have no 'stem_conv' layer.")
    depths = {}
    for name in shapes:
        m = _BLOCK_LAYER.match(name)
        if m:
            s, b = int(m.group(1)), int(m.group(2))
            depths[s] = max(depths.get(s, 0), b)
    stages = sorted(depths)
    if stages != list(range(1, len(stages) + 1)) or not stages:
        raise ValueError(f"The weights' stages {stages} are not 1..n.")
    bottleneck = "s1_b1_c_conv" in shapes
    last = "c_conv" if bottleneck else "b_conv"
    widths = [shape(f"s{s}_b1_{last}")[-1] for s in stages]
    stem_width = shape("stem_conv")[-1]
    fields = dict(depths=[depths[s] for s in stages], widths=widths,
                  stem_width=stem_width)
    if bottleneck:
        inner = [shape(f"s{s}_b1_a_conv")[-1] for s in stages]
        fields["bottleneck_ratios"] = [
            w / w_b if w % w_b else w // w_b for w, w_b in zip(widths, inner)]
        fields["group_widths"] = [shape(f"s{s}_b1_b_conv")[2] for s in stages]
        se = "s1_b1_se_reduce" in shapes
        if se:
            fields["se_ratio"] = shape("s1_b1_se_reduce")[-1] / stem_width
        # A pre-activation network's stem has no BN; an inverted bottleneck
        # has no shortcut conv, although its first block changes the width.
        if "stem_bn" not in shapes:
            fields["block_type"] = "v"
        elif "s1_b1_proj_conv" not in shapes and widths[0] != stem_width:
            fields["block_type"] = "z"
        else:
            fields["block_type"] = "y" if se else "x"
    else:
        fields["block_type"] = ("res_basic" if any(
            n.endswith("_proj_conv") for n in shapes) else "vanilla")
    if "head_conv" in shapes:
        fields["head_width"] = shape("head_conv")[-1]
    return AnyNetSpec(**fields)


def describe(spec):
    """A one-line summary of the stage layout, for error messages."""
    text = (f"{spec.block_type} blocks, stem {spec.stem_width}, depths "
            f"{spec.depths}, widths {spec.widths}")
    if spec.block_type in ("x", "y"):
        text += f", group widths {spec.group_widths}"
    return text


def model_variables(model):
    """`{layer name: {variable name: variable}}` of a model's weighted layers."""
    return {layer.name: {v.name: v for v in layer.weights}
            for layer in model.layers if layer.weights}


_BN_ORDER = ("gamma", "beta", "moving_mean", "moving_variance")


def name_saved_arrays(model, saved):
    """Names the arrays of a native Keras 3 file, saved per layer by index.

    A layer of `model` with as many variables gives their names in Keras'
    save order, the order Keras itself loads them in. Other layers get the
    names our layers have (for `assign`'s messages): the BN order for
    `*_bn`, else kernel and bias.

    Args:
        model: the model the arrays are for.
        saved: `{layer name: {"0": array, "1": ...}}` (`formats.read_native`).

    Returns:
        A layer dict.
    """
    order = {}
    for layer in model.layers:
        store = {}
        layer.save_own_variables(store)
        order[layer.name] = [v.name for v in store.values()]
    layers = {}
    for name, arrays in saved.items():
        names = order.get(name)
        if names is None or len(names) != len(arrays):
            names = _BN_ORDER if name.endswith("_bn") else ("kernel", "bias")
        layers[name] = {names[int(i)] if int(i) < len(names) else i: array
                        for i, array in arrays.items()}
    return layers


def assign(model, layers, origins=None, what="the weights file"):
    """Loads a layer dict into `model`; nothing is assigned unless all fits.

    A file's top (`predictions`) is skipped when the model has none.

    Raises:
        ValueError: naming the first layer (in model order) that is missing
            or whose shapes differ, or the first layer of the file that the
            model lacks, with both stage layouts when they differ.
    """
    origins = origins or {}
    targets = model_variables(model)
    pairs = []
    for name, variables in targets.items():
        arrays = layers.get(name)
        if arrays is None:
            hint = ("Build the model with include_top=False or load a file "
                    "with a top." if name == "predictions" else "")
            _fail(f"{what} has no weights for layer {name!r} of model "
                  f"{model.name!r}. {hint}", layers, targets)
        if set(arrays) != set(variables):
            _fail(f"Layer {name!r} of model {model.name!r} has variables "
                  f"{sorted(variables)}, but {what} gives "
                  f"{sorted(arrays)} for it ({origins.get(name, name)}).",
                  layers, targets)
        for var, array in arrays.items():
            expected = tuple(variables[var].shape)
            if tuple(array.shape) != expected:
                _fail(f"Layer {origins.get(name, name)!r} of {what} does not "
                      f"fit layer {name!r} of model {model.name!r}: {var} has "
                      f"shape {tuple(array.shape)}, the model's has "
                      f"{expected}.", layers, targets)
            pairs.append((variables[var], array))
    extra = [n for n in layers if n not in targets and n != "predictions"]
    if extra:
        _fail(f"Layer {origins.get(extra[0], extra[0])!r} of {what} fits no "
              f"layer of model {model.name!r} (no layer {extra[0]!r}).",
              layers, targets)
    for variable, array in pairs:
        variable.assign(array.astype(variable.dtype))


def _fail(message, layers, targets):
    try:
        ours = infer_spec(layers)
        theirs = infer_spec({n: {v: x.shape for v, x in vs.items()}
                             for n, vs in targets.items()})
        if describe(ours) != describe(theirs):
            message += (f" The file has {describe(ours)}; the model has "
                        f"{describe(theirs)}.")
    except (ValueError, KeyError, IndexError, ZeroDivisionError):
        pass
    raise ValueError(message)
