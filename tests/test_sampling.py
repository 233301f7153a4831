"""The RegNet design space and its budgeted sampler (keras_regnet.design.sampling)."""

import math

import numpy as np
import pytest

from conftest import PAPER_ZOO
from keras_regnet.design.sampling import RegNetDesignSpace

# The paper's RegNet sampling ranges (sec. 4), written out independently.
PAPER = {"depth": (12, 28), "w0": (8, 256), "wa": (8.0, 256.0),
         "wm": (1.5, 3.0), "bottleneck_ratio": (1, 2, 4),
         "group_width": (1, 2, 4, 8, 16, 32)}


def _zoo_values(name):
    d, w0, wa, wm, g, _, _, _ = PAPER_ZOO[name]
    return dict(depth=d, w0=w0, wa=wa, wm=wm, group_width=g, bottleneck_ratio=1)


def test_defaults_are_the_papers_ranges():
    assert RegNetDesignSpace().ranges == PAPER


def test_samples_cover_the_ranges_with_the_papers_scales():
    space = RegNetDesignSpace()
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(3000)]
    for name in ("depth", "w0", "wa", "wm"):
        lo, hi = PAPER[name]
        values = [s[name] for s in samples]
        assert lo <= min(values) and max(values) <= hi
    assert {s["depth"] for s in samples} == set(range(12, 29))
    assert {s["w0"] for s in samples} == set(range(8, 257, 8))
    assert {s["bottleneck_ratio"] for s in samples} == {1, 2, 4}
    assert {s["group_width"] for s in samples} == {1, 2, 4, 8, 16, 32}
    # Log-uniform: half the draws lie below the geometric mean of the range.
    for name in ("wa", "wm"):
        lo, hi = PAPER[name]
        below = np.mean([s[name] < math.sqrt(lo * hi) for s in samples])
        assert abs(below - 0.5) < 0.04, name
    # Uniform w0: the arithmetic midpoint splits the draws.
    assert abs(np.mean([s["w0"] <= 128 for s in samples]) - 0.5) < 0.04


def test_budget_matches_the_papers_flops():
    # RegNetX-200MF (0.20 GF) and RegNetX-400MF (0.40 GF) at 224x224.
    space = RegNetDesignSpace(flops=(150e6, 250e6))
    assert space.fits(_zoo_values("RegNetX002"))
    assert not space.fits(_zoo_values("RegNetX004"))
    space = RegNetDesignSpace(flops=(300e6, 500e6), params=(None, 6e6))
    assert space.fits(_zoo_values("RegNetX004"))  # 5.2M params
    assert not RegNetDesignSpace(flops=(300e6, 500e6), params=(None, 5e6)).fits(
        _zoo_values("RegNetX004"))


def test_hundreds_of_budgeted_draws_all_fit():
    space = RegNetDesignSpace(flops=(200e6, 400e6))
    rng = np.random.default_rng(1)
    draws, configs = 0, []
    for _ in range(300):
        values, n = space.sample_in_budget(rng)
        draws += n
        configs.append(values)
    flops = [space.complexity(v)["flops"] for v in configs]
    assert all(200e6 <= f <= 400e6 for f in flops)
    assert draws > 300  # The budget rejects part of the space...
    assert len({tuple(sorted(v.items())) for v in configs}) == 300  # ...and draws differ.


def test_impossible_budget_raises():
    space = RegNetDesignSpace(flops=(1, 1000))
    with pytest.raises(ValueError, match=r"Invalid budget flops=\(1, 1K\).*none of 500"):
        space.sample_in_budget(np.random.default_rng(0), max_draws=500)


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=(20, 12)), "`depth`.*lo <= hi"),
    (dict(depth=(12, 80)), "`depth`.*paper's limits"),
    (dict(wm=(1.2, 2.0)), "`wm`.*paper's limits"),
    (dict(wa=(0, 8)), "`wa`.*paper's limits"),
    (dict(w0=(12, 64)), "`w0`.*multiples of 8"),
    (dict(w0=(8, 512)), "`w0`.*paper's limits"),
    (dict(bottleneck_ratio=(1, 3)), "`bottleneck_ratio`"),
    (dict(group_width=64), "`group_width`"),
    (dict(flops=(4e8, 2e8)), "`flops`.*lo <= hi"),
    (dict(params=5e6), "`params`"),
    (dict(block_type="res_basic"), "`block_type`"),
])
def test_bad_ranges_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegNetDesignSpace(**kwargs)


def test_fixed_values_and_config_round_trip():
    space = RegNetDesignSpace(depth=13, w0=24, wa=36.44, wm=2.49,
                              bottleneck_ratio=1, group_width=8, block_type="y",
                              flops=(None, 3e8))
    values = space.sample(np.random.default_rng(0))
    assert values == _zoo_values("RegNetY002") | {"wa": 36.44, "wm": 2.49}
    clone = RegNetDesignSpace.from_config(space.to_config())
    assert clone.to_config() == space.to_config()
    assert clone.describe(values) == space.describe(values)
    assert space.describe(values)["widths"] == [24, 56, 152, 368]


def test_configurations_fit_the_input_size():
    # 16x16 with the CIFAR stem: four stride-2 stages bring it to 1x1.
    space = RegNetDesignSpace(stem_type="cifar", input_size=16)
    assert space.max_stages == 4
    rng = np.random.default_rng(0)
    raw = [space.spec(space.sample(rng)).num_stages for _ in range(200)]
    assert max(raw) > 4  # The paper's ranges reach more stages...
    fitted = [space.spec(space.sample_in_budget(rng)[0]).num_stages for _ in range(200)]
    assert max(fitted) <= 4  # ...which the sampler rejects.
    assert RegNetDesignSpace(input_size=64).max_stages == 5  # ImageNet stem: /2 first.
