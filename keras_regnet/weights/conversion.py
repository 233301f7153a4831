"""Converting PyTorch RegNet checkpoints (pycls, torchvision, timm)."""

import dataclasses

from keras_regnet.design.checks import invalid
from keras_regnet.design.zoo import FAMILY_NAMES, MODEL_NAMES, zoo_spec
from keras_regnet.files import check_target, existing_file
from keras_regnet.weights import formats, mapping
from keras_regnet.weights.imagenet import canonical_name
from keras_regnet.weights.loading import describe, infer_spec

# Sizes where torchvision's width rounding (float32, `_make_divisible`)
# gives other stage widths than the paper's.
TORCHVISION_VARIANTS = ("RegNetX004", "RegNetX040", "RegNetY008",
                        "RegNetY040", "RegNetY080")


def convert(src, dst, model=None, source=None):
    """Converts a PyTorch RegNet checkpoint into a Keras weights file.

    The file keeps our layer names and records the source, the padding
    (`"symmetric"`) and preprocessing (`"imagenet"`: ImageNet mean/std)
    the weights expect, and the network's `AnyNetSpec`, so that
    `weights=dst` builds the model right. pycls checkpoints expect BGR
    input; the converted stem takes RGB.

    Args:
        src: a `.pyth`/`.pth`/`.pt` (needs torch) or `.safetensors` file.
        dst: the file to write (HDF5, e.g. `regnety016_pycls.h5`): a new
            path, or a file this function wrote before (it is replaced
            whole; nothing else is ever replaced).
        model: the model the checkpoint is for, e.g. `"RegNetY016"` or
            `"RegNetZ040"`; its layout is checked against the checkpoint.
            None converts any RegNet/AnyNet layout of X or Y blocks as its
            own variant (build it with
            `AnyNet(keras_regnet.weights.file_spec(dst))`); RegNetZ/V
            checkpoints need `model`, since their activation and shortcut
            pooling are not visible in the weights.
        source: `"pycls"`, `"torchvision"` or `"timm"`; detected from the
            checkpoint's keys when None.

    Returns:
        The metadata written to `dst` (a dict).

    Raises:
        ValueError: bad arguments, a damaged checkpoint, or one whose layout
            differs from `model`'s (e.g. torchvision's differently rounded
            sizes). Nothing is written then.
        ImportError: a `.pth`/`.pyth` checkpoint, and torch is missing.
    """
    name = None
    if model is not None:
        name = canonical_name(model, MODEL_NAMES + FAMILY_NAMES)
        if name is None:
            raise invalid("model", model, f"one of {MODEL_NAMES + FAMILY_NAMES} or None "
                                          "(convert the checkpoint's own layout)")
    if source is not None and source not in mapping.SOURCES:
        raise invalid("source", source, f"one of {mapping.SOURCES} or None (detect)")
    expected = "a PyTorch checkpoint (.pyth, .pth, .pt, .bin or .safetensors)"
    src = existing_file(src, "src", expected)
    if not src.lower().endswith((*formats.TORCH_SUFFIXES, ".safetensors")):
        raise invalid("src", src, expected)
    if formats.file_kind(src) == "torch":
        formats.check_torch(src, "src")
    dst = check_target(dst, "dst")
    state = formats.read_state_dict(src)
    source = source or mapping.detect_source(state, src)
    layers, origins = mapping.from_state_dict(state, source)
    formats.check_finite(src, layers, origins)
    try:
        spec = infer_spec(layers)
    except ValueError as e:
        raise ValueError(f"The checkpoint {src!r} ({source}) is not a complete "
                         f"RegNet: {e}") from None
    if name is None and spec.block_type in ("z", "v"):
        raise ValueError(
            f"The checkpoint {src!r} ({source}) has RegNet{spec.block_type.upper()} "
            "blocks, whose activation and shortcut pooling its weights do not "
            f"show: pass `model` (`--model`), one of {FAMILY_NAMES}.")
    expected = name and zoo_spec(name)
    if expected:  # what the weights do not show comes from the model's name
        spec = dataclasses.replace(spec, activation=expected.activation,
                                   downsample=expected.downsample)
    if expected and spec != expected:
        note = ""
        if source == "torchvision" and name in TORCHVISION_VARIANTS:
            note = (" torchvision rounds the widths of this size differently "
                    "from the paper, so its checkpoint is a different "
                    "network.")
        raise ValueError(
            f"The checkpoint {src!r} ({source}) does not fit {name}: it has "
            f"{describe(spec)}; {name} has {describe(expected)}.{note} "
            "Convert it as its own variant by leaving out `model` "
            "(`--model`), then build it with "
            "`keras_regnet.AnyNet(keras_regnet.weights.file_spec(dst), "
            "weights=dst)`.")
    metadata = {
        "source": source,
        "model": name or "",
        "padding": "symmetric",
        "preprocessing": "imagenet",
        "channels": int(layers["stem_conv"]["kernel"].shape[2]),
        "classes": int(layers["predictions"]["kernel"].shape[1])
        if "predictions" in layers else 0,
        "spec": spec.to_config(),
    }
    formats.write_converted(dst, layers, metadata)
    return metadata
