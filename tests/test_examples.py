"""The examples run offline on a fresh install, and fail in one line on bad input.

Each runs in a subprocess with an empty Keras cache and every HTTP(S) request
sent to a closed port on 127.0.0.1, as on an offline machine.
"""

import concurrent.futures
import importlib.util
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO

# One pytest-xdist worker runs them all: the long runs are shared (RUNS).
pytestmark = pytest.mark.xdist_group("examples")
EXAMPLES = os.path.join(REPO, "examples")
PERCENT_LINE = re.compile(r"^ *(\d+\.\d\d)%  (.+)$")


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def offline_env(tmp_path):
    """The environment of an offline machine with an empty Keras cache:
    every HTTP(S) request goes to a closed port on 127.0.0.1."""
    proxy = f"http://127.0.0.1:{closed_port()}"
    return dict(os.environ, KERAS_HOME=str(tmp_path / "keras_home"),
                http_proxy=proxy, https_proxy=proxy, HTTP_PROXY=proxy,
                HTTPS_PROXY=proxy, no_proxy="", NO_PROXY="")


def run_example(script, *args, tmp_path, timeout=240):
    """`python examples/<script> *args` offline, in `tmp_path`."""
    return subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, script), *map(str, args)],
        cwd=tmp_path, env=offline_env(tmp_path), capture_output=True, text=True,
        timeout=timeout)


# What TensorFlow's and XLA's C++ code logs: "I0000 00:00:..." lines (also
# W, E, F), absl's start-up notice, oneDNN's and the CPU feature guard's.
NATIVE_LOG = re.compile(r"^([IWEF]\d{4} \d\d:\d\d:\d\d|WARNING: All log messages"
                        r"|.*(oneDNN custom operations|cpu_feature_guard|cuInit))", re.M)


def succeeded(proc):
    """The stdout lines of a run that exited 0 without native log lines."""
    assert proc.returncode == 0, proc.stderr[-4000:]
    logged = NATIVE_LOG.findall(proc.stderr + proc.stdout)
    assert not logged, proc.stderr[-4000:]
    return proc.stdout.splitlines()


def failed_in_one_line(proc, script):
    """The error line of a run that failed as a user error should."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-4000:])
    assert "Traceback" not in proc.stderr, proc.stderr[-4000:]
    lines = proc.stderr.splitlines()
    ours = [line for line in lines if line.startswith(f"{script}: error: ")]
    assert ours == lines[-1:], proc.stderr[-4000:]
    return ours[0]


def load_example(name):
    if EXAMPLES not in sys.path:  # for the examples' shared `_cli`
        sys.path.insert(0, EXAMPLES)
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def top5_lines(lines):
    """`[(percent, label)]` of classify's output, checked for shape."""
    # Before them, Keras may say that it fetches the class names, then the
    # model and its weights are named.
    assert all(line.startswith("Downloading data from ") for line in lines[:-6])
    assert re.fullmatch(r"RegNet[XY]\d{3} with .*; top 5 of .*:", lines[-6]), lines
    rows = [PERCENT_LINE.match(line) for line in lines[-5:]]
    assert len(rows) == 5 and all(rows), lines
    scores = [float(m.group(1)) for m in rows]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 100.01
    return [(float(m.group(1)), m.group(2)) for m in rows]


