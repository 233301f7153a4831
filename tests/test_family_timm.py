"""The RegNet family beyond the paper (RegNetZ, RegNetV, the large RegNetY)
against its reference implementation, the `timm` package on CPU PyTorch:
the same parameter counts, and timm's state dict (random weights, random
BN statistics) loaded by our converter gives timm's logits.

timm imports torchvision for its data tools and `FrozenBatchNorm2d` only;
PyPI's torchvision wheels are CUDA builds that do not load beside the CPU
torch, so a stand-in module (any attribute is a placeholder class) takes
its place before timm is imported.
"""

import importlib.abc
import importlib.machinery
import sys
import types

import numpy as np
import pytest

import keras_regnet
from keras_regnet.design import complexity

TIMM_NAMES = {
    "RegNetZ005": "regnetz_005", "RegNetZ040": "regnetz_040",
    "RegNetZ040H": "regnetz_040_h", "RegNetV040": "regnetv_040",
    "RegNetV064": "regnetv_064", "RegNetY640": "regnety_640",
    "RegNetY1280": "regnety_1280", "RegNetY2560": "regnety_2560",
}
# Built and run; the large RegNetY (0.3-1.3 billion parameters) are
# compared by their parameter counts, timm's counted on the meta device.
RUN = ("RegNetZ005", "RegNetZ040", "RegNetZ040H", "RegNetV040", "RegNetV064")
SIZE = 80  # odd feature maps before the last stage: ceil-mode average pools


class _Placeholder(type):
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _StandIn(types.ModuleType):
    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return _Placeholder(name, (), {})


class _Finder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name == "torchvision" or name.startswith("torchvision."):
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
        return None

    def create_module(self, spec):
        return _StandIn(spec.name)

    def exec_module(self, module):
        module.__path__ = []


@pytest.fixture(scope="module")
def timm():
    pytest.importorskip("torch", reason="needs PyTorch (pip install torch==2.13.0)")
    if "torchvision" not in sys.modules:
        sys.meta_path.insert(0, _Finder())
    return pytest.importorskip("timm", reason="needs timm (the test extra installs it)")


@pytest.mark.parametrize("name", list(TIMM_NAMES))
def test_parameter_counts_equal_timm(timm, name):
    import torch

    with torch.device("meta"):
        reference = timm.create_model(TIMM_NAMES[name], pretrained=False)
    assert complexity(name)["params"] == sum(p.numel() for p in reference.parameters())


def _randomize(model, torch):
    """Random BN statistics and affine parameters (timm starts from 0 and 1,
    which would hide a mixed-up BN)."""
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                for tensor, (low, high) in ((module.weight, (0.5, 1.5)),
                                            (module.bias, (-0.2, 0.2)),
                                            (module.running_mean, (-0.2, 0.2)),
                                            (module.running_var, (0.5, 1.5))):
                    tensor.copy_(low + (high - low) * torch.rand(tensor.shape,
                                                                 generator=generator))


@pytest.mark.parametrize("name", RUN)
def test_logits_equal_timm(timm, tmp_path, name):
    import torch
    from safetensors.torch import save_file

    torch.manual_seed(0)
    reference = timm.create_model(TIMM_NAMES[name], pretrained=False, num_classes=7).eval()
    _randomize(reference, torch)
    path = str(tmp_path / f"{name}.safetensors")
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, path)

    x = np.random.default_rng(0).standard_normal((2, SIZE, SIZE, 3)).astype("float32")
    with torch.no_grad():
        expected = reference(torch.from_numpy(x.transpose(0, 3, 1, 2))).numpy()
    model = getattr(keras_regnet, name)(
        weights=path, input_shape=(SIZE, SIZE, 3), classes=7,
        classifier_activation=None, include_preprocessing=False)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


@pytest.fixture()
def hub(tmp_path, monkeypatch):
    """A stand-in for the Hugging Face hub on 127.0.0.1, serving the folder
    it returns; the Keras cache in a fresh folder."""
    import functools
    import http.server
    import threading

    from keras_regnet.weights import timm_tags

    root = tmp_path / "hub"
    root.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setattr(timm_tags, "HUB_URL", f"http://127.0.0.1:{server.server_port}/")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    (tmp_path / "keras" / "models").mkdir(parents=True)
    yield root, server
    server.shutdown()


def _publish(root, repo, state):
    from safetensors.torch import save_file

    folder = root / repo / "resolve" / "main"
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))


