"""The design spaces behind the tuner: AnyNetX A-E and RegNet (keras_regnet.design)."""

import itertools
import json
import math

import numpy as np
import pytest

from conftest import PAPER_ZOO, X200MF_EXACT, run_python
from keras_regnet import design
from keras_regnet.design import DesignSpace, design_space

ANYNETX = ("anynetx_a", "anynetx_b", "anynetx_c", "anynetx_d", "anynetx_e")
STAGES = (1, 2, 3, 4)
# The paper's AnyNetX ranges (sec. 3.1), written out independently.
DEPTHS = range(1, 17)
WIDTHS = range(8, 1025, 8)
BOTTLENECKS = (1, 2, 4)
GROUPS = (1, 2, 4, 8, 16, 32)
# Which parameters each space shares between stages and which it orders.
SHARED_B = {"anynetx_a": False, "anynetx_b": True, "anynetx_c": True,
            "anynetx_d": True, "anynetx_e": True}
SHARED_G = {"anynetx_a": False, "anynetx_b": False, "anynetx_c": True,
            "anynetx_d": True, "anynetx_e": True}
ORDERED_W = {"anynetx_a": False, "anynetx_b": False, "anynetx_c": False,
             "anynetx_d": True, "anynetx_e": True}
ORDERED_D = {"anynetx_a": False, "anynetx_b": False, "anynetx_c": False,
             "anynetx_d": False, "anynetx_e": True}
# Degrees of freedom (paper, sec. 3.2: C has 6 fewer than A).
FREEDOM = {"anynetx_a": 16, "anynetx_b": 13, "anynetx_c": 10,
           "anynetx_d": 10, "anynetx_e": 10}


def _stage_values(values, name, shared):
    return [values[name]] * 4 if shared else [values[f"{name}_{i}"] for i in STAGES]


def _unpack(space_name, values):
    """`(depths, widths, bs, gs)` lists from a configuration."""
    return (_stage_values(values, "depth", False), _stage_values(values, "width", False),
            _stage_values(values, "bottleneck_ratio", SHARED_B[space_name]),
            _stage_values(values, "group_width", SHARED_G[space_name]))


def _x200mf(space_name):
    """RegNetX-200MF's stages as a configuration of an AnyNetX space."""
    d, w = (1, 1, 4, 7), (24, 56, 152, 368)
    values = {f"depth_{i}": d[i - 1] for i in STAGES}
    values.update({f"width_{i}": w[i - 1] for i in STAGES})
    for name, v, shared in (("bottleneck_ratio", 1, SHARED_B[space_name]),
                            ("group_width", 8, SHARED_G[space_name])):
        values.update({name: v} if shared else {f"{name}_{i}": v for i in STAGES})
    return values


def test_names_and_factory():
    assert design.SPACE_NAMES == ("regnet", *ANYNETX)
    for name in design.SPACE_NAMES:
        space = design_space(name, block_type="y", input_size=64)
        assert space.name == name and isinstance(space, DesignSpace)
        assert (space.block_type, space.input_size) == ("y", 64)
    assert isinstance(design_space("regnet"), design.RegNetDesignSpace)
    with pytest.raises(ValueError, match=r"Invalid `name`: 'anynetx_f'\. Expected one of"):
        design_space("anynetx_f")


@pytest.mark.parametrize("name", ANYNETX)
def test_anynetx_hyperparameters(name):
    hps = design_space(name).hyperparameters()
    assert len(hps) == FREEDOM[name]
    expected = [f"depth_{i}" for i in STAGES] + [f"width_{i}" for i in STAGES]
    expected += (["bottleneck_ratio"] if SHARED_B[name]
                 else [f"bottleneck_ratio_{i}" for i in STAGES])
    expected += ["group_width"] if SHARED_G[name] else [f"group_width_{i}" for i in STAGES]
    assert [hp.name for hp in hps] == expected
    for hp in hps:
        if hp.name.startswith("depth"):
            assert (hp.kind, hp.values, hp.step) == ("int", (1, 16), 1)
        elif hp.name.startswith("width"):
            assert (hp.kind, hp.values, hp.step) == ("int", (8, 1024), 8)
        elif hp.name.startswith("bottleneck"):
            assert (hp.kind, hp.values) == ("choice", BOTTLENECKS)
        else:
            assert (hp.kind, hp.values) == ("choice", GROUPS)


