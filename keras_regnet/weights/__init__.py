"""Pretrained weights: resolving a `weights` argument, loading, converting.

Model builders call `resolve()` before building (cheap checks, and the
padding and preprocessing the weights need), then `plan.load(model)`.
"""

import os

from keras_regnet.design.spec import AnyNetSpec
from keras_regnet.design.zoo import MODEL_NAMES
from keras_regnet.weights import formats, imagenet, mapping
from keras_regnet.weights.conversion import convert
from keras_regnet.weights.download import DownloadError, cache_dir, fetch
from keras_regnet.weights.loading import assign, infer_spec, name_saved_arrays

# What each kind of weights was trained with.
KERAS2 = {"padding": "same", "preprocessing": "rescale"}
PYTORCH = {"padding": "symmetric", "preprocessing": "imagenet"}

__all__ = ["WeightsPlan", "resolve", "convert", "file_spec", "fetch",
           "cache_dir", "DownloadError", "assign", "infer_spec"]


class WeightsPlan:
    """What a `weights` argument needs from the model and how to load it.

    Attributes:
        kind: None (random initialisation), `"imagenet"`, or the file kind
            (`"keras2"`, `"converted"`, `"native"`, `"safetensors"`,
            `"torch"`).
        path: the weights file, if any.
        padding: `"same"` (Keras convention) or `"symmetric"` (PyTorch's).
        preprocessing: `"rescale"` (x / 255) or `"imagenet"` (x / 255, then
            ImageNet mean/std normalisation, RGB).
        channels: input channels the weights require, or None.
    """

    def __init__(self, kind=None, path=None, padding="same",
                 preprocessing="rescale", channels=None, model_name=None,
                 include_top=True):
        self.kind = kind
        self.path = path
        self.padding = padding
        self.preprocessing = preprocessing
        self.channels = channels
        self.model_name = model_name
        self.include_top = include_top

    def load(self, model):
        """Loads the weights into `model` (downloading them if needed)."""
        if self.kind is None:
            return
        path = self.path
        if self.kind == "imagenet":
            fname, url, sha256 = imagenet.imagenet_file(
                self.model_name, self.include_top)
            path = fetch(url, fname, sha256)
        assign(model, *_read_layers(path, self.kind, model))

    def __repr__(self):
        return (f"WeightsPlan(kind={self.kind!r}, path={self.path!r}, "
                f"padding={self.padding!r}, "
                f"preprocessing={self.preprocessing!r})")


def resolve(weights, model_name=None, include_top=True, classes=1000):
    """Checks a `weights` argument and returns its `WeightsPlan`.

    Cheap: reads a file's header and layout (no arrays), never downloads.
    Damaged arrays are found when `plan.load` reads them, before anything
    is assigned.

    Args:
        weights: None, `"imagenet"`, or the path to a weights file: a
            Keras 3 `.weights.h5`/`.keras` file, a Keras 2 RegNet `.h5`
            file, a file written by `keras_regnet.convert`, or a pycls,
            torchvision or timm checkpoint (`.safetensors`, `.pth`, `.pyth`).
        model_name: name of the published model being built (e.g.
            `"RegNetY016"`), or None for other networks.
        include_top: whether the model has the classification top.
        classes: size of that top.

    Raises:
        ValueError: an unknown `weights` value, a missing, unreadable or
            damaged file, ImageNet weights for a non-published model, or a
            `classes` that the weights' top does not have.
        ImportError: a `.pth`/`.pyth` checkpoint, and torch is missing.
    """
    if weights is None:
        return WeightsPlan()
    if isinstance(weights, str) and weights == "imagenet":
        if imagenet.canonical_name(model_name) is None:
            raise ValueError(
                "Invalid `weights`: 'imagenet'. ImageNet weights exist only "
                f"for the published models {MODEL_NAMES}, not for "
                f"{model_name or 'a custom RegNet/AnyNet'}; use weights=None "
                "or the path to a weights file.")
        _check_top(include_top, classes, 1000, "the ImageNet weights")
        return WeightsPlan("imagenet", None, channels=3, model_name=model_name,
                           include_top=include_top, **KERAS2)
    path = _existing_file(weights, "weights",
                          "None, 'imagenet' or the path to a weights file")
    kind = formats.file_kind(path)
    plan = WeightsPlan(kind, path, model_name=model_name,
                       include_top=include_top,
                       **(KERAS2 if kind == "keras2" else PYTORCH))
    top = None
    if kind == "keras2":
        names, stem, top = formats.keras2_summary(path)
        _conventions_from_names(plan, names)
        plan.channels = stem[2] if stem else None
        top = top[1] if top else 0
    elif kind == "converted":
        meta = formats.read_converted_metadata(path)
        plan.padding, plan.preprocessing = meta["padding"], meta["preprocessing"]
        plan.channels, top = meta["channels"], meta["classes"]
        ours = imagenet.canonical_name(model_name)
        if meta["model"] and ours and ours != meta["model"]:
            raise ValueError(
                f"Invalid `weights`: {path!r} holds weights for "
                f"{meta['model']}, not {ours}.")
    elif kind == "safetensors":
        plan.channels, top = _safetensors_shapes(path)
    elif kind == "torch":
        formats.check_torch(path)
    else:
        names, stem, top = formats.native_summary(path)
        _conventions_from_names(plan, names)
        plan.channels = stem[2] if stem else None
        top = top[1] if top else 0
    if top is not None:
        _check_top(include_top, classes, top, path)
    return plan