@pytest.mark.parametrize("script, args, words", [
    ("classify.py", [], "one of the arguments image --demo is required"),
    ("classify.py", ["missing.jpg"], "cannot read the image 'missing.jpg'"),
    ("classify.py", ["."], "cannot read the image '.'"),
    ("classify.py", ["--demo", "--model", "RegNetZ001"],
     "argument --model: invalid choice: 'RegNetZ001'"),
    ("classify.py", ["--demo", "--weights", "missing.h5"],
     "'missing.h5' is not a file"),
    ("finetune.py", ["--model", "resnet50"],
     "argument --model: invalid choice: 'resnet50'"),
    ("finetune.py", ["--epochs", "0"], "--epochs: 0 is not >= 1"),
    ("finetune.py", ["--seed", "x"], "argument --seed: 'x' is not a whole number >= 0"),
    ("d2l_anynet.py", ["--models", "regnetx32,vionet_z"],
     "unknown model(s) ['vionet_z']"),
    ("d2l_anynet.py", ["--image-size", "16"], "--image-size: 16 is not >= 32"),
    ("d2l_anynet.py", ["--seed", "-1"], "argument --seed: '-1' is not a whole number >= 0"),
    ("design_spaces.py", ["--spaces", "anynetx_a,anynetx_z"],
     "Invalid `--spaces`: 'anynetx_z'. Expected names from regnet, anynetx_a"),
    ("design_spaces.py", ["--models", "0"], "Invalid `--models`: 0"),
    ("design_spaces.py", ["--flops", "5M-1M"], "Invalid `--flops`: '5M-1M'"),
    ("design_spaces.py", ["--out", "/"], "Invalid `--out`: '/' exists"),
])
def test_bad_input_is_one_line_and_exit_2(script, args, words, tmp_path):
    proc = run_example(script, *args, tmp_path=tmp_path, timeout=60)
    line = failed_in_one_line(proc, script)
    assert words in line
    # Caught before Keras loads: TensorFlow's start-up lines never appear.
    assert proc.stderr == line + "\n" and proc.stdout == ""


# The long runs, keyed by the test that checks them (`test_<key>`): the
# commands of docs/weights.md, as the docs show them (tests/test_docs.py
# leaves them to this file), and two more. They start together, two at a
# time: much of a run is TensorFlow's single-threaded start-up and tracing,
# so two share two cores well.
RUNS = {
    "d2l_anynet": "python examples/d2l_anynet.py --models regnetx32 --epochs 3 "
                  "--image-size 32",
    "finetune": "python examples/finetune.py --weights none",
    "classify_demo": "python examples/classify.py --demo --weights none",
    "classify_offline": "python examples/classify.py --demo --model RegNetX002",
    "classify_file": "python examples/classify.py photo.png --model RegNetX002 "
                     "--size 64 --weights mine.weights.h5",
    # docs/weights.md's `python examples/design_spaces.py`, as test_docs.py shortens it
    "design_spaces": "python examples/design_spaces.py --spaces anynetx_c,regnet "
                     "--models 2 --epochs 1 --jobs 1",
}


def write_classify_inputs(folder):
    """An image and the weights of a RegNetX002 with a well-spread top."""
    from PIL import Image

    import keras_regnet

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype="uint8")).save(
        folder / "photo.png")
    model = keras_regnet.RegNetX002(weights=None, input_shape=(64, 64, 3))
    top = model.get_layer("predictions")
    top.kernel.assign(rng.normal(0, 0.5, top.kernel.shape))
    model.save_weights(str(folder / "mine.weights.h5"))


@pytest.fixture(scope="module")
def runs(request, tmp_path_factory):
    """`{key: (folder, Future of its CompletedProcess)}` of the selected
    tests' RUNS."""
    selected = {item.originalname for item in request.session.items}
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        started = {}
        for key, args in RUNS.items():
            if f"test_{key}" in selected:
                folder = tmp_path_factory.mktemp(key)
                if key == "classify_file":
                    write_classify_inputs(folder)
                _, script, *args = args.split()
                started[key] = folder, pool.submit(
                    run_example, os.path.basename(script), *args, tmp_path=folder)
        yield started
        pool.shutdown(cancel_futures=True)


def result(runs, key):
    return runs[key][0], runs[key][1].result()


def test_classify_demo(runs):
    import keras

    import keras_regnet

    _, proc = result(runs, "classify_demo")
    lines = succeeded(proc)
    rows = top5_lines(lines)
    assert lines[-6] == ("RegNetY016 with random weights (--weights none, seed 0): "
                         "the scores mean nothing; top 5 of the demo image:")
    # Seeded: the same random model as this process builds with seed 0.
    build = keras_regnet.RegNetY016  # its modules load before the seed is set
    keras.utils.set_random_seed(0)
    model = build(weights=None, input_shape=(224, 224, 3))
    classify = load_example("classify")
    image = classify.center_crop(classify.demo_image(), 224)
    scores = np.asarray(model(np.asarray(image, "float32")[None]))[0]
    assert [label for _, label in rows] == [
        f"class {i}" for i in np.argsort(scores)[::-1][:5]]
    np.testing.assert_allclose([p for p, _ in rows],
                               np.sort(scores)[::-1][:5] * 100, atol=0.006)


