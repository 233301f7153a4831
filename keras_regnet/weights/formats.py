"""Reading and writing the weight file formats.

- Keras 2 HDF5 (`tf_keras` `save_weights`/`save` to `.h5`, and the
  published ImageNet files): mapped by layer name structure. Keras 3's
  legacy `.h5` of our own models has the same layout, with our names.
- Converted files (this package's HDF5): our layer names plus metadata
  (source, padding, preprocessing, spec) readable before a model is built.
- Native Keras 3 files (`model.save_weights()` `.weights.h5`, `.keras`):
  arrays saved per layer in Keras' variable order, read by layer name.
- PyTorch checkpoints: `.safetensors` (read without torch) and
  `.pth`/`.pyth`/`.pt`/`.bin` (need torch).

Every reader refuses a damaged file (unreadable, truncated, garbage) with
a `ValueError` naming the file and, where it can, the first bad layer or
array; `check_finite` catches damage that leaves the file readable.
"""

import contextlib
import json
import os
import struct
import zipfile

import h5py
import numpy as np

from keras_regnet.files import atomic_path
from keras_regnet.weights.mapping import keras2_layer

FORMAT_ATTR = "keras_regnet_weights"
FORMAT_VERSION = 1
TORCH_SUFFIXES = (".pth", ".pyth", ".pt", ".bin")


def file_kind(path, argument="weights"):
    """One of `"converted"`, `"keras2"`, `"native"`, `"safetensors"`, `"torch"`.

    Raises:
        ValueError: the file is none of these, or a damaged HDF5 file.
    """
    lower = os.fspath(path).lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(TORCH_SUFFIXES):
        return "torch"
    if lower.endswith(".keras") and zipfile.is_zipfile(path):
        return "native"
    if h5py.is_hdf5(path):
        with _intact(path), h5py.File(path, "r") as f:
            if FORMAT_ATTR in f.attrs:
                return "converted"
            if "layer_names" in _keras2_root(f).attrs:
                return "keras2"
            if "layers" in f:
                return "native"
    raise ValueError(
        f"Invalid `{argument}`: {os.fspath(path)!r} is not a weights file this "
        "package reads. Expected a Keras 3 weights file (.weights.h5, "
        ".keras), a Keras 2 RegNet .h5 file, a file written by "
        "`python -m keras_regnet.convert`, or a PyTorch RegNet checkpoint "
        "(.safetensors, .pth, .pyth).")


# What reading a damaged file raises, besides our own ValueErrors.
_DAMAGE = (OSError, KeyError, RuntimeError, EOFError, IndexError, struct.error,
           zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError)


@contextlib.contextmanager
def _intact(path, where=""):
    """Turns what reading a damaged file raises into a `ValueError`."""
    try:
        yield
    except _DAMAGE as e:
        raise damaged(path, f"cannot read {where or 'it'} ({type(e).__name__}: "
                            f"{e})") from None


def damaged(path, detail):
    """The `ValueError` for a damaged weights file."""
    return ValueError(
        f"The file {os.fspath(path)!r} is damaged or not what its name says: "
        f"{detail}. Expected an intact weights file; download, save or "
        "convert it again.")


def check_finite(path, layers, origins=None):
    """Raises `damaged` for the first array with NaN or infinite values.

    Random bytes written over stored weights usually make some of them
    non-finite; HDF5 keeps no checksum of the data to tell otherwise.
    """
    origins = origins or {}
    for name, arrays in layers.items():
        for var, array in arrays.items():
            if array.dtype.kind in "fc" and not np.isfinite(array).all():
                raise damaged(path, f"array {var!r} of layer "
                                    f"{origins.get(name, name)!r} holds NaN or "
                                    "infinite values")


def _keras2_root(f):
    return f["model_weights"] if "model_weights" in f else f


# -- Keras 2 -----------------------------------------------------------------

def read_keras2(path):
    """Reads a Keras 2 RegNet HDF5 file as `(layer dict, origins)`.

    Raises:
        ValueError: naming the first layer with weights that is not a layer
            of a Keras 2 RegNetX/Y.
    """
    layers, origins = {}, {}
    with _intact(path), h5py.File(path, "r") as f:
        root = _keras2_root(f)
        for name in _strings(root.attrs["layer_names"]):
            with _intact(path, f"layer {name!r}"):
                group = root[name]
                weight_names = _strings(group.attrs.get("weight_names", []))
            if not weight_names:
                continue
            ours = keras2_layer(name)
            if ours is None:
                raise ValueError(
                    f"Layer {name!r} of the Keras 2 file {path!r} is not a "
                    "layer of a Keras 2 RegNetX/Y (stem, X/Y block or "
                    "head); cannot map it.")
            arrays = {}
            for w in weight_names:
                with _intact(path, f"array {w!r} of layer {name!r}"):
                    arrays[w.split("/")[-1].split(":")[0]] = np.asarray(group[w])
            layers[ours] = arrays
            origins[ours] = name
    return layers, origins


