"""pycls, torchvision and timm checkpoints: conversion and parity."""

import re
import sys

import numpy as np
import pytest

import keras_regnet
from keras_regnet import convert as convert_cli
from keras_regnet.weights import convert, file_spec, resolve

SIZE = 64
MEAN = np.array([0.485, 0.456, 0.406], "float32")
STD = np.array([0.229, 0.224, 0.225], "float32")
X_RGB = np.random.default_rng(0).uniform(0, 255, (2, SIZE, SIZE, 3)).astype("float32")


def torch_and_pycls():
    torch = pytest.importorskip(
        "torch", reason="needs PyTorch (pip install torch==2.13.0)")
    pytest.importorskip("pycls.models.regnet",
                        reason="needs pycls (pip install pycls --no-deps)")
    return torch


def pycls_regnet(depth, w0, wa, wm, group_width, se, bot_mul=1.0, seed=0):
    """The reference pycls RegNet, random weights and BN stats, eval mode."""
    torch = torch_and_pycls()
    from pycls.core.config import cfg
    from pycls.models.regnet import RegNet

    saved = cfg.clone()  # pycls' config is global: leave it as found
    try:
        cfg.REGNET.DEPTH, cfg.REGNET.W0, cfg.REGNET.WA = depth, w0, wa
        cfg.REGNET.WM, cfg.REGNET.GROUP_W = wm, group_width
        cfg.REGNET.BOT_MUL, cfg.REGNET.SE_ON, cfg.REGNET.SE_R = bot_mul, se, 0.25
        cfg.MODEL.NUM_CLASSES = 1000
        torch.manual_seed(seed)
        model = RegNet()
    finally:
        cfg.merge_from_other_cfg(saved)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.3, 1.0)
                m.bias.normal_(0.0, 0.1)
            elif isinstance(m, torch.nn.Linear):
                m.weight.normal_(0.0, 0.05)
                m.bias.normal_(0.0, 0.1)
    return model.eval()


def pycls_logits(model, x_rgb):
    """pycls' input: [0, 1], ImageNet mean/std, BGR, NCHW."""
    import torch
    x = ((x_rgb / 255 - MEAN) / STD)[..., ::-1].transpose(0, 3, 1, 2)
    with torch.no_grad():
        return model(torch.from_numpy(x.copy())).numpy()


def keras_logits(model):
    return np.asarray(model(X_RGB, training=False))


def max_diff(model, ref):
    expected = pycls_logits(ref, X_RGB)
    assert expected.std() > 0.1  # a non-degenerate comparison
    return np.abs(keras_logits(model) - expected).max()