def test_classify_file(runs):
    from PIL import Image

    import keras_regnet

    folder, proc = result(runs, "classify_file")
    # Offline, the ImageNet class names cannot be fetched: class numbers.
    assert "no class names" in proc.stderr
    rows = top5_lines(succeeded(proc))
    model = keras_regnet.RegNetX002(weights=str(folder / "mine.weights.h5"),
                                    input_shape=(64, 64, 3))
    image = load_example("classify").center_crop(
        Image.open(folder / "photo.png"), 64)
    scores = np.asarray(model(np.asarray(image, "float32")[None]))[0]
    assert [label for _, label in rows] == [
        f"class {i}" for i in np.argsort(scores)[::-1][:5]]
    np.testing.assert_allclose([p for p, _ in rows],
                               np.sort(scores)[::-1][:5] * 100, atol=0.006)


def test_classify_offline(runs):
    folder, proc = result(runs, "classify_offline")
    line = failed_in_one_line(proc, "classify.py")
    assert "Could not download regnetx002.h5" in line
    assert "--weights FILE" in line and "--weights none" in line
    assert not os.listdir(folder / "keras_home" / "models")


def test_classify_top5_names_come_from_keras_class_index(monkeypatch, capsys):
    from keras.src.applications import imagenet_utils

    classify = load_example("classify")
    scores = np.linspace(0, 1, 1000, dtype="float32")[None]
    monkeypatch.setattr(imagenet_utils, "CLASS_INDEX",
                        {str(i): [f"n{i:08d}", f"name{i}"] for i in range(1000)})
    assert [label for label, _ in classify.top5(scores, named=True)] == [
        "name999", "name998", "name997", "name996", "name995"]
    assert [label for label, _ in classify.top5(scores, named=False)][:2] == [
        "class 999", "class 998"]
    assert capsys.readouterr().err == ""


def test_finetune(runs):
    lines = succeeded(result(runs, "finetune")[1])
    assert sum(line.startswith("Epoch ") for line in lines) == 20
    m = re.fullmatch(r"test accuracy with a frozen RegNetX002 backbone "
                     r"\(random weights\): (\d\.\d{3}) \(chance: 0\.100\)",
                     lines[-1])
    assert m and float(m.group(1)) >= 0.4, lines[-3:]


def test_d2l_anynet(runs):
    lines = succeeded(result(runs, "d2l_anynet")[1])
    # The chapter's RegNetX32 at 32x32: stride 2 (stem), 4, 8; 4 M mult-adds.
    m = re.fullmatch(r"regnetx32 +stem \(16, 16, 32\) stages \[\(8, 8, 32\), "
                     r"\(4, 4, 80\)\] -> \(10,\) \| 4 M mult-adds, 177 K params "
                     r"\| val acc (\d\.\d{3})", lines[-1])
    assert m and len(lines) == 1, lines
    assert float(m.group(1)) >= 0.3  # it learns the digits in three epochs


def test_design_spaces(runs):
    from tuner import analysis

    folder, proc = result(runs, "design_spaces")
    lines = succeeded(proc)
    table = [line for line in lines if line.startswith("| anynetx_c |")
             or line.startswith("| regnet |")]
    assert len(table) == 2, lines
    for line in table:
        space, models, best, median, ks = [c.strip() for c in line.strip("|").split("|")]
        errors = [100 * (1 - float(r["val_accuracy"]))
                  for r in analysis.load_run(folder / "runs" / "design_spaces" / space)
                  if r["status"] == "COMPLETED"]
        assert int(models) == len(errors) == 2
        assert float(best) == pytest.approx(min(errors), abs=0.05)
        assert float(median) == pytest.approx(np.median(errors), abs=0.05)
        assert ks == "-" if space == "anynetx_c" else 0 <= float(ks) <= 1
    # The report ran inside the output folder: it names the runs by space.
    assert re.search(r"^  anynetx_c +regnet +\d", proc.stdout, re.M), proc.stdout
    assert (folder / "runs" / "design_spaces" / "edf_normalized.png").stat().st_size > 10000