def keras2_summary(path):
    """A Keras 2 format file's layer names and the shapes of its stem kernel
    and top kernel (None if absent): `(names, stem, top)`."""
    stem = top = None
    with _intact(path), h5py.File(path, "r") as f:
        root = _keras2_root(f)
        names = _strings(root.attrs["layer_names"])
        for name in names:
            ours = keras2_layer(name)
            if ours in ("stem_conv", "predictions"):
                kernel = [w for w in _strings(root[name].attrs["weight_names"])
                          if "kernel" in w]
                shape = root[name][kernel[0]].shape
                stem, top = (shape, top) if ours == "stem_conv" else (stem, shape)
    return names, stem, top


def _strings(values):
    return [v.decode("utf8") if isinstance(v, bytes) else str(v)
            for v in values]


# -- converted files -----------------------------------------------------------

def write_converted(path, layers, metadata):
    """Writes a layer dict and its metadata; atomic (temp file + rename)."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.attrs[FORMAT_ATTR] = FORMAT_VERSION
        for key, value in metadata.items():
            f.attrs[key] = json.dumps(value)
        for name, arrays in layers.items():
            group = f.create_group(name)
            for var, array in arrays.items():
                group.create_dataset(var, data=array)


_METADATA = ("source", "model", "padding", "preprocessing", "channels",
             "classes", "spec")


def read_converted_metadata(path):
    """A converted file's metadata (what `write_converted` was given)."""
    with _intact(path, "its metadata"), h5py.File(path, "r") as f:
        meta = {k: json.loads(v) for k, v in f.attrs.items() if k != FORMAT_ATTR}
    missing = [k for k in _METADATA if k not in meta]
    if missing:
        raise damaged(path, f"its metadata lacks {missing}")
    if (meta["padding"] not in ("same", "symmetric")
            or meta["preprocessing"] not in ("rescale", "imagenet")
            or not all(isinstance(meta[k], int) for k in ("channels", "classes"))):
        raise damaged(path, "its metadata has unknown values "
                            f"{ {k: meta[k] for k in _METADATA[2:6]} }")
    return meta


def read_converted(path):
    """A converted file's `(layer dict, metadata)`."""
    layers = {}
    with _intact(path), h5py.File(path, "r") as f:
        for name, group in f.items():
            if not isinstance(group, h5py.Group):
                raise damaged(path, f"{name!r} is not a layer group")
            layers[name] = {}
            for var, data in group.items():
                with _intact(path, f"array {var!r} of layer {name!r}"):
                    layers[name][var] = np.asarray(data)
    return layers, read_converted_metadata(path)


# -- native Keras 3 files ------------------------------------------------------

@contextlib.contextmanager
def _native_h5(path, verify=False):
    """The open HDF5 weights of a `.weights.h5` or `.keras` file; `verify`
    first reads a `.keras` file's weights through, checking their CRC."""
    with _intact(path):
        if not zipfile.is_zipfile(path):
            with h5py.File(path, "r") as f:
                yield f
            return
        with zipfile.ZipFile(path) as z:
            if "model.weights.h5" not in z.namelist():
                raise damaged(path, "the .keras archive has no model.weights.h5")
            if verify:
                with z.open("model.weights.h5") as data:
                    while data.read(1 << 20):
                        pass
            with z.open("model.weights.h5") as data, h5py.File(data, "r") as f:
                yield f


def _native_groups(path, f):
    """`{layer name: its "vars" group}` of an open native weights file."""
    with _intact(path, "its list of layers"):
        keys = list(f.get("layers", {}))
    groups = {}
    for key in keys:
        with _intact(path, f"the weights group layers/{key}"):
            group = f["layers"][key]
            nested = [sub for sub, child in group.items() if sub != "vars"
                      and _holds_data(child)]
            name = group["vars"].attrs.get("name") if "vars" in group else ""
        if nested:
            raise ValueError(
                f"{os.fspath(path)!r} holds weights of a nested layer "
                f"(layers/{key}/{nested[0]}), which no keras_regnet model has.")
        if name is None:
            raise ValueError(
                f"{os.fspath(path)!r} saves layers/{key} without its layer "
                "name; re-save it with the current Keras.")
        if name in groups:
            raise damaged(path, f"it holds layer {name!r} twice")
        if name:
            groups[name] = group["vars"]
    return groups


def _holds_data(obj):
    return isinstance(obj, h5py.Dataset) or bool(
        obj.visititems(lambda _, o: isinstance(o, h5py.Dataset) or None))


def native_summary(path):
    """A native file's layer names and the shapes of its stem kernel and top
    kernel (None if absent): `(names, stem, top)`."""
    with _native_h5(path) as f:
        groups = _native_groups(path, f)
        shapes = {name: group["0"].shape for name, group in groups.items()
                  if name in ("stem_conv", "predictions") and "0" in group}
    return set(groups), shapes.get("stem_conv"), shapes.get("predictions")


def read_native(path):
    """A native file's arrays: `{layer name: {"0": array, "1": ...}}`, the
    keys being Keras' save order (see `loading.name_saved_arrays`)."""
    layers = {}
    with _native_h5(path, verify=True) as f:
        for name, group in _native_groups(path, f).items():
            if sorted(group) != sorted(map(str, range(len(group)))):
                raise damaged(path, f"layer {name!r} has arrays {sorted(group)}")
            arrays = {}
            for i in range(len(group)):
                with _intact(path, f"array {i} of layer {name!r}"):
                    arrays[str(i)] = np.asarray(group[str(i)])
            if arrays:
                layers[name] = arrays
    return layers