@pytest.mark.parametrize("name, params, se", [
    ("RegNetX002", (13, 24, 36.44, 2.49, 8), False),
    ("RegNetY016", (27, 48, 20.71, 2.65, 24), True),
])
def test_pycls_checkpoint_matches_pycls(name, params, se, tmp_path, capsys):
    torch = torch_and_pycls()
    ref = pycls_regnet(*params, se)
    src, dst = str(tmp_path / "model.pyth"), str(tmp_path / "model.h5")
    torch.save({"epoch": 99, "model_state": ref.state_dict()}, src)  # pycls' format
    assert convert_cli.main([src, dst, "--model", name]) == 0
    assert "pycls weights for " + name in capsys.readouterr().out
    plan = resolve(dst, model_name=name)
    assert (plan.padding, plan.preprocessing) == ("symmetric", "imagenet")
    model = getattr(keras_regnet, name)(
        weights=dst, input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert max_diff(model, ref) <= 1e-4


def test_random_non_zoo_regnet_matches_pycls(tmp_path):
    torch = torch_and_pycls()
    # b = 2 is pycls' BOT_MUL = 0.5; three stages; not a published model.
    ref = pycls_regnet(9, 32, 19.3, 2.1, 8, True, bot_mul=0.5, seed=3)
    src, dst = str(tmp_path / "random.pth"), str(tmp_path / "random.h5")
    torch.save(ref.state_dict(), src)
    convert(src, dst)
    assert file_spec(dst).depths == (1, 3, 5)
    model = keras_regnet.RegNet(
        9, 32, 19.3, 2.1, 8, bottleneck_ratio=2, se_ratio=0.25, weights=dst,
        input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    assert max_diff(model, ref) <= 1e-4


# torchvision and timm name the same modules differently; these tables are
# taken from their model definitions (torchvision/models/regnet.py,
# timm/models/regnet.py).
def pycls_to_torchvision(key):
    subs = [(r"^stem\.conv\.", "stem.0."), (r"^stem\.bn\.", "stem.1."),
            (r"^head\.fc\.", "fc."), (r"\.f\.se\.f_ex\.0\.", ".f.se.fc1."),
            (r"\.f\.se\.f_ex\.2\.", ".f.se.fc2."),
            (r"\.f\.([abc])\.", r".f.\1.0."), (r"\.f\.([abc])_bn\.", r".f.\1.1."),
            (r"\.proj\.", ".proj.0."), (r"^(s\d+\.b\d+)\.bn\.", r"\1.proj.1.")]
    for pattern, repl in subs:
        key = re.sub(pattern, repl, key)
    m = re.match(r"^s(\d+)\.b(\d+)\.(.*)$", key)
    if m:
        s, b = int(m.group(1)), int(m.group(2))
        key = f"trunk_output.block{s}.block{s}-{b - 1}.{m.group(3)}"
    return key


def pycls_to_timm(key):
    subs = [(r"\.f\.se\.f_ex\.0\.", ".se.fc1."), (r"\.f\.se\.f_ex\.2\.", ".se.fc2."),
            (r"\.f\.a\.", ".conv1.conv."), (r"\.f\.a_bn\.", ".conv1.bn."),
            (r"\.f\.b\.", ".conv2.conv."), (r"\.f\.b_bn\.", ".conv2.bn."),
            (r"\.f\.c\.", ".conv3.conv."), (r"\.f\.c_bn\.", ".conv3.bn."),
            (r"\.proj\.", ".downsample.conv."), (r"^(s\d+\.b\d+)\.bn\.", r"\1.downsample.bn.")]
    for pattern, repl in subs:
        key = re.sub(pattern, repl, key)
    return key


def rgb_state(ref, rename):
    """pycls weights as an RGB-input checkpoint of another library."""
    state = {rename(k): v.numpy().copy() for k, v in ref.state_dict().items()}
    stem = rename("stem.conv.weight")
    state[stem] = state[stem][:, ::-1].copy()
    return state


def test_torchvision_checkpoint(tmp_path):
    torch = torch_and_pycls()
    ref = pycls_regnet(13, 24, 36.44, 2.49, 8, True, seed=1)  # Y-200MF
    state = rgb_state(ref, pycls_to_torchvision)
    assert "trunk_output.block2.block2-0.f.se.fc1.weight" in state
    src, dst = str(tmp_path / "tv.pth"), str(tmp_path / "tv.h5")
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, src)
    assert convert(src, dst, model="RegNetY002")["source"] == "torchvision"
    model = keras_regnet.RegNetY002(weights=dst, input_shape=(SIZE, SIZE, 3),
                                    classifier_activation=None)
    assert max_diff(model, ref) <= 1e-4


def test_timm_safetensors_read_without_torch(tmp_path, monkeypatch):
    torch_and_pycls()
    from safetensors.numpy import save_file

    ref = pycls_regnet(13, 24, 36.44, 2.49, 8, False, seed=2)  # X-200MF
    state = rgb_state(ref, pycls_to_timm)
    assert "s1.b1.conv2.conv.weight" in state
    src = str(tmp_path / "timm.safetensors")
    save_file(state, src)
    expected = pycls_logits(ref, X_RGB)
    # Any `import torch` now fails: the .safetensors path must not need it.
    monkeypatch.setitem(sys.modules, "torch", None)
    plan = resolve(src, model_name="RegNetX002")
    assert (plan.kind, plan.padding, plan.preprocessing) == (
        "safetensors", "symmetric", "imagenet")
    model = keras_regnet.RegNetX002(weights=src, input_shape=(SIZE, SIZE, 3),
                                    classifier_activation=None)
    assert np.abs(keras_logits(model) - expected).max() <= 1e-4
    pth = tmp_path / "needs_torch.pth"
    pth.write_bytes(b"a .pth file needs torch")
    with pytest.raises(ImportError, match="pip install torch"):
        convert(str(pth), str(tmp_path / "x.h5"))


def test_native_save_of_converted_model_keeps_pytorch_conventions(tmp_path):
    torch = torch_and_pycls()
    ref = pycls_regnet(13, 24, 36.44, 2.49, 8, False, seed=4)
    src = str(tmp_path / "x.pth")
    torch.save(ref.state_dict(), src)
    model = keras_regnet.RegNetX002(weights=src, input_shape=(SIZE, SIZE, 3),
                                    classifier_activation=None)
    native, legacy = str(tmp_path / "x.weights.h5"), str(tmp_path / "x.h5")
    model.save_weights(native)
    model.save(legacy)  # Keras' legacy HDF5 format, with our layer names
    for path, kind in ((native, "native"), (legacy, "keras2")):
        plan = resolve(path, model_name="RegNetX002")
        assert (plan.kind, plan.padding, plan.preprocessing) == (
            kind, "symmetric", "imagenet")
        again = keras_regnet.RegNetX002(weights=path, input_shape=(SIZE, SIZE, 3),
                                        classifier_activation=None)
        assert max_diff(again, ref) <= 1e-4


def test_torchvision_sizes_with_other_widths_are_refused_or_variants(tmp_path):
    from safetensors.numpy import save_file

    # torchvision's regnet_x_400mf: the paper's widths are (32, 64, 160,
    # 384); torchvision's rounding makes the last stage 400 wide.
    variant = keras_regnet.AnyNet(
        depths=(1, 2, 7, 12), widths=(32, 64, 160, 400), group_widths=16,
        input_shape=(SIZE, SIZE, 3), classifier_activation=None)
    state = {}
    for layer in variant.layers:
        for v in layer.weights:
            state.update(torchvision_entry(layer.name, v.name, np.asarray(v)))
    src, dst = str(tmp_path / "regnet_x_400mf.safetensors"), str(tmp_path / "v.h5")
    save_file(state, src)
    with pytest.raises(ValueError) as e:
        convert(src, dst, model="RegNetX004")
    for words in ("torchvision", "widths (32, 64, 160, 400)",
                  "widths (32, 64, 160, 384)", "file_spec"):
        assert words in str(e.value)
    with pytest.raises(ValueError, match="s4_b1_a_conv"):
        keras_regnet.RegNetX004(weights=src, input_shape=(SIZE, SIZE, 3))

    convert(src, dst)
    spec = file_spec(dst)
    assert spec.widths == (32, 64, 160, 400)
    model = keras_regnet.AnyNet(spec, weights=dst, input_shape=(SIZE, SIZE, 3),
                                classifier_activation=None)
    # The variant's own (random) weights come back exactly.
    loaded = {v.path: np.asarray(v) for v in model.weights}
    assert len(loaded) == len(variant.weights)
    for v in variant.weights:
        np.testing.assert_array_equal(loaded[v.path], np.asarray(v))


def torchvision_entry(layer, var, value):
    """One Keras variable as a torchvision state dict entry (our names)."""
    param = {"kernel": "weight", "bias": "bias", "gamma": "weight",
             "beta": "bias", "moving_mean": "running_mean",
             "moving_variance": "running_var"}[var]
    if var == "kernel":
        value = value.T if value.ndim == 2 else value.transpose(3, 2, 0, 1)
    m = re.match(r"s(\d+)_b(\d+)_(\w+)$", layer)
    if layer in ("stem_conv", "stem_bn", "predictions"):
        module = {"stem_conv": "stem.0", "stem_bn": "stem.1",
                  "predictions": "fc"}[layer]
    else:
        s, b, part = int(m.group(1)), int(m.group(2)), m.group(3)
        block = f"trunk_output.block{s}.block{s}-{b - 1}"
        module = block + {"proj_conv": ".proj.0", "proj_bn": ".proj.1",
                          "a_conv": ".f.a.0", "a_bn": ".f.a.1",
                          "b_conv": ".f.b.0", "b_bn": ".f.b.1",
                          "c_conv": ".f.c.0", "c_bn": ".f.c.1"}[part]
    return {f"{module}.{param}": np.ascontiguousarray(value, dtype="float32")}