def test_regnet_hyperparameters():
    hps = design.RegNetDesignSpace(w0=24, group_width=(8, 16)).hyperparameters()
    assert [(hp.name, hp.kind, hp.values, hp.step, hp.log) for hp in hps] == [
        ("depth", "int", (12, 28), 1, False), ("w0", "fixed", (24,), None, False),
        ("wa", "float", (8.0, 256.0), None, True), ("wm", "float", (1.5, 3.0), None, True),
        ("bottleneck_ratio", "choice", (1, 2, 4), None, False),
        ("group_width", "choice", (8, 16), None, False)]


@pytest.mark.parametrize("name", ANYNETX)
def test_samples_meet_every_constraint(name):
    space = design_space(name)
    rng = np.random.default_rng(0)
    hps = space.hyperparameters()
    for _ in range(3000):
        values = space.sample(rng)
        assert list(values) == [hp.name for hp in hps]
        assert all(type(v) is int for v in values.values())
        assert all(hp.contains(values[hp.name]) for hp in hps)
        depths, widths, bs, gs = _unpack(name, values)
        assert all(d in DEPTHS for d in depths)
        assert all(w in WIDTHS for w in widths)
        assert all(b in BOTTLENECKS for b in bs) and all(g in GROUPS for g in gs)
        # g divides the bottleneck width w / b.
        assert all(w % b == 0 and (w // b) % g == 0 for w, b, g in zip(widths, bs, gs))
        if ORDERED_W[name]:
            assert widths == sorted(widths)
        if ORDERED_D[name]:
            assert depths == sorted(depths)
        assert space.fits(values), space.violation(values)


@pytest.mark.parametrize("name", ANYNETX)
def test_samples_build_the_stated_network(name):
    space = design_space(name, block_type="y")
    values = space.sample(np.random.default_rng(1))
    depths, widths, bs, gs = _unpack(name, values)
    spec = space.spec(values)
    assert (list(spec.depths), list(spec.widths)) == (depths, widths)
    assert (list(spec.bottleneck_ratios), list(spec.group_widths)) == (bs, gs)
    assert spec.strides == (2, 2, 2, 2)
    assert (spec.block_type, spec.se_ratio, spec.stem_type) == ("y", 0.25, "imagenet")


def test_anynetx_a_distributions():
    space = design_space("anynetx_a")
    rng = np.random.default_rng(2)
    samples = [_unpack("anynetx_a", space.sample(rng)) for _ in range(4000)]
    depths = np.array([s[0] for s in samples]).ravel()
    assert set(depths) == set(DEPTHS)
    assert abs(depths.mean() - 8.5) < 0.15  # uniform on 1..16; SE 0.04
    for k, options in ((2, BOTTLENECKS), (3, GROUPS)):
        drawn = np.array([s[k] for s in samples]).ravel()
        freq = [np.mean(drawn == v) for v in options]
        assert max(abs(f - 1 / len(options)) for f in freq) < 0.02
    # Where 8 is a multiple of b * g every multiple of 8 is allowed: uniform.
    free = np.array([w for s in samples for w, b, g in zip(*s[1:]) if b * g <= 8])
    assert set(free) == set(WIDTHS)
    assert abs(free.mean() - 516) < 12  # SE about 3.4
    # b and g drawn independently of each other.
    pairs = [(b, g) for s in samples for b, g in zip(s[2], s[3])]
    assert abs(np.mean([g == 32 for b, g in pairs if b == 4]) - 1 / 6) < 0.03


def test_anynetx_e_depths_uniform_over_non_decreasing_sequences():
    # The reference: every non-decreasing depth sequence equally likely,
    # which is what rejecting unsorted uniform draws gives.
    sequences = np.array(list(itertools.combinations_with_replacement(DEPTHS, 4)))
    expected = sequences.mean(axis=0)  # about 4.4, 7.5, 10.5, 13.6
    space = design_space("anynetx_e")
    rng = np.random.default_rng(3)
    drawn = np.array([_unpack("anynetx_e", space.sample(rng))[0] for _ in range(4000)])
    assert np.abs(drawn.mean(axis=0) - expected).max() < 0.2  # SE about 0.05
    assert np.mean(drawn[:, 0] == drawn[:, 3]) == pytest.approx(16 / len(sequences), abs=0.0025)


def test_anynetx_d_widths_non_decreasing_on_the_lattice():
    space = design_space("anynetx_d", bottleneck_ratio=2, group_width=16)
    rng = np.random.default_rng(4)
    widths = np.array([_unpack("anynetx_d", space.sample(rng))[1] for _ in range(2000)])
    assert (widths % 32 == 0).all() and (np.diff(widths, axis=1) >= 0).all()
    # Uniform over the non-decreasing sequences of the 32 multiples of 32.
    sequences = np.array(list(itertools.combinations_with_replacement(range(32, 1025, 32), 4)))
    assert np.abs(widths.mean(axis=0) - sequences.mean(axis=0)).max() < 12


@pytest.mark.parametrize("name", design.SPACE_NAMES)
def test_sample_in_budget(name):
    flops, params = (150e6, 600e6), (None, 8e6)
    space = design_space(name, flops=flops, params=params)
    rng = np.random.default_rng(5)
    for _ in range(20):
        values, draws = space.sample_in_budget(rng)
        assert draws >= 1
        spec = space.spec(values)
        cx = design.complexity(spec)  # 224x224, 1000 classes: the defaults
        assert flops[0] <= cx["flops"] <= flops[1] and cx["params"] <= params[1]
        assert space.fits(values)


def test_impossible_anynetx_budget_raises():
    space = design_space("anynetx_c", flops=(None, 1e6))
    with pytest.raises(ValueError, match=r"Invalid budget flops=\(0, 1M\): none of 300 "
                                         r"configurations drawn from the anynetx_c"):
        space.sample_in_budget(np.random.default_rng(0), max_draws=300)


@pytest.mark.parametrize("name", ANYNETX)
def test_fits_refuses_every_kind_of_violation(name):
    space = design_space(name)
    good = _x200mf(name)
    assert space.fits(good) and space.violation(good) is None
    w = "width_1"
    b = "bottleneck_ratio" if SHARED_B[name] else "bottleneck_ratio_1"
    g = "group_width" if SHARED_G[name] else "group_width_1"
    bad = {
        "depth_1": [0, 17, 1.5, True, math.nan, "1"],
        w: [0, 20, 1032, math.inf],
        b: [3, 8, 0.5],
        g: [3, 64],
    }
    for key, vals in bad.items():
        for v in vals:
            values = dict(good, **{key: v})
            assert not space.fits(values), (key, v)
            assert f"`{key}`" in space.violation(values)
    # g = 8 does not divide w / b = 24 / 4 = 6: every space refuses it.
    values = dict(good, **{b: 4})
    assert not space.fits(values)
    assert "does not divide the bottleneck width" in space.violation(values)
    # Decreasing widths: refused by D and E only; decreasing depths by E only.
    values = dict(good, width_1=368, width_4=24)
    assert space.fits(values) is not ORDERED_W[name]
    values = dict(good, depth_1=7, depth_4=1)
    assert space.fits(values) is not ORDERED_D[name]
    missing = dict(good)
    del missing["depth_3"]
    assert space.violation(missing) == "`depth_3` is missing"
    # Four stride-2 stages and the stride-2 stem need more than 16x16.
    assert not design_space(name, input_size=16).fits(good)
    assert design_space(name, input_size=32).fits(good)
    assert not design_space(name, flops=(None, 150e6)).fits(good)
    assert "outside the budget: flops 199M (0-150M)" in design_space(
        name, flops=(None, 150e6)).violation(good)


def test_regnet_fits_refuses_values_outside_its_ranges():
    d, w0, wa, wm, g, *_ = PAPER_ZOO["RegNetX002"]
    good = dict(depth=d, w0=w0, wa=wa, wm=wm, bottleneck_ratio=1, group_width=g)
    space = design.RegNetDesignSpace()
    assert space.fits(good)
    for key, v in (("depth", 11), ("depth", 29), ("w0", 20), ("w0", 264),
                   ("wa", 7.9), ("wm", 3.1), ("wm", math.nan), ("group_width", 3),
                   ("bottleneck_ratio", True)):
        assert not space.fits(dict(good, **{key: v})), (key, v)
    assert design.RegNetDesignSpace(depth=(12, 13), w0=(8, 32)).fits(good)
    assert not design.RegNetDesignSpace(group_width=(16, 32)).fits(good)


@pytest.mark.parametrize("name", design.SPACE_NAMES)
def test_config_round_trip(name):
    narrowed = {"regnet": dict(depth=(12, 20), wm=(2.0, 2.5)),
                "anynetx_a": dict(depth=(2, 8), width=(16, 512))}.get(
        name, dict(bottleneck_ratio=(1, 2), group_width=(1, 4, 8)))
    space = design_space(name, **narrowed, block_type="y", stem_type="cifar",
                         input_size=32, channels=1, classes=10,
                         flops=(1e6, 5e7), params=(None, 2e6))
    config = json.loads(json.dumps(space.to_config()))
    clone = DesignSpace.from_config(config)
    assert type(clone) is type(space) and clone.to_config() == space.to_config()
    values, _ = space.sample_in_budget(np.random.default_rng(6))
    assert clone.describe(values) == space.describe(values)
    assert type(space).from_config(config).to_config() == space.to_config()
    other = "anynetx_a" if name == "regnet" else "regnet"
    with pytest.raises(ValueError, match="Invalid `name`"):
        type(design_space(other)).from_config(config)


@pytest.mark.parametrize("name", ANYNETX)
def test_describe(name):
    described = design_space(name).describe(_x200mf(name))
    assert {k: described[k] for k in X200MF_EXACT} == X200MF_EXACT
    assert described["num_stages"] == 4
    assert described["depths"] == [1, 1, 4, 7]
    assert described["widths"] == [24, 56, 152, 368]
    assert described["bottleneck_ratios"] == [1, 1, 1, 1]
    assert all(type(b) is int for b in described["bottleneck_ratios"])
    assert described["group_widths"] == [8, 8, 8, 8]
    assert described["e_fit"] == 0.0  # RegNetX-200MF's widths follow the rule
    values = dict(_x200mf(name), width_1=368, width_4=24)  # not linear at all
    if not ORDERED_W[name]:
        assert design_space(name).describe(values)["e_fit"] > 0.3


def test_regnet_describe():
    space = design.RegNetDesignSpace(block_type="y")
    d, w0, wa, wm, g, *_ = PAPER_ZOO["RegNetY016"]
    described = space.describe(dict(depth=d, w0=w0, wa=wa, wm=wm,
                                     bottleneck_ratio=1, group_width=g))
    assert round(described["flops"] / 1e9, 2) == PAPER_ZOO["RegNetY016"][6]
    assert described["depths"] == [2, 6, 17, 2]
    assert described["widths"] == [48, 120, 336, 888]
    assert described["bottleneck_ratios"] == [1, 1, 1, 1]
    # The compatibility step moved the widths off the rule (48 is not 24 * k).
    assert 0 < described["e_fit"] < 0.1


@pytest.mark.parametrize("kwargs, match", [
    (dict(depth=(0, 16)), "`depth`.*paper's limits"),
    (dict(depth=(1, 17)), "`depth`.*paper's limits"),
    (dict(depth=(1.5, 4)), "`depth`.*integers"),
    (dict(width=(12, 64)), "`width`.*multiples of 8"),
    (dict(width=(8, 2048)), "`width`.*paper's limits"),
    (dict(width=(8, 64)), r"`width`.*lcm\(8, b \* g\).*b=4, g=32"),
    (dict(width=(math.nan, 64)), "`width`"),
    (dict(bottleneck_ratio=3), "`bottleneck_ratio`"),
    (dict(group_width=(8, 64)), "`group_width`"),
    (dict(group_width=True), "`group_width`"),
    (dict(block_type="res_basic"), "`block_type`"),
    (dict(stem_type="cifar10"), "`stem_type`"),
    (dict(input_size=True), "`input_size`"),
    (dict(classes=0), "`classes`"),
    (dict(flops=(math.nan, 1e9)), "`flops`"),
    (dict(params=(0, math.inf)), "`params`"),
])
def test_bad_anynetx_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        design_space("anynetx_b", **kwargs)


def test_narrowed_width_range_with_compatible_groups():
    space = design_space("anynetx_c", width=(8, 64), bottleneck_ratio=(1, 2),
                         group_width=(1, 2, 4, 8))
    rng = np.random.default_rng(7)
    for _ in range(500):
        _, widths, bs, gs = _unpack("anynetx_c", space.sample(rng))
        assert all(8 <= w <= 64 and w % (b * g) == 0 for w, b, g in zip(widths, bs, gs))


def test_design_math_loads_without_keras():
    run_python(["-c", "import sys, keras_regnet.design; "
                "assert not {'keras', 'tensorflow'} & set(sys.modules)"])
