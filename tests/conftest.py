import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Before anything imports TensorFlow, as a user's program does: on CPUs where
# TensorFlow leaves oneDNN off by default, keras_regnet turns it on.
import keras_regnet  # noqa: E402,F401

TESTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)

# The paper's model zoo (Radosavovic et al. 2020, appendix; pycls MODEL_ZOO):
# name: (d, w0, wa, wm, g, SE, GF multiply-adds at 224, M params).
PAPER_ZOO = {
    "RegNetX002": (13, 24, 36.44, 2.49, 8, False, 0.20, 2.7),
    "RegNetX004": (22, 24, 24.48, 2.54, 16, False, 0.40, 5.2),
    "RegNetX006": (16, 48, 36.97, 2.24, 24, False, 0.60, 6.2),
    "RegNetX008": (16, 56, 35.73, 2.28, 16, False, 0.80, 7.3),
    "RegNetX016": (18, 80, 34.01, 2.25, 24, False, 1.60, 9.2),
    "RegNetX032": (25, 88, 26.31, 2.25, 48, False, 3.18, 15.3),
    "RegNetX040": (23, 96, 38.65, 2.43, 40, False, 3.96, 22.1),
    "RegNetX064": (17, 184, 60.83, 2.07, 56, False, 6.46, 26.2),
    "RegNetX080": (23, 80, 49.56, 2.88, 120, False, 8.00, 39.6),
    "RegNetX120": (19, 168, 73.36, 2.37, 112, False, 12.09, 46.1),
    "RegNetX160": (22, 216, 55.59, 2.10, 128, False, 15.94, 54.3),
    "RegNetX320": (23, 320, 69.86, 2.00, 168, False, 31.74, 107.8),
    "RegNetY002": (13, 24, 36.44, 2.49, 8, True, 0.20, 3.2),
    "RegNetY004": (16, 48, 27.89, 2.09, 8, True, 0.40, 4.3),
    "RegNetY006": (15, 48, 32.54, 2.32, 16, True, 0.60, 6.1),
    "RegNetY008": (14, 56, 38.84, 2.40, 16, True, 0.80, 6.3),
    "RegNetY016": (27, 48, 20.71, 2.65, 24, True, 1.61, 11.2),
    "RegNetY032": (21, 80, 42.63, 2.66, 24, True, 3.18, 19.4),
    "RegNetY040": (22, 96, 31.41, 2.24, 64, True, 3.97, 20.6),
    "RegNetY064": (25, 112, 33.22, 2.27, 72, True, 6.36, 30.6),
    "RegNetY080": (17, 192, 76.82, 2.19, 56, True, 7.96, 39.2),
    "RegNetY120": (19, 168, 73.36, 2.37, 112, True, 12.09, 51.8),
    "RegNetY160": (18, 200, 106.23, 2.48, 112, True, 15.91, 83.6),
    "RegNetY320": (20, 232, 115.89, 2.53, 232, True, 32.28, 145.0),
}
# The reference implementation's exact counts for RegNetX-200MF.
X200MF_EXACT = {"flops": 199_040_872, "params": 2_684_792, "acts": 2_164_056}


def randomize_bn(model, seed=0):
    """Random BN parameters and moving statistics, so that inference outputs
    depend on all four being computed, saved, loaded or folded right.

    Returns the generator, for randomising further weights."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.3, n),
                               rng.normal(0, 0.3, n), rng.uniform(0.3, 2.0, n)])
    return rng


def random_images(n, shape, seed=0):
    """`n` float32 images of `shape` (H, W, C), uniform in [0, 255)."""
    return np.random.default_rng(seed).uniform(0, 255, (n, *shape)).astype("float32")


def run_python(args, timeout=300, **env):
    """Runs `python *args` with the repository and the tests importable and
    `env` added to the environment; asserts that it succeeded and returns the
    finished process (stdout captured)."""
    env = dict(os.environ, **env, PYTHONPATH=os.pathsep.join(
        filter(None, [REPO, TESTS, os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def dataset_arrays(ds):
    """All `(images, labels)` of a batched `tf.data` dataset, as arrays."""
    x, y = zip(*[(x.numpy(), y.numpy()) for x, y in ds])
    return np.concatenate(x), np.concatenate(y)


def cpu_flags():
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        return set(f.read().split())


@pytest.fixture
def nothing_built(monkeypatch):
    """Fails the test if a model starts being built."""
    from keras_regnet.models import blocks  # not loaded yet in a lone test

    def fail(*args, **kwargs):
        raise AssertionError("a model was built before the input was checked")
    monkeypatch.setattr(blocks, "stem", fail)
