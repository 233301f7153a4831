"""Reading and writing the weight file formats.

- Keras 2 HDF5 (`tf_keras` `save_weights`/`save` to `.h5`, and the
  published ImageNet files): mapped by layer name structure. Keras 3's
  legacy `.h5` of our own models has the same layout, with our names.
- Converted files (this package's HDF5): our layer names plus metadata
  (source, padding, preprocessing, spec) readable before a model is built.
- Native Keras 3 files (`model.save_weights()` `.weights.h5`, `.keras`):
  loaded by Keras itself.
- PyTorch checkpoints: `.safetensors` (read without torch) and
  `.pth`/`.pyth`/`.pt`/`.bin` (need torch).
"""

import json
import os
import pickle
import struct
import zipfile

import h5py
import numpy as np

from keras_regnet.files import atomic_path
from keras_regnet.weights.mapping import keras2_layer

FORMAT_ATTR = "keras_regnet_weights"
FORMAT_VERSION = 1
TORCH_SUFFIXES = (".pth", ".pyth", ".pt", ".bin")


def file_kind(path):
    """One of `"converted"`, `"keras2"`, `"native"`, `"safetensors"`, `"torch"`.

    Raises:
        ValueError: the file is none of these.
    """
    lower = os.fspath(path).lower()
    if lower.endswith(".safetensors"):
        return "safetensors"
    if lower.endswith(TORCH_SUFFIXES):
        return "torch"
    if lower.endswith(".keras") and zipfile.is_zipfile(path):
        return "native"
    if h5py.is_hdf5(path):
        with h5py.File(path, "r") as f:
            if FORMAT_ATTR in f.attrs:
                return "converted"
            if "layer_names" in _keras2_root(f).attrs:
                return "keras2"
            if "layers" in f:
                return "native"
    raise ValueError(
        f"Invalid `weights`: {os.fspath(path)!r} is not a weights file this "
        "package reads. Expected a Keras 3 weights file (.weights.h5, "
        ".keras), a Keras 2 RegNet .h5 file, a file written by "
        "`python -m keras_regnet.convert`, or a PyTorch RegNet checkpoint "
        "(.safetensors, .pth, .pyth).")


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
    with h5py.File(path, "r") as f:
        root = _keras2_root(f)
        for name in _strings(root.attrs["layer_names"]):
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
            layers[ours] = {
                w.split("/")[-1].split(":")[0]: np.asarray(group[w])
                for w in weight_names}
            origins[ours] = name
    return layers, origins


def keras2_summary(path):
    """A Keras 2 format file's layer names and the shapes of its stem kernel
    and top kernel (None if absent): `(names, stem, top)`."""
    stem = top = None
    with h5py.File(path, "r") as f:
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


def read_converted_metadata(path):
    with h5py.File(path, "r") as f:
        return {k: json.loads(v) for k, v in f.attrs.items() if k != FORMAT_ATTR}


def read_converted(path):
    """A converted file's `(layer dict, metadata)`."""
    with h5py.File(path, "r") as f:
        layers = {name: {var: np.asarray(data) for var, data in group.items()}
                  for name, group in f.items()}
    return layers, read_converted_metadata(path)


# -- native Keras 3 files ------------------------------------------------------

def native_layer_names(path):
    """Layer names saved in a Keras 3 `.weights.h5` or `.keras` file."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
        names = set()
        _collect_names(config, names)
        return names
    names = set()

    def visit(_, obj):
        if "name" in obj.attrs:
            names.add(obj.attrs["name"])

    with h5py.File(path, "r") as f:
        f.visititems(visit)
    return names


def _collect_names(node, names):
    if isinstance(node, dict):
        if isinstance(node.get("config"), dict) and "name" in node["config"]:
            names.add(node["config"]["name"])
        for value in node.values():
            _collect_names(value, names)
    elif isinstance(node, list):
        for value in node:
            _collect_names(value, names)


# -- PyTorch checkpoints -------------------------------------------------------

_SAFETENSORS_DTYPES = {
    "F64": "<f8", "F32": "<f4", "F16": "<f2", "I64": "<i8", "I32": "<i4",
    "I16": "<i2", "I8": "i1", "U8": "u1", "BOOL": "?"}


def safetensors_header(path):
    """The JSON header of a `.safetensors` file (name -> dtype/shape/offsets)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        prefix = f.read(8)
        n = struct.unpack("<Q", prefix)[0] if len(prefix) == 8 else size
        if n + 8 > size:
            raise ValueError(f"{path!r} is not a valid .safetensors file.")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header, 8 + n


def read_safetensors(path):
    """Reads a `.safetensors` file into numpy arrays, without torch."""
    header, offset = safetensors_header(path)
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=offset)
    tensors = {}
    for name, info in header.items():
        begin, end = info["data_offsets"]
        raw = data[begin:end]
        if info["dtype"] == "BF16":
            # bfloat16 is the upper half of a float32.
            array = (raw.view("<u2").astype(np.uint32) << 16).view(np.float32)
        elif info["dtype"] in _SAFETENSORS_DTYPES:
            array = raw.view(_SAFETENSORS_DTYPES[info["dtype"]])
        else:
            raise ValueError(
                f"Tensor {name!r} of {path!r} has dtype {info['dtype']}, "
                f"expected one of {sorted(_SAFETENSORS_DTYPES) + ['BF16']}.")
        tensors[name] = np.array(array).reshape(info["shape"])
    del data
    return tensors


def read_torch(path):
    """Reads a PyTorch checkpoint's state dict as numpy arrays (needs torch).

    Accepts a bare state dict or a training checkpoint that wraps one
    (pycls' `"model_state"`, `"state_dict"`, `"model"`); strips a
    `"module."` prefix. Loads with `weights_only=True`: no pickled code runs.
    """
    try:
        import torch
    except ImportError as e:
        raise ImportError(
            f"Reading {os.fspath(path)!r} needs PyTorch: `pip install "
            "torch==2.13.0` (CPU build), or convert the checkpoint to "
            ".safetensors, which reads without torch.") from e
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as e:
        raise ValueError(
            f"Cannot read {os.fspath(path)!r} as a PyTorch checkpoint of "
            f"tensors (torch.load with weights_only=True): {e}") from e
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
