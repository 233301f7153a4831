"""Which tensor of a foreign checkpoint goes into which layer of our models.

Our layer names (README, section models): `stem_conv`, `stem_bn`,
`s{stage}_b{block}_{a,b,c}_{conv,bn}`, `..._proj_{conv,bn}`,
`..._se_reduce`, `..._se_expand`, `head_{conv,bn}`, `predictions`; in a
pre-activation (V) block `{a,b,c}_bn` is the BN before `{a,b,c}_conv`.
A "layer dict" maps such a name to `{variable name: numpy array}` in Keras
layout; `origins` maps it back to the source's own name for messages.
"""

import re

import numpy as np

from keras_regnet.design.checks import invalid

SOURCES = ("pycls", "torchvision", "timm")

# Keras 2 (`tf_keras.applications.RegNet*`): "<model>_Stage_<i>_<X|Y>Block_<j>_<role>".
_KERAS2_BLOCK = re.compile(r"_Stage_(\d+)_[XY]Block_(\d+)_(\w+)$")
_KERAS2_ROLES = {
    "skip_1x1": "proj_conv", "skip_bn": "proj_bn",
    "conv_1x1_1": "a_conv", "conv_1x1_1_bn": "a_bn",
    "conv_3x3": "b_conv", "conv_3x3_bn": "b_bn",
    "squeeze_and_excite_squeeze": "se_reduce",
    "squeeze_and_excite_excite": "se_expand",
    "conv_1x1_2": "c_conv", "conv_1x1_2_bn": "c_bn",
}


# Our own names, as a Keras 3 model saved to legacy `.h5` keeps them.
_OURS = re.compile(r"^(stem_(conv|bn)|s\d+_b\d+_[a-z_]+|head_(conv|bn)|predictions)$")


def keras2_layer(name):
    """Our layer name for a layer name in a Keras 2 format file, or None."""
    if _OURS.match(name):
        return name
    m = _KERAS2_BLOCK.search(name)
    if m and m.group(3) in _KERAS2_ROLES:
        stage, block = int(m.group(1)) + 1, int(m.group(2)) + 1
        return f"s{stage}_b{block}_{_KERAS2_ROLES[m.group(3)]}"
    for suffix, ours in (("_stem_conv", "stem_conv"), ("_stem_bn", "stem_bn"),
                         ("head_dense", "predictions")):
        if name.endswith(suffix):
            return ours
    return None


# PyTorch module paths -> our layer names. `s`, `b` are 1-based stage and
# block indices, `b0` a 0-based block index, `x` one of a/b/c.
_BLOCK = r"s(?P<s>\d+)\.b(?P<b>\d+)\."
_TV_BLOCK = r"trunk_output\.block(?P<s>\d+)\.block\d+-(?P<b0>\d+)\."
_MODULES = {
    "pycls": [
        (r"stem\.conv", "stem_conv"),
        (r"stem\.bn", "stem_bn"),
        (_BLOCK + r"proj", "{blk}_proj_conv"),
        (_BLOCK + r"bn", "{blk}_proj_bn"),
        (_BLOCK + r"f\.(?P<x>[abc])", "{blk}_{x}_conv"),
        (_BLOCK + r"f\.(?P<x>[abc])_bn", "{blk}_{x}_bn"),
        (_BLOCK + r"f\.se\.f_ex\.0", "{blk}_se_reduce"),
        (_BLOCK + r"f\.se\.f_ex\.2", "{blk}_se_expand"),
        (_BLOCK + r"(?P<x>[ab])", "{blk}_{x}_conv"),  # vanilla block
        (_BLOCK + r"(?P<x>[ab])_bn", "{blk}_{x}_bn"),
        (r"head\.conv", "head_conv"),
        (r"head\.conv_bn", "head_bn"),
        (r"head\.fc", "predictions"),
    ],
    "torchvision": [
        (r"stem\.0", "stem_conv"),
        (r"stem\.1", "stem_bn"),
        (_TV_BLOCK + r"proj\.0", "{blk}_proj_conv"),
        (_TV_BLOCK + r"proj\.1", "{blk}_proj_bn"),
        (_TV_BLOCK + r"f\.(?P<x>[abc])\.0", "{blk}_{x}_conv"),
        (_TV_BLOCK + r"f\.(?P<x>[abc])\.1", "{blk}_{x}_bn"),
        (_TV_BLOCK + r"f\.se\.fc1", "{blk}_se_reduce"),
        (_TV_BLOCK + r"f\.se\.fc2", "{blk}_se_expand"),
        (r"fc", "predictions"),
    ],
    "timm": [
        (r"stem\.conv", "stem_conv"),
        (r"stem\.bn", "stem_bn"),
        (_BLOCK + r"downsample\.conv", "{blk}_proj_conv"),
        (_BLOCK + r"downsample\.bn", "{blk}_proj_bn"),
        (_BLOCK + r"conv1\.conv", "{blk}_a_conv"),
        (_BLOCK + r"conv1\.bn", "{blk}_a_bn"),
        (_BLOCK + r"conv2\.conv", "{blk}_b_conv"),
        (_BLOCK + r"conv2\.bn", "{blk}_b_bn"),
        (_BLOCK + r"conv3\.conv", "{blk}_c_conv"),
        (_BLOCK + r"conv3\.bn", "{blk}_c_bn"),
        (_BLOCK + r"se\.fc1", "{blk}_se_reduce"),
        (_BLOCK + r"se\.fc2", "{blk}_se_expand"),
        (r"head\.fc", "predictions"),
        # RegNetZ's head conv; ResNet-D shortcuts (`downsample="avg"`).
        (r"final_conv\.conv", "head_conv"),
        (r"final_conv\.bn", "head_bn"),
        (_BLOCK + r"downsample\.1\.conv", "{blk}_proj_conv"),
        (_BLOCK + r"downsample\.1\.bn", "{blk}_proj_bn"),
        # RegNetV (pre-activation): the stem and the convs without their BN,
        # `norm1-3` before `conv1-3`, the shortcut a conv alone.
        (r"stem", "stem_conv"),
        (_BLOCK + r"conv(?P<n>[123])", "{blk}_{x}_conv"),
        (_BLOCK + r"norm(?P<n>[123])", "{blk}_{x}_bn"),
        (_BLOCK + r"downsample(?:\.1)?", "{blk}_proj_conv"),
    ],
}
_RULES = {src: [(re.compile(p + "$"), t) for p, t in rules]
          for src, rules in _MODULES.items()}
