"""`python -m tuner`: a real search on digits, bad input, kill and resume,
and local workers over Keras Tuner's gRPC protocol (issue 4)."""

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from tuner import folder, run
from tuner.trials import read_trials_csv

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Tiny RegNets on the 8x8 digits, for the process tests.
TINY = ["--image-size", "8", "--depth", "1-3", "--w0", "8-16", "--wa", "8-16",
        "--group-width", "4,8", "--flops", "none", "--batch-size", "64", "--verbose", "2"]


def _tuner(*args, **kwargs):
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL="3")
    return subprocess.Popen([sys.executable, "-m", "tuner", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, **kwargs)


def _run(*args, timeout=300):
    proc = _tuner(*args)
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out
    return out


def _rows(out):
    return read_trials_csv(os.path.join(out, "trials.csv"))


# The search that learns the digits and exports its best model is the
# README's main job: tests/test_docs.py runs it as written.


def test_configuration_that_crashes_onednn_avx512_trains(tmp_path):
    # Stages of widths (8, 24) at 32x32, whose shortcut's strided 1x1
    # convolution made TensorFlow 2.21's oneDNN corrupt the heap (abort) on
    # AVX-512/AMX CPUs at the digits' odd last batch; see NativeConv2D.
    out = str(tmp_path / "run")
    _run("search", "--out", out, "--depth", "4", "--w0", "8", "--wa", "9.11",
         "--wm", "2.93", "--bottleneck-ratio", "1", "--group-width", "8",
         "--image-size", "32", "--flops", "none", "--params", "none",
         "--max-trials", "1", "--epochs", "2", "--verbose", "0")
    assert [r["status"] for r in _rows(out)] == ["COMPLETED"]


def test_search_with_z_blocks(tmp_path):
    """`--block Z` searches RegNets of RegNetZ's blocks (inverted bottleneck
    b in 0.25, 0.5, 1; SE; SiLU), with the float b choices through Keras
    Tuner, trials.csv and the exported model."""
    import keras_regnet

    out = str(tmp_path / "run")
    _run("search", "--out", out, "--block", "Z", *TINY, "--max-trials", "2",
         "--epochs", "1", "--seed", "1")
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 2
    assert {r["bottleneck_ratio"] for r in rows} <= {0.25, 0.5, 1}
    assert any(r["bottleneck_ratio"] < 1 for r in rows)
    best = min(rows, key=lambda r: r["error"])
    model = keras_regnet.load_model(os.path.join(out, folder.BEST_KERAS))
    widths = [layer.filters for layer in model.layers
              if layer.name.endswith("_b_conv")]
    last = [layer.filters for layer in model.layers if layer.name.endswith("_c_conv")]
    # The 3x3 runs at the expanded width w / b of each block's stage.
    assert [w / c for w, c in zip(widths, last)] == [1 / best["bottleneck_ratio"]] * len(widths)
    assert any(layer.name.endswith("_se_reduce") for layer in model.layers)
    assert any(layer.name.endswith("_silu") for layer in model.layers)
    with pytest.raises(AssertionError, match="Z blocks: the regnet space"):
        _run("search", "--out", str(tmp_path / "x"), "--block", "Z", "--space",
             "anynetx_b")


def test_search_on_the_torch_backend(tmp_path):
    """Keras' torch backend: the header names it, TensorFlow's start-up lines
    stay hidden although the data pipeline loads it, and the best model is
    saved as a .keras file (Keras cannot export these models to a SavedModel
    through torch.export)."""
    pytest.importorskip("torch")
    out = str(tmp_path / "run")
    env = dict(os.environ, PYTHONPATH=REPO, KERAS_BACKEND="torch")
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "tuner", "search", "--max-trials", "1", "--epochs", "1",
         "--out", out, "--verbose", "0", *TINY[:-2]],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stderr == "", proc.stderr
    assert re.search(r"^  Keras \S+ on torch \S+, CPU ", proc.stdout, re.M), proc.stdout
    # On a CPU the header says what to expect, and which backend is faster.
    assert f"\n  {run.CPU_BACKEND_NOTES['torch']}\n" in proc.stdout
    assert "no SavedModel on the torch backend" in proc.stdout
    assert [r["status"] for r in _rows(out)] == ["COMPLETED"]
    assert os.path.isfile(os.path.join(out, folder.BEST_KERAS))
    assert not os.path.exists(os.path.join(out, folder.BEST_SAVEDMODEL))


def _wait_for(predicate, proc, timeout=240):
    end = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, proc.communicate()[0]
        assert time.time() < end, "timed out"
        time.sleep(0.2)


def _completed(out):
    try:
        return [r for r in _rows(out) if r["status"] == "COMPLETED"]
    except FileNotFoundError:
        return []


def test_workers_share_trials_and_survive_a_killed_worker(tmp_path):
    out = str(tmp_path / "run")
    proc = _tuner("search", "--workers", "2", "--trials-per-worker", "2",
                  "--max-trials", "5", "--epochs", "2", "--out", out, *TINY)
    lines = []

    def worker1_training():
        # worker1's log shows Keras' epoch lines once it trains its first trial.
        path = os.path.join(out, folder.LOGS, "worker1.log")
        return os.path.exists(path) and "Epoch 1/2" in open(path).read()

    _wait_for(worker1_training, proc)
    os.kill(_worker_pid(proc, lines, "worker1"), signal.SIGKILL)
    rest, _ = proc.communicate(timeout=300)
    log = "\n".join(lines) + rest
    assert proc.returncode == 0, log
    rows = _rows(out)
    assert [r["status"] for r in rows] == ["COMPLETED"] * 5
    assert {r["tuner_id"] for r in rows} == {"worker1", "worker2"}
    assert re.search(r"worker1 exited with code -9 during trial \d; restarting", log)
    assert "replaced after its share of trials" in log
    assert os.path.isfile(os.path.join(out, folder.BEST_KERAS))


def _worker_pid(proc, lines, name):
    while True:
        line = proc.stdout.readline()
        assert line, "\n".join(lines)
        lines.append(line.rstrip())
        m = re.search(rf"\[chief\] {name} started, pid (\d+)", line)
        if m:
            return int(m.group(1))