def test_a_timm_tag_downloads_once_and_predicts_as_timm(timm, hub):
    """`weights="ra3_in1k"`: timm's file from the hub, converted, at the
    tag's input size with its preprocessing inside: timm's logits on the
    same images; the second build reads the cache."""
    import torch

    root, server = hub
    reference = timm.create_model("regnetv_040", pretrained=False).eval()
    _randomize(reference, torch)
    _publish(root, "timm/regnetv_040.ra3_in1k", reference.state_dict())

    model = keras_regnet.RegNetV040(weights="ra3_in1k", classifier_activation=None)
    assert model.input_shape == (None, 224, 224, 3)
    images = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype("float32")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    x = ((images / 255 - mean) / std).astype("float32").transpose(0, 3, 1, 2)
    with torch.no_grad():
        expected = reference(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model.predict(images, verbose=0), expected,
                               rtol=1e-4, atol=1e-4)
    server.shutdown()  # no second download
    again = keras_regnet.RegNetV040(weights="ra3_in1k", include_top=False, pooling="avg")
    assert again.output_shape == (None, 1088)


def test_tags_list_each_source_and_warn_of_non_commercial_licences(hub):
    from keras_regnet.weights import timm_tags

    listed = keras_regnet.weights.tags("RegNetY160")
    assert [t["top1"] for t in listed] == sorted((t["top1"] for t in listed), reverse=True)
    assert {t["tag"]: t["non_commercial"] for t in listed}["swag_ft_in1k"] is True
    assert {t["tag"]: t["non_commercial"] for t in listed}["sw_in12k_ft_in1k"] is False
    assert keras_regnet.weights.tags("RegNetX002") == []
    # Never by default, and said at download.
    assert keras_regnet.RegNetY160.__defaults__[1] == "imagenet"
    root, _ = hub
    tag = timm_tags.find("RegNetY160", "swag_ft_in1k")
    folder = root / tag.repo / "resolve" / "main"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"stand-in")
    with pytest.warns(UserWarning, match="cc-by-nc-4.0 licence: non-commercial use only"):
        path = timm_tags.fetch_tag(tag)
    assert open(path, "rb").read() == b"stand-in"


def test_an_unknown_tag_names_the_tags_there_are(nothing_built):
    with pytest.raises(ValueError, match="a timm tag of RegNetZ040 \\(ra3_in1k\\) or the path"):
        keras_regnet.RegNetZ040(weights="ra4_in1k")


def test_regnetz_4gf_against_its_paper():
    """Dollar et al. 2021, Table 2: RegNetZ-4GF has 4.0 GF, 28.1 M parameters
    and 24.3 M activations. timm's RegNetZ040 (ClassyVision's configuration,
    "unverified" in timm) is compared at 256 px, where its flops are 4 GF: its
    flops and activations agree to 1 %, and it has 3.5 % fewer parameters."""
    figures = complexity("RegNetZ040", input_size=256)
    assert figures["flops"] / 4.0e9 == pytest.approx(1, abs=0.0125)
    assert figures["acts"] / 24.3e6 == pytest.approx(1, abs=0.01)
    assert figures["params"] / 28.1e6 == pytest.approx(1, abs=0.04)


@pytest.mark.parametrize("name", ["RegNetZ005", "RegNetV040"])
def test_convert_command_for_the_family(timm, tmp_path, name):
    """`python -m keras_regnet.convert SRC DST --model RegNetZ005`: the
    converted file gives timm's logits; without --model a Z/V checkpoint is
    refused, since its activation cannot be seen in its weights."""
    import subprocess
    import sys

    import torch
    from safetensors.torch import save_file

    torch.manual_seed(1)
    reference = timm.create_model(TIMM_NAMES[name], pretrained=False).eval()
    _randomize(reference, torch)
    src, dst = str(tmp_path / "timm.safetensors"), str(tmp_path / "keras.h5")
    save_file({k: v.contiguous() for k, v in reference.state_dict().items()}, src)

    def convert(*extra):
        return subprocess.run([sys.executable, "-m", "keras_regnet.convert", src, dst,
                               *extra], capture_output=True, text=True, timeout=300)

    refused = convert()
    assert refused.returncode == 2, refused.stderr
    assert "pass `model` (`--model`)" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    done = convert("--model", name.lower())
    assert done.returncode == 0, done.stderr
    assert f"timm weights for {name}" in done.stdout

    x = np.random.default_rng(1).uniform(0, 255, (2, 64, 64, 3)).astype("float32")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    with torch.no_grad():
        expected = reference(torch.from_numpy(
            ((x / 255 - mean) / std).astype("float32").transpose(0, 3, 1, 2))).numpy()
    model = getattr(keras_regnet, name)(weights=dst, input_shape=(64, 64, 3),
                                        classifier_activation=None)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, rtol=1e-4, atol=1e-4)


def test_timm_names():
    from keras_regnet.weights.timm_tags import timm_name

    assert {name: timm_name(name) for name in TIMM_NAMES} == TIMM_NAMES
    assert timm_name("RegNetX002") == "regnetx_002"
