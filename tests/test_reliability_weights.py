"""Bad inputs to the weights API and the convert command: each is refused
with a clear error naming the argument or file and what is allowed, and
nothing of the user's is lost."""

import json
import os
import struct
import subprocess
import sys
import zipfile

import h5py
import numpy as np
import pytest
from safetensors.numpy import save_file

import keras_regnet
from keras_regnet.files import MARKER_FILE
from keras_regnet.models import inference
from keras_regnet.weights import convert, fetch, file_spec, formats, resolve

TINY = dict(depth=2, w0=16, wa=16.0, wm=2.0, group_width=8, stem_type="cifar",
            input_shape=(16, 16, 3), classes=3)
X = np.random.default_rng(0).uniform(0, 255, (2, 16, 16, 3)).astype("float32")
SHA = "0" * 64


def tiny(**kwargs):
    return keras_regnet.RegNet(**{**TINY, **kwargs})


def randomize(model, seed):
    """Random weights and BN statistics, so that outputs show every array."""
    rng = np.random.default_rng(seed)
    for v in model.weights:
        low = 0.5 if "variance" in v.name or "gamma" in v.name else -0.5
        v.assign(rng.uniform(low, 1.0, v.shape).astype("float32"))
    return model


def layer_dict(model):
    return {layer.name: {v.name: np.asarray(v) for v in layer.weights}
            for layer in model.layers if layer.weights}


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Weights files of tiny models, written once."""
    root = tmp_path_factory.mktemp("weights")
    paths = {}
    x = randomize(tiny(), 1)
    for name in ("x.weights.h5", "x.keras", "x_legacy.h5"):
        paths[name] = str(root / name)
        (x.save_weights if name.endswith(".weights.h5") else x.save)(paths[name])
    paths["x_notop.weights.h5"] = str(root / "x_notop.weights.h5")
    tiny(include_top=False).save_weights(paths["x_notop.weights.h5"])
    y = tiny(se_ratio=0.25)
    for name in ("y.keras", "y.weights.h5"):
        paths[name] = str(root / name)
        (y.save_weights if name.endswith(".weights.h5") else y.save)(paths[name])
    paths["x_converted.h5"] = str(root / "x_converted.h5")
    formats.write_converted(paths["x_converted.h5"], layer_dict(x), {
        "source": "pycls", "model": "", "padding": "symmetric",
        "preprocessing": "imagenet", "channels": 3, "classes": 3,
        "spec": x_spec().to_config()})
    return paths, x


def x_spec():
    from keras_regnet.design import regnet_spec

    return regnet_spec(2, 16, 16.0, 2.0, 8, stem_type="cifar")


def damaged_copy(src, dst, change):
    with open(src, "rb") as f:
        data = bytearray(f.read())
    change(data)
    with open(dst, "wb") as f:
        f.write(data)
    return str(dst)


def set_array(path, layer, index, value):
    """Writes `value` into array `index` of `layer` of a native file."""
    with h5py.File(path, "r+") as f:
        for group in f["layers"].values():
            if group["vars"].attrs.get("name") == layer:
                data = group["vars"][str(index)]
                data[(0,) * data.ndim] = value


def refused(words, call, error=ValueError):
    with pytest.raises(error) as e:
        call()
    message = str(e.value)
    for word in words:
        assert word in message, (word, message)
    assert "\n" not in message
    return message


# -- the `weights` argument of the model constructors ------------------------------

def test_bad_weights_values(tmp_path):
    (tmp_path / "folder.h5").mkdir()
    refused(["`weights`", "3", "None, 'imagenet' or the path"], lambda: tiny(weights=3))
    refused(["`weights`", "'imagenett'", "does not exist"],
            lambda: tiny(weights="imagenett"))
    refused(["`weights`", "folder.h5", "It is a folder", "path to a weights file"],
            lambda: tiny(weights=str(tmp_path / "folder.h5")))
    refused(["`weights`", "'imagenet'", "published models"],
            lambda: tiny(weights="imagenet"))
    refused(["`classes`", "10", "1000", "include_top=False"],
            lambda: resolve("imagenet", model_name="RegNetX002", classes=10))


@pytest.mark.parametrize("name, content, words", [
    ("notes.h5", b"some notes\n", ["`weights`", "not a weights file", ".weights.h5"]),
    ("notes.keras", b"some notes\n", ["`weights`", "not a weights file", ".keras"]),
    ("notes.pth", b"some notes\n", ["`weights`", "not a PyTorch checkpoint", "torch.save"]),
    ("empty.pth", b"", ["`weights`", "an empty file", "torch.save"]),
    ("garbage.pyth", bytes(range(1, 256)) * 8, ["`weights`", "not a PyTorch checkpoint"]),
    ("broken.pth", b"PK\x03\x04" + bytes(500), ["broken.pth", "damaged", "zip archive"]),
    ("notes.safetensors", b"some notes that go on\n", ["notes.safetensors", "damaged",
                                                       "header of"]),
    ("empty.safetensors", b"", ["empty.safetensors", "damaged", "has 0 bytes"]),
    ("badjson.safetensors", struct.pack("<Q", 5) + b"{oops", ["badjson.safetensors",
                                                             "damaged", "its header"]),
    ("noobj.safetensors", struct.pack("<Q", 2) + b"[]", ["not a JSON object"]),
], ids=lambda value: value if isinstance(value, str) else "")
def test_files_that_are_not_weights(tmp_path, name, content, words):
    path = tmp_path / name
    path.write_bytes(content)
    refused(words, lambda: resolve(str(path)))  # before any model is built
    refused(words, lambda: tiny(weights=str(path)))


def test_archives_and_files_of_other_models(tmp_path):
    import keras

    zipped = tmp_path / "other.keras"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("config.json", "{}")
    refused(["other.keras", "damaged", "no model.weights.h5"], lambda: resolve(str(zipped)))
    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2, name="dense")])
    plain.save_weights(str(tmp_path / "plain.weights.h5"))
    refused(["`include_top`", "no classification top"],
            lambda: tiny(weights=str(tmp_path / "plain.weights.h5")))
    refused(["plain.weights.h5", "no weights for layer 'stem_conv'"],
            lambda: tiny(weights=str(tmp_path / "plain.weights.h5"), include_top=False))


def test_truncated_and_damaged_safetensors(tmp_path):
    good = str(tmp_path / "good.safetensors")
    save_file({"stem.conv.weight": np.ones((32, 3, 3, 3), "float32")}, good)
    cut = damaged_copy(good, tmp_path / "cut.safetensors", lambda d: d.__delitem__(
        slice(len(d) - 100, None)))
    refused(["cut.safetensors", "damaged", "'stem.conv.weight'", "does not fit"],
            lambda: resolve(cut))
    nan = str(tmp_path / "nan.safetensors")
    save_file({"stem.conv.weight": np.full((32, 3, 3, 3), np.nan, "float32"),
               "s1.b1.f.a.weight": np.ones((16, 32, 1, 1), "float32")}, nan)
    refused(["nan.safetensors", "damaged", "NaN", "stem.conv (pycls)"],
            lambda: file_spec(nan))


def test_truncated_torch_checkpoint(tmp_path):
    torch = pytest.importorskip("torch")
    good = tmp_path / "good.pth"
    torch.save({"stem.conv.weight": torch.ones(32, 3, 3, 3)}, good)
    cut = damaged_copy(good, tmp_path / "cut.pth", lambda d: d.__delitem__(
        slice(len(d) // 2, None)))
    refused(["cut.pth", "damaged"], lambda: resolve(cut))


def test_native_file_with_random_bytes_written_into_it(files, tmp_path):
    paths, _ = files
    rng = np.random.default_rng(13)
    with h5py.File(paths["x.weights.h5"], "r") as f:  # where a kernel's data lies
        kernel = next(g["vars/0"] for g in f["layers"].values()
                      if g["vars"].attrs["name"] == "s2_b1_c_conv")
        in_data = kernel.id.get_offset()
    for name, at in (("middle", None), ("data", in_data)):
        def scribble(data):
            start = len(data) // 2 if at is None else at
            data[start:start + 4096] = rng.bytes(4096)

        bad = damaged_copy(paths["x.weights.h5"], tmp_path / f"{name}.weights.h5",
                           scribble)
        message = refused([f"{name}.weights.h5", "damaged"], lambda: tiny(weights=bad))
        assert "layer" in message


def test_native_file_with_a_nan_names_layer_and_array(files, tmp_path):
    paths, _ = files
    bad = damaged_copy(paths["x.weights.h5"], tmp_path / "nan.weights.h5", lambda d: None)
    set_array(bad, "s2_b1_b_bn", 3, np.inf)
    refused(["nan.weights.h5", "damaged", "'moving_variance'", "'s2_b1_b_bn'",
             "NaN or infinite"], lambda: tiny(weights=bad))


def test_truncated_native_and_converted_files(files, tmp_path):
    paths, _ = files
    for name in ("x.weights.h5", "x_converted.h5", "x_legacy.h5", "x.keras"):
        cut = damaged_copy(paths[name], tmp_path / name, lambda d: d.__delitem__(
            slice(len(d) * 2 // 3, None)))
        refused([name, "damaged" if name != "x.keras" else "not a weights file"],
                lambda: resolve(cut, classes=3))


def test_keras_archive_with_a_bad_crc(files, tmp_path):
    paths, _ = files

    def flip(data):
        with zipfile.ZipFile(paths["x.keras"]) as z:
            info = z.getinfo("model.weights.h5")
        at = info.header_offset + 30 + len(info.filename) + info.file_size // 2
        data[at:at + 64] = bytes(64)

    bad = damaged_copy(paths["x.keras"], tmp_path / "bad.keras", flip)
    refused(["bad.keras", "damaged", "CRC"], lambda: tiny(weights=bad))


def test_converted_and_legacy_files_with_nan(files, tmp_path):
    paths, _ = files
    conv = damaged_copy(paths["x_converted.h5"], tmp_path / "c.h5", lambda d: None)
    with h5py.File(conv, "r+") as f:
        f["s1_b1_a_conv/kernel"][0, 0, 0, 0] = np.nan
    refused(["c.h5", "damaged", "'kernel'", "'s1_b1_a_conv'"],
            lambda: keras_regnet.AnyNet(x_spec(), weights=conv, classes=3,
                                        input_shape=(16, 16, 3)))
    legacy = damaged_copy(paths["x_legacy.h5"], tmp_path / "l.h5", lambda d: None)
    with h5py.File(legacy, "r+") as f:
        f["model_weights/predictions/predictions/bias"][0] = -np.inf
    refused(["l.h5", "damaged", "'bias'", "'predictions'"], lambda: tiny(weights=legacy))


def test_converted_file_with_damaged_metadata(files, tmp_path):
    paths, _ = files
    conv = damaged_copy(paths["x_converted.h5"], tmp_path / "m.h5", lambda d: None)
    with h5py.File(conv, "r+") as f:
        f.attrs["padding"] = "{not json"
    refused(["m.h5", "damaged", "metadata"], lambda: resolve(conv, classes=3))
    with h5py.File(conv, "r+") as f:
        del f.attrs["padding"]
    refused(["m.h5", "damaged", "lacks ['padding']"], lambda: resolve(conv, classes=3))


# -- native files get the structural check ------------------------------------------

def test_y_file_into_x_model_is_refused_not_partly_loaded(files):
    paths, _ = files
    for name in ("y.keras", "y.weights.h5"):
        message = refused([name, "'s1_b1_se_reduce'", "fits no layer",
                           "The file has y blocks", "the model has x blocks"],
                          lambda: tiny(weights=paths[name]))
        assert "Keras 3 weights file" in message


def test_published_y002_keras_file_into_x002(tmp_path):
    path = str(tmp_path / "regnety002.keras")
    keras_regnet.RegNetY002(weights=None, input_shape=(32, 32, 3)).save(path)
    refused(["regnety002.keras", "se_reduce", "fits no layer of model 'regnetx002'"],
            lambda: keras_regnet.RegNetX002(weights=path, input_shape=(32, 32, 3)))


def test_native_top_and_channels_are_checked_before_building(files):
    paths, _ = files
    refused(["`classes`", "5", "has 3 classes"],
            lambda: resolve(paths["x.keras"], classes=5))
    refused(["`include_top`", "no classification top"],
            lambda: resolve(paths["x_notop.weights.h5"], classes=3))
    refused(["`input_shape`", "3 channels"],
            lambda: tiny(weights=paths["x.weights.h5"], input_shape=(16, 16, 1)))


def test_native_files_of_our_models_load_exactly(files, tmp_path):
    paths, x = files
    expected = np.asarray(x(X, training=False))
    for name in ("x.weights.h5", "x.keras", "x_legacy.h5"):
        again = tiny(weights=paths[name])
        np.testing.assert_array_equal(np.asarray(again(X, training=False)), expected)
    notop = tiny(weights=paths["x.keras"], include_top=False)  # the top is left out
    assert np.asarray(notop(X)).shape == (2, 4, 4, 32)
    # PyTorch conventions (symmetric padding, ImageNet normalisation) survive
    # a native save of the converted model.
    conv = keras_regnet.AnyNet(x_spec(), weights=paths["x_converted.h5"], classes=3,
                               input_shape=(16, 16, 3))
    names = {layer.name for layer in conv.layers}
    assert "s2_b1_b_pad" in names and "normalization" in names
    native = str(tmp_path / "conv.keras")
    conv.save(native)
    plan = resolve(native, classes=3)
    assert (plan.kind, plan.padding, plan.preprocessing) == ("native", "symmetric",
                                                            "imagenet")
    again = keras_regnet.AnyNet(x_spec(), weights=native, classes=3,
                                input_shape=(16, 16, 3))
    np.testing.assert_array_equal(np.asarray(again(X, training=False)),
                                  np.asarray(conv(X, training=False)))


# -- convert(), file_spec(), fetch() ------------------------------------------------------

@pytest.fixture
def user(tmp_path):
    """A user's own file and folder, which must survive every refusal."""
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.txt").write_text("precious")
    (tmp_path / "mine.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(100))
    (tmp_path / "src.pth").write_text("not a checkpoint")
    save_file({"stem.conv.weight": np.ones((32, 3, 3, 3), "float32"),
               "s1.b1.f.a.weight": np.ones((16, 32, 1, 1), "float32")},
              str(tmp_path / "partial.safetensors"))
    (tmp_path / "empty.safetensors").write_bytes(b"")
    save_file({"conv.weight": np.ones(3, "float32")}, str(tmp_path / "alien.safetensors"))
    save_file({"stem.conv.weight": np.ones(3, "float32"),
               "s1.b1.f.a.weight": np.ones((16, 32, 1, 1), "float32")},
              str(tmp_path / "flat.safetensors"))
    return tmp_path


def _unchanged(root):
    assert (root / "mine" / "data.txt").read_text() == "precious"
    assert sorted(os.listdir(root / "mine")) == ["data.txt"]
    assert (root / "mine.h5").read_bytes() == b"\x89HDF\r\n\x1a\n" + bytes(100)
    assert not [n for n in os.listdir(root) if n.startswith(".")]


@pytest.mark.parametrize("kwargs, words", [
    (dict(src="missing.pth"), ["`src`", "missing.pth", "does not exist"]),
    (dict(src="mine"), ["`src`", "It is a folder", ".safetensors"]),
    (dict(src="mine.h5"), ["`src`", "mine.h5", "PyTorch checkpoint"]),
    (dict(src=3), ["`src`", "3", "PyTorch checkpoint"]),
    (dict(src="empty.safetensors"), ["empty.safetensors", "damaged"]),
    (dict(model="RegNetZ999"), ["`model`", "'RegNetZ999'", "RegNetY320"]),
    (dict(source="caffe"), ["`source`", "'caffe'", "pycls"]),
    (dict(dst="mine"), ["`dst`", "mine'", "is a folder that keras_regnet did not write"]),
    (dict(dst="mine.h5"), ["`dst`", "is an HDF5 file that keras_regnet did not write"]),
    (dict(dst="partial.safetensors"), ["`dst`", "is a binary file"]),
    (dict(dst="no/such/x.h5"), ["`dst`", "does not exist"]),
    (dict(dst=None), ["`dst`", "None", "Expected a path"]),
    (dict(src="alien.safetensors"), ["Unrecognised checkpoint", "alien.safetensors",
                                     "pycls, torchvision or timm"]),
    (dict(src="flat.safetensors"), ["'stem.conv.weight'", "shape (3,)", "4 dimensions"]),
    (dict(model="RegNetX002"), ["The checkpoint", "partial.safetensors",
                                "not a complete RegNet", "'s1_b1_b_conv'"]),
])
def test_bad_convert_arguments(user, kwargs, words):
    args = {"src": "partial.safetensors", "dst": "out.h5", **kwargs}
    args = {k: str(user / v) if k in ("src", "dst") and isinstance(v, str) else v
            for k, v in args.items()}
    refused(words, lambda: convert(**args))
    assert not os.path.exists(user / "out.h5")
    _unchanged(user)


def test_convert_refuses_a_checkpoint_with_nan(user):
    save_file({"stem.conv.weight": np.full((32, 3, 3, 3), np.nan, "float32"),
               "s1.b1.f.a.weight": np.ones((16, 32, 1, 1), "float32")},
              str(user / "nan.safetensors"))
    refused(["nan.safetensors", "damaged", "NaN"],
            lambda: convert(str(user / "nan.safetensors"), str(user / "out.h5")))
    assert not os.path.exists(user / "out.h5")


def test_bad_file_spec_arguments(files, tmp_path):
    paths, _ = files
    (tmp_path / "notes.h5").write_text("notes")
    refused(["`path`", "does not exist"], lambda: file_spec(str(tmp_path / "x.h5")))
    refused(["`path`", "None"], lambda: file_spec(None))
    refused(["`path`", "not a weights file"], lambda: file_spec(str(tmp_path / "notes.h5")))
    refused(["`path`", "Native Keras 3 files"], lambda: file_spec(paths["x.keras"]))


@pytest.mark.parametrize("kwargs, words", [
    (dict(fname="a/b.h5"), ["`fname`", "'a/b.h5'", "without folders"]),
    (dict(fname=""), ["`fname`", "''"]),
    (dict(sha256="xyz"), ["`sha256`", "'xyz'", "64 hex digits"]),
    (dict(sha256=7), ["`sha256`", "7", "64 hex digits or None"]),
    (dict(timeout=True), ["`timeout`", "True", "> 0"]),
    (dict(timeout=0), ["`timeout`", "0", "> 0"]),
    (dict(deadline=0), ["`deadline`", "0", "> 0, or None"]),
    (dict(deadline="10"), ["`deadline`", "'10'"]),
    (dict(directory="/no/such/cache"), ["`directory`", "'/no/such/cache'", "existing folder"]),
])
def test_bad_fetch_arguments(tmp_path, kwargs, words):
    args = {"url": "http://127.0.0.1:9/x.h5", "fname": "x.h5", "sha256": SHA,
            "directory": str(tmp_path), **kwargs}
    refused(words, lambda: fetch(**args))  # before any connection: port 9 is closed
    assert os.listdir(tmp_path) == []


# -- inference export ---------------------------------------------------------------------

def test_bad_export_arguments_and_user_folders_survive(tmp_path):
    model = tiny()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "data.txt").write_text("precious")
    (tmp_path / "model.txt").write_text("precious")
    refused(["`filepath`", "does not exist"],
            lambda: inference.export_inference(model, str(tmp_path / "no" / "x")))
    refused(["`filepath`", "is a folder that keras_regnet did not write", MARKER_FILE],
            lambda: inference.export_inference(model, str(tmp_path / "mine")))
    refused(["`filepath`", "is a text file"],
            lambda: inference.export_inference(model, str(tmp_path / "model.txt")))
    refused(["`filepath`", "Expected a path"],
            lambda: inference.export_inference(model, 3))
    refused(["`model`", "functional keras.Model"],
            lambda: inference.export_inference("RegNetX002", str(tmp_path / "e")))
    refused(["`dtype`", "'float16'", "bfloat16"],
            lambda: inference.inference_model(model, dtype="float16"))
    refused(["`batch_splits`", "0", ">= 1"],
            lambda: inference.inference_model(model, batch_splits=0))
    assert (tmp_path / "mine" / "data.txt").read_text() == "precious"
    assert (tmp_path / "model.txt").read_text() == "precious"
    assert sorted(os.listdir(tmp_path)) == ["mine", "model.txt"]