def file_spec(path):
    """The `AnyNetSpec` of the network a weights file holds.

    For a converted file it is stored in the file; for Keras 2 files and
    PyTorch checkpoints it is read off the tensor shapes (stem type and
    strides cannot be seen in weights; the ImageNet stem and stride 2 are
    assumed). Use it to build a variant, e.g. a torchvision RegNet whose
    widths differ from the paper's:
    `keras_regnet.AnyNet(file_spec(path), weights=path)`.
    """
    path = _existing_file(path, "path", "the path to a weights file")
    kind = formats.file_kind(path, "path")
    if kind == "converted":
        return AnyNetSpec.from_config(
            formats.read_converted_metadata(path)["spec"])
    if kind == "native":
        raise ValueError(
            f"Invalid `path`: {path!r}. Native Keras 3 files store no "
            "architecture this function can read; rebuild the model instead.")
    if kind == "torch":
        formats.check_torch(path, "path")
    return infer_spec(_read_layers(path, kind)[0])


def _existing_file(path, argument, expected):
    """`path` as a string, if it names an existing file."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Invalid `{argument}`: {path!r}. Expected {expected}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        problem = ("It is a folder" if os.path.isdir(path)
                   else "The file does not exist")
        raise ValueError(f"Invalid `{argument}`: {path!r}. {problem}; "
                         f"expected {expected}.")
    return path


def _read_layers(path, kind, model=None):
    """`(layer dict, origins, description)` of a weights file, every array
    read and finite. A native file's arrays are named after `model`'s."""
    if kind in ("keras2", "imagenet"):
        layers, origins = formats.read_keras2(path)
        what = f"the Keras 2 weights file {path!r}"
    elif kind == "converted":
        layers, meta = formats.read_converted(path)
        origins, what = {}, f"the converted {meta['source']} file {path!r}"
    elif kind == "native":
        layers = name_saved_arrays(model, formats.read_native(path))
        origins, what = {}, f"the Keras 3 weights file {path!r}"
    else:
        state = formats.read_state_dict(path)
        source = mapping.detect_source(state, path)
        layers, origins = mapping.from_state_dict(state, source)
        what = f"the {source} checkpoint {path!r}"
    formats.check_finite(path, layers, origins)
    return layers, origins, what


def _conventions_from_names(plan, names):
    """Padding and preprocessing of a file saved from one of our models."""
    # Only symmetric padding adds `*_pad` layers (before strided convs).
    plan.padding = ("symmetric" if any(n.endswith("_pad") for n in names)
                    else "same")
    plan.preprocessing = "imagenet" if "normalization" in names else "rescale"


def _safetensors_shapes(path):
    header, _ = formats.safetensors_header(path)
    stem = next((header[k]["shape"] for k in ("stem.conv.weight",
                                              "stem.0.weight") if k in header),
                None)
    top = next((header[k]["shape"][0] for k in ("head.fc.weight", "fc.weight")
                if k in header), 0)
    return (stem[1] if stem else None), top


def _check_top(include_top, classes, top, what):
    if not include_top:
        return
    if not top:
        raise ValueError(
            f"Invalid `include_top`: True, but {what} has no classification "
            "top. Use include_top=False.")
    if classes != top:
        raise ValueError(
            f"Invalid `classes`: {classes!r}. The top of {what} has {top} "
            f"classes; pass classes={top}, or include_top=False to put your "
            "own head on the pretrained backbone.")