# -- PyTorch checkpoints -------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def safetensors_header(path):
    """The JSON header of a `.safetensors` file (name -> dtype/shape/offsets)
    and where its data starts; every entry is checked against the file."""
    size = os.path.getsize(path)
    with _intact(path, "its header"), open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise damaged(path, f"it has {size} bytes, too few for a "
                                ".safetensors header")
        n = struct.unpack("<Q", prefix)[0]
        if n + 8 > size:
            raise damaged(path, f"its first 8 bytes give a header of {n} "
                                f"bytes; the file has {size} bytes")
        header = json.loads(f.read(n))
    if not isinstance(header, dict):
        raise damaged(path, "its header is not a JSON object")
    header.pop("__metadata__", None)
    for name, info in header.items():
        try:
            dtype, shape, (begin, end) = (info["dtype"], info["shape"],
                                          info["data_offsets"])
            count = int(np.prod(shape, dtype=np.int64))
            fits = (all(isinstance(d, int) and d >= 0 for d in shape)
                    and 0 <= begin <= end <= size - 8 - n)
        except (TypeError, KeyError, ValueError):
            raise damaged(path, f"its header entry for {name!r} is not "
                                "dtype/shape/data_offsets") from None
        if dtype not in _SAFETENSORS_DTYPES and dtype != "BF16":
            raise ValueError(
                f"Tensor {name!r} of {path!r} has dtype {dtype}, expected "
                f"one of {sorted(_SAFETENSORS_DTYPES) + ['BF16']}.")
        itemsize = 2 if dtype == "BF16" else np.dtype(_SAFETENSORS_DTYPES[dtype]).itemsize
        if not fits or end - begin != count * itemsize:
            raise damaged(path, f"tensor {name!r} ({dtype} {shape}) does not "
                                f"fit its bytes {begin}..{end} of the "
                                f"{size - 8 - n} data bytes")
    return header, 8 + n


def read_safetensors(path):
    """Reads a `.safetensors` file into numpy arrays, without torch."""
    header, offset = safetensors_header(path)
    tensors = {}
    with _intact(path), open(path, "rb") as f:
        for name, info in header.items():
            begin, end = info["data_offsets"]
            f.seek(offset + begin)
            raw = np.frombuffer(f.read(end - begin), np.uint8)
            if info["dtype"] == "BF16":
                # bfloat16 is the upper half of a float32.
                array = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
            else:
                array = raw.view(_SAFETENSORS_DTYPES[info["dtype"]])
            tensors[name] = array.reshape(info["shape"])
    return tensors


def check_torch(path, argument="weights"):
    """Cheaply checks that `path` can be a PyTorch checkpoint: `torch.save`'s
    zip archive (with its `data.pkl`) or a legacy pickle, and that torch,
    needed to read it, is there."""
    require_torch(path)
    with _intact(path), open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":
        return
    if head == b"PK":
        with _intact(path, "its zip archive"), zipfile.ZipFile(path) as z:
            if any(n.endswith("data.pkl") for n in z.namelist()):
                return
    raise ValueError(
        f"Invalid `{argument}`: {os.fspath(path)!r} is "
        f"{'an empty file' if not head else 'not a PyTorch checkpoint'}. "
        "Expected a file written by torch.save (.pth, .pyth, .pt, .bin) or a "
        ".safetensors file.")


def require_torch(path):
    """Imports torch, or says how to get it for reading `path`."""
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Reading {os.fspath(path)!r} needs PyTorch: `pip install "
            "torch==2.13.0` (CPU build), or convert the checkpoint to "
            ".safetensors, which reads without torch.") from e
    return torch


def read_torch(path):
    """Reads a PyTorch checkpoint's state dict as numpy arrays (needs torch).

    Accepts a bare state dict or a training checkpoint that wraps one
    (pycls' `"model_state"`, `"state_dict"`, `"model"`); strips a
    `"module."` prefix. Loads with `weights_only=True`: no pickled code runs.
    """
    torch = require_torch(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises many kinds for damaged files
        first = (str(e).strip().splitlines() or [""])[0]
        raise damaged(path, "torch.load (weights_only=True) cannot read it "
                            f"({type(e).__name__}: {first})") from None
    for key in ("model_state", "state_dict", "model"):
        while isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{os.fspath(path)!r} holds no state dict.")
    return {k.removeprefix("module."): v.detach().float().numpy()
            if v.is_floating_point() else v.numpy()
            for k, v in state.items() if isinstance(v, torch.Tensor)}


def read_state_dict(path):
    """A PyTorch checkpoint (`.safetensors`, `.pth`, ...) as numpy arrays."""
    if os.fspath(path).lower().endswith(".safetensors"):
        return {k.removeprefix("module."): v
                for k, v in read_safetensors(path).items()}
    return read_torch(path)