# -- the convert command ------------------------------------------------------------------

def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "keras_regnet.convert", *args],
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize("args, words", [
    (["missing.pth", "out.h5"], ["`src`", "does not exist"]),
    (["mine", "out.h5"], ["`src`", "It is a folder"]),
    (["src.pth", "out.h5"], ["`src`", "not a PyTorch checkpoint"]),
    (["empty.safetensors", "out.h5"], ["empty.safetensors", "damaged"]),
    (["partial.safetensors", "mine"], ["`dst`", "is a folder that keras_regnet did not write"]),
    (["partial.safetensors", "mine.h5"], ["`dst`", "keras_regnet did not write"]),
    (["partial.safetensors", "no/such.h5"], ["`dst`", "does not exist"]),
    (["partial.safetensors", "out.h5", "--model", "RegNetQ1"], ["`model`", "'RegNetQ1'"]),
    (["partial.safetensors", "out.h5", "--source", "caffe"], ["invalid choice: 'caffe'"]),
    (["partial.safetensors"], ["the following arguments are required: dst"]),
])
def test_cli_user_errors_are_one_line_and_exit_2(user, args, words):
    proc = subprocess.run(
        [sys.executable, "-m", "keras_regnet.convert", *args], cwd=user,
        capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for word in words:
        assert word in lines[0]
    assert not os.path.exists(user / "out.h5")
    _unchanged(user)


DISK_FULL = """
import errno, sys
import keras_regnet.weights.formats as formats

def full(path, *args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device", str(path))

formats.atomic_path = full
from keras_regnet.convert import main
sys.exit(main(sys.argv[1:]))
"""


def test_cli_fault_of_the_machine_is_one_line_and_exit_1(user):
    src, dst = user / "x.safetensors", user / "out.h5"
    save_file(torchvision_state(tiny_imagenet_stem()), src)
    proc = subprocess.run([sys.executable, "-c", DISK_FULL, str(src), str(dst)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.splitlines() == [
        f"error: No space left on device: {str(dst)!r}; nothing was written."]
    assert not dst.exists()


def test_cli_without_torch_says_how_to_get_it(user):
    blocker = user / "no_torch"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('no torch here')\n")
    torch_file = user / "model.pth"
    torch_file.write_bytes(b"PK\x03\x04")
    proc = run_cli(str(torch_file), str(user / "out.h5"),
                   env={"PYTHONPATH": str(blocker)})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error: ") and proc.stderr.count("\n") == 1
    assert "needs PyTorch" in proc.stderr and "pip install torch" in proc.stderr


def test_cli_replaces_only_its_own_output(user):
    args = [str(user / "x.safetensors"), str(user / "x.h5")]
    save_file(torchvision_state(tiny_imagenet_stem()), args[0])
    assert run_cli(*args).returncode == 0
    first = os.path.getmtime(args[1])
    proc = run_cli(*args)  # its own earlier output is replaced
    assert proc.returncode == 0, proc.stderr
    assert os.path.getmtime(args[1]) >= first
    assert file_spec(args[1]).widths == (16, 32)


def tiny_imagenet_stem():
    return keras_regnet.RegNet(2, 16, 16.0, 2.0, 8, input_shape=(32, 32, 3), classes=3)


def torchvision_state(model):
    """A model's weights as a torchvision RegNet state dict (X blocks)."""
    parts = {"proj_conv": "proj.0", "proj_bn": "proj.1", "a_conv": "f.a.0",
             "a_bn": "f.a.1", "b_conv": "f.b.0", "b_bn": "f.b.1",
             "c_conv": "f.c.0", "c_bn": "f.c.1"}
    params = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
              "moving_mean": "running_mean", "moving_variance": "running_var"}
    state = {}
    for layer in model.layers:
        for v in layer.weights:
            value = np.asarray(v)
            if v.name == "kernel":
                value = value.T if value.ndim == 2 else value.transpose(3, 2, 0, 1)
            if layer.name in ("stem_conv", "stem_bn", "predictions"):
                module = {"stem_conv": "stem.0", "stem_bn": "stem.1",
                          "predictions": "fc"}[layer.name]
            else:
                s, b, part = layer.name.split("_", 2)
                s, b = int(s[1:]), int(b[1:])
                module = f"trunk_output.block{s}.block{s}-{b - 1}.{parts[part]}"
            state[f"{module}.{params[v.name]}"] = np.ascontiguousarray(value, "float32")
    return state


def test_cli_help_does_not_import_keras():
    code = ("import runpy, sys\n"
            "sys.argv = ['convert', '--help']\n"
            "try:\n"
            "    runpy.run_module('keras_regnet.convert', run_name='__main__')\n"
            "except SystemExit as e:\n"
            "    assert e.code == 0\n"
            "heavy = [m for m in ('tensorflow', 'keras', 'torch', 'h5py') if m in sys.modules]\n"
            "print('heavy:', heavy)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "usage: python -m keras_regnet.convert" in proc.stdout
    assert "heavy: []" in proc.stdout
    code = ("import sys, keras_regnet.weights, keras_regnet.convert\n"
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=60)
    assert proc.stdout.split() == ["False", "False"], proc.stderr


# -- the data-loss reports -------------------------------------------------------------

def test_a_plot_never_replaces_a_search_folder(tmp_path):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from keras_regnet.files import atomic_path

    run = tmp_path / "runA"
    run.mkdir()
    (run / "search.json").write_text(json.dumps({"dataset": "cifar10"}))
    fig = plt.figure()
    with pytest.raises(ValueError, match="runA' is a folder that keras_regnet did not write"):
        with atomic_path(run, "--out") as tmp:
            fig.savefig(tmp)
    assert os.listdir(run) == ["search.json"]
    plot = tmp_path / "edf.png"
    for _ in range(2):  # our own plot is replaced
        with atomic_path(plot, "--out") as tmp:
            fig.savefig(tmp, format="png")
    plt.close(fig)
    assert sorted(os.listdir(tmp_path)) == ["edf.png", "runA"]
