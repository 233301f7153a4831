"""Pretrained weights: resolving a `weights` argument, loading, converting.

Model builders call `resolve()` before building (cheap checks, and the
padding and preprocessing the weights need), then `plan.load(model)`.
"""

from keras_regnet.design.zoo import MODEL_NAMES
from keras_regnet.files import existing_file
from keras_regnet.weights import formats, imagenet, kinds, timm_tags
from keras_regnet.weights.conversion import convert
from keras_regnet.weights.download import DownloadError, cache_dir, fetch
from keras_regnet.weights.loading import assign, infer_spec
from keras_regnet.weights.timm_tags import tags

__all__ = ["WeightsPlan", "resolve", "convert", "file_spec", "fetch",
           "cache_dir", "DownloadError", "assign", "infer_spec", "tags"]


class WeightsPlan:
    """What a `weights` argument needs from the model and how to load it.

    Attributes:
        kind: None (random initialisation), `"imagenet"`, `"tag"` (a timm
            weight tag), or the file kind
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
                 include_top=True, tag=None):
        self.kind = kind
        self.path = path
        self.padding = padding
        self.preprocessing = preprocessing
        self.channels = channels
        self.model_name = model_name
        self.include_top = include_top
        self.tag = tag

    @property
    def input_size(self):
        """The side the weights were trained at (the default input's)."""
        return self.tag.input_size if self.tag else 224

    def load(self, model):
        """Loads the weights into `model` (downloading them if needed)."""
        if self.kind is None:
            return
        path, kind = self.path, self.kind
        if kind == "tag":
            path, kind = timm_tags.fetch_tag(self.tag), "safetensors"
        if kind == "imagenet":
            fname, url, sha256 = imagenet.imagenet_file(
                self.model_name, self.include_top)
            path, kind = fetch(url, fname, sha256), "keras2"  # Keras 2's files
        assign(model, *kinds.read_layers(path, kind, model))

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
        weights: None, `"imagenet"`, a timm weight tag of the model (see
            `keras_regnet.weights.tags(model_name)`), or the path to a weights file: a
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
                           include_top=include_top, **kinds.KERAS2)
    tag = isinstance(weights, str) and timm_tags.find(model_name, weights)
    if tag:
        _check_top(include_top, classes, 1000, f"the {weights} weights")
        return WeightsPlan("tag", None, channels=3, model_name=model_name,
                           include_top=include_top, tag=tag, **kinds.PYTORCH)
    named = [t["tag"] for t in tags(model_name)]
    path = existing_file(weights, "weights", "None, 'imagenet'"
                         + (f", a timm tag of {model_name} ({', '.join(named)})"
                            if named else "") + " or the path to a weights file")
    kind = formats.file_kind(path)
    entry = kinds.KINDS[kind]
    found = entry.summary(path, model_name)
    top = found.pop("top")
    plan = WeightsPlan(kind, path, model_name=model_name, include_top=include_top,
                       **{**entry.conventions, **found})
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
    path = existing_file(path, "path", "the path to a weights file")
    return kinds.KINDS[formats.file_kind(path, "path")].spec(path)


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
