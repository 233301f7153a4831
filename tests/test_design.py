"""Design math against the paper's figures and the reference implementation."""

import ast
import pathlib

import numpy as np
import pytest

from conftest import PAPER_ZOO, X200MF_EXACT
from keras_regnet import design


def test_x200mf_exact_counts():
    assert design.complexity("RegNetX002") == X200MF_EXACT


@pytest.mark.parametrize("name", sorted(PAPER_ZOO))
def test_zoo_matches_paper(name):
    d, w0, wa, wm, g, se, gflops, mparams = PAPER_ZOO[name]
    assert design.zoo_params(name) == dict(
        depth=d, w0=w0, wa=wa, wm=wm, group_width=g, bottleneck_ratio=1.0,
        se_ratio=0.25 if se else 0.0, block_type=None, activation="relu",
        downsample="conv", head_width=0)
    cx = design.complexity(name)
    assert round(cx["flops"] / 1e9, 2) == pytest.approx(gflops, abs=0.006)
    assert round(cx["params"] / 1e6, 1) == pytest.approx(mparams, abs=0.051)


def test_compatibility_step_is_needed():
    """Without adjusting widths to group widths most zoo models differ."""
    changed = 0
    for name in design.MODEL_NAMES:
        p = design.zoo_params(name)
        raw, _ = design.stages_from_blocks(
            design.quantized_linear(p["depth"], p["w0"], p["wa"], p["wm"]))
        changed += list(design.zoo_spec(name).widths) != raw
    assert changed == 21


def _random_configs(n, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield dict(
            depth=int(rng.integers(1, 30)),
            w0=int(rng.integers(1, 33)) * 8,
            wa=float(np.round(np.exp(rng.uniform(np.log(8), np.log(256))), 2)),
            wm=float(np.round(np.exp(rng.uniform(np.log(1.5), np.log(3))), 3)),
            group_width=int(rng.choice([1, 2, 4, 8, 16, 32])),
            bottleneck_ratio=float(rng.choice([1, 2, 4])),
            se_ratio=float(rng.choice([0.0, 0.25])),
        )


@pytest.fixture(scope="module")
def pycls():
    pytest.importorskip("torch", reason="pycls (the reference) needs torch")
    pytest.importorskip("pycls", reason="the reference implementation is not installed")
    from pycls.core.config import cfg
    from pycls.models.anynet import AnyNet
    from pycls.models.regnet import RegNet

    def reference(p, size):
        cfg.REGNET.DEPTH, cfg.REGNET.W0 = p["depth"], p["w0"]
        cfg.REGNET.WA, cfg.REGNET.WM = p["wa"], p["wm"]
        cfg.REGNET.GROUP_W, cfg.REGNET.BOT_MUL = p["group_width"], 1 / p["bottleneck_ratio"]
        cfg.REGNET.SE_ON, cfg.REGNET.SE_R = p["se_ratio"] > 0, p["se_ratio"] or 0.25
        cfg.MODEL.NUM_CLASSES = 1000
        args = RegNet.get_args()
        cx = AnyNet.complexity({"h": size, "w": size, "flops": 0, "params": 0, "acts": 0},
                               **args)
        return args, {k: cx[k] for k in ("flops", "params", "acts")}

    return reference


@pytest.mark.parametrize("size", [224, 97])
def test_against_reference_implementation(pycls, size):
    configs = [design.zoo_params(n) for n in design.MODEL_NAMES]
    configs += list(_random_configs(60, seed=size))
    for p in configs:
        args, ref_cx = pycls(p, size)
        spec = design.regnet_spec(**p)
        assert list(spec.depths) == list(args["ds"]), p
        assert list(spec.widths) == list(args["ws"]), p
        assert list(spec.group_widths) == list(args["gws"]), p
        assert design.complexity(spec, input_size=size) == ref_cx, p


@pytest.mark.parametrize("bad, arg", [
    (dict(wm=1.0), "wm"), (dict(wm=0.5), "wm"), (dict(w0=0), "w0"),
    (dict(w0=-8), "w0"), (dict(w0=20), "w0"), (dict(wa=0), "wa"),
    (dict(wa=-1.0), "wa"), (dict(depth=0), "depth"), (dict(depth=2.5), "depth"),
    (dict(group_width=0), "group_width"), (dict(bottleneck_ratio=0), "bottleneck_ratio"),
])
def test_invalid_regnet_params(bad, arg):
    p = dict(depth=13, w0=24, wa=36.44, wm=2.49, group_width=8) | bad
    with pytest.raises(ValueError, match=f"`{arg}`: {bad[arg]!r}"):
        design.regnet_spec(**p)


@pytest.mark.parametrize("bad, arg", [
    (dict(block_type="w"), "block_type"), (dict(stem_type="res"), "stem_type"),
    (dict(widths=(32,)), "widths"), (dict(strides=(2, 3)), "stride"),
    (dict(group_widths=(16, 24)), "group_widths"),
    (dict(block_type="y", se_ratio=0), "se_ratio"),
    (dict(se_ratio=0.25), "se_ratio"), (dict(head_width=-1), "head_width"),
])
def test_invalid_anynet_spec(bad, arg):
    fields = dict(depths=(4, 6), widths=(32, 80), group_widths=16) | bad
    with pytest.raises(ValueError, match=f"`{arg}`"):
        design.AnyNetSpec(**fields)


def test_design_math_imports_no_framework():
    """The design math is pure Python/NumPy: usable by samplers without Keras."""
    banned = {"keras", "tensorflow", "jax", "torch", "keras_tuner", "tuner"}
    for path in pathlib.Path(design.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for n in names:
                assert n.split(".")[0] not in banned, (path.name, n)