_BN_VARS = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean",
            "running_var": "moving_variance"}
# Bookkeeping entries that carry no weights.
_IGNORED = ("num_batches_tracked",)


def detect_source(keys, path=None):
    """`"pycls"`, `"torchvision"` or `"timm"` from a state dict's keys
    (of the file `path`, for messages)."""
    keys = list(keys)
    if any(k.startswith("trunk_output.") for k in keys):
        return "torchvision"
    if any(re.match(r"s\d+\.b\d+\.conv1\.", k) for k in keys):
        return "timm"
    if any(re.match(r"s\d+\.b\d+\.(f\.|proj\.|a\.)", k) for k in keys):
        return "pycls"
    raise ValueError(
        f"Unrecognised checkpoint{f' {path!r}' if path else ''}: its keys "
        f"(e.g. {keys[:3]}) match none of the sources {SOURCES}. Expected a "
        "RegNet state dict of pycls, torchvision or timm.")


def _module_target(source, module):
    for pattern, template in _RULES[source]:
        m = pattern.match(module)
        if m:
            g = m.groupdict()
            blk = None
            if "s" in g:
                block = int(g["b"]) if g.get("b") else int(g["b0"]) + 1
                blk = f"s{int(g['s'])}_b{block}"
            x = g.get("x") or (g.get("n") and "abc"[int(g["n"]) - 1])
            return template.format(blk=blk, x=x)
    return None


def from_state_dict(state, source):
    """Maps a PyTorch RegNet state dict onto our layers.

    Args:
        state: dict of parameter name -> numpy array (PyTorch layout).
        source: one of `SOURCES`. For `"pycls"`, whose models were trained
            on BGR images, the stem's input channels are flipped so that
            our model takes RGB.

    Returns:
        `(layer dict, origins)`.

    Raises:
        ValueError: naming the first key that fits no layer of ours, or
            whose kernel has the wrong number of dimensions.
    """
    if source not in SOURCES:
        raise invalid("source", source, f"one of {SOURCES}")
    layers, origins = {}, {}
    for key, value in state.items():
        module, _, param = key.rpartition(".")
        if param in _IGNORED:
            continue
        target = _module_target(source, module)
        var = _variable(target, param)
        if var is None:
            raise ValueError(
                f"Checkpoint key {key!r} ({source}) fits no layer of a "
                "RegNet model; is this a plain RegNetX/Y checkpoint?")
        dims = 2 if target == "predictions" else 4
        if var == "kernel" and np.ndim(value) != dims:
            raise ValueError(
                f"Checkpoint key {key!r} ({source}) has shape "
                f"{tuple(np.shape(value))}; the weight of {target!r} has "
                f"{dims} dimensions.")
        layers.setdefault(target, {})[var] = _to_keras(target, var, value)
        origins[target] = f"{module} ({source})"
    if source == "pycls" and "stem_conv" in layers:
        layers["stem_conv"]["kernel"] = np.ascontiguousarray(
            layers["stem_conv"]["kernel"][:, :, ::-1, :])
    return layers, origins


def _variable(target, param):
    if target is None:
        return None
    if target.endswith("_bn"):
        return _BN_VARS.get(param)
    return {"weight": "kernel", "bias": "bias"}.get(param)


def _to_keras(target, var, value):
    value = np.asarray(value, dtype=np.float32)
    if var != "kernel":
        return value
    if target == "predictions":
        return value.T.copy()  # (out, in) -> (in, out)
    return value.transpose(2, 3, 1, 0).copy()  # OIHW -> HWIO
