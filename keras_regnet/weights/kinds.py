"""The kinds of weights files, one entry each: how a file of that kind is
summarised (cheaply, before a model is built), read whole, and turned into
the `AnyNetSpec` of the network it holds."""

import dataclasses
from typing import Callable

from keras_regnet.design.spec import AnyNetSpec
from keras_regnet.weights import formats, mapping
from keras_regnet.weights.imagenet import canonical_name
from keras_regnet.weights.loading import infer_spec, name_saved_arrays

# What each family of weights was trained with.
KERAS2 = {"padding": "same", "preprocessing": "rescale"}
PYTORCH = {"padding": "symmetric", "preprocessing": "imagenet"}


@dataclasses.dataclass(frozen=True)
class WeightsKind:
    """How one kind of weights file is read.

    Attributes:
        conventions: the padding and preprocessing its weights expect,
            unless `summary` tells otherwise.
        summary: `(path, model_name) -> dict` with `channels` and `top`
            (classes of the top, 0 without one, None if unknown before the
            arrays are read) and, where the file tells, `padding` and
            `preprocessing`; reads no arrays.
        read: `(path, model) -> (layer dict, origins, description)`.
        spec: `path -> AnyNetSpec` of the network the file holds.
    """

    conventions: dict
    summary: Callable
    read: Callable
    spec: Callable


def _layer_name_summary(names, stem, top):
    """What a file saved from one of our models says about itself."""
    # Only symmetric padding adds `*_pad` layers (before strided convs).
    return {"padding": "symmetric" if any(n.endswith("_pad") for n in names) else "same",
            "preprocessing": "imagenet" if "normalization" in names else "rescale",
            "channels": stem[2] if stem else None, "top": top[1] if top else 0}


def _spec_from_arrays(kind):
    return lambda path: infer_spec(read_layers(path, kind)[0])


def _read_keras2(path, model):
    layers, origins = formats.read_keras2(path)
    return layers, origins, f"the Keras 2 weights file {path!r}"


def _converted_summary(path, model_name):
    meta = formats.read_converted_metadata(path)
    ours = canonical_name(model_name)
    if meta["model"] and ours and ours != meta["model"]:
        raise ValueError(f"Invalid `weights`: {path!r} holds weights for "
                         f"{meta['model']}, not {ours}.")
    return {"padding": meta["padding"], "preprocessing": meta["preprocessing"],
            "channels": meta["channels"], "top": meta["classes"]}


def _read_converted(path, model):
    layers, meta = formats.read_converted(path)
    return layers, {}, f"the converted {meta['source']} file {path!r}"


def _read_native(path, model):
    layers = name_saved_arrays(model, formats.read_native(path))
    return layers, {}, f"the Keras 3 weights file {path!r}"


def _native_spec(path):
    raise ValueError(f"Invalid `path`: {path!r}. Native Keras 3 files store no "
                     "architecture this function can read; rebuild the model instead.")


def _safetensors_summary(path, model_name):
    header, _ = formats.safetensors_header(path)
    stem = next((header[k]["shape"] for k in ("stem.conv.weight", "stem.0.weight")
                 if k in header), None)
    top = next((header[k]["shape"][0] for k in ("head.fc.weight", "fc.weight")
                if k in header), 0)
    return {"channels": stem[1] if stem else None, "top": top}


def _torch_summary(path, model_name):
    formats.check_torch(path)
    return {"channels": None, "top": None}


def _read_state_dict(path, model):
    state = formats.read_state_dict(path)
    source = mapping.detect_source(state, path)
    layers, origins = mapping.from_state_dict(state, source)
    return layers, origins, f"the {source} checkpoint {path!r}"


def _torch_spec(path):
    formats.check_torch(path, "path")
    return _spec_from_arrays("torch")(path)


KINDS = {
    "keras2": WeightsKind(
        KERAS2, lambda path, _: _layer_name_summary(*formats.keras2_summary(path)),
        _read_keras2, _spec_from_arrays("keras2")),
    "converted": WeightsKind(
        PYTORCH, _converted_summary, _read_converted,
        lambda path: AnyNetSpec.from_config(formats.read_converted_metadata(path)["spec"])),
    "native": WeightsKind(
        KERAS2, lambda path, _: _layer_name_summary(*formats.native_summary(path)),
        _read_native, _native_spec),
    "safetensors": WeightsKind(PYTORCH, _safetensors_summary, _read_state_dict,
                               _spec_from_arrays("safetensors")),
    "torch": WeightsKind(PYTORCH, _torch_summary, _read_state_dict, _torch_spec),
}


def read_layers(path, kind, model=None):
    """`(layer dict, origins, description)` of a weights file of `kind`,
    every array read and finite. A native file's arrays are named after
    `model`'s."""
    layers, origins, what = KINDS[kind].read(path, model)
    formats.check_finite(path, layers, origins)
    return layers, origins, what
