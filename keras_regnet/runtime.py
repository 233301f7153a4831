"""What this process computes with: backend, device, CPU and the fast paths.

The probes of TensorFlow's fast paths (oneDNN, its grouped convolution,
its bfloat16 batch norm) run once per process, on first use; Keras is
imported only then, so that this module loads before TensorFlow does.
"""

import concurrent.futures
import contextlib
import os
import platform
import sys
import tempfile
import warnings


def cpu_model():
    """`(model name, [ISA extensions that matter here])` of this CPU."""
    found = {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                key, _, value = (part.strip() for part in line.partition(":"))
                if key in ("model name", "flags"):
                    found.setdefault(key, value)
                if len(found) == 2:
                    break
    except OSError:
        pass
    flags = set(found.get("flags", "").split())
    isa = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16") if f in flags]
    return found.get("model name") or platform.processor() or platform.machine(), isa


def describe():
    """A dict describing this process's computation.

    Keys: `backend` and `keras` (versions), `device` (the accelerator's name,
    or `"CPU"`), `cpu` (model, cores, ISA extensions), `onednn` (TensorFlow
    runs its CPU ops with oneDNN; None on other backends) and `grouped_conv`
    (`grouped_conv_path()`).
    """
    import keras

    backend = keras.backend.backend()
    name, isa = cpu_model()
    info = {"backend": backend, "keras": keras.__version__,
            "cpu": f"{name}, {os.cpu_count()} cores"
                   + (f", {'/'.join(isa).upper()}" if isa else ""),
            "device": _accelerator(backend) or "CPU",
            "onednn": onednn_enabled() if backend == "tensorflow" else None,
            "grouped_conv": grouped_conv_path()}
    if backend == "tensorflow":
        import tensorflow as tf

        info["backend"] = f"tensorflow {tf.__version__}"
    elif backend == "jax":
        import jax

        info["backend"] = f"jax {jax.__version__}"
    elif backend == "torch":
        import torch

        info["backend"] = f"torch {torch.__version__}"
    return info


def _accelerator(backend):
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"GPU: {details.get('device_name', gpus[0].name)}"
    elif backend == "jax":
        import jax

        device = jax.devices()[0]
        if device.platform != "cpu":
            return f"{device.platform.upper()}: {device.device_kind}"
    elif backend == "torch":
        import torch

        if torch.cuda.is_available():
            return f"GPU: {torch.cuda.get_device_name(0)}"
    return None


@contextlib.contextmanager
def native_logs_hidden(verbose=False):
    """Hides the log lines that TensorFlow's and XLA's C++ code writes to
    stderr (device probing, CPU features, "failed call to cuInit" on a
    machine without a GPU) while the block runs, unless `verbose`; they are
    shown if the block raises. Also sets `TF_CPP_MIN_LOG_LEVEL=2` (a user's
    own setting wins), which keeps TensorFlow's later info and warning
    lines quiet."""
    if verbose:
        yield
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def import_keras(verbose=False):
    """Imports Keras and its backend, and TensorFlow where it is installed,
    with their start-up log lines hidden unless `verbose`
    (`native_logs_hidden`); returns the `keras` module.

    Under JAX or torch, TensorFlow (then used for `tf.data` only) is kept
    off the GPUs."""
    with native_logs_hidden(verbose):
        import keras

        try:
            import tensorflow as tf
        except ImportError:
            return keras
        if keras.backend.backend() != "tensorflow":
            # tf.data only: the GPUs (and their memory) belong to JAX or torch.
            tf.config.set_visible_devices([], "GPU")
        tf.config.list_logical_devices()  # probes the devices, which logs
        if not verbose:
            tf.get_logger().setLevel("ERROR")
    return keras


# Once per process: {check function: whether TensorFlow's op passed it}.
_PROBES = {}


def _probe(check):
    import keras

    if check not in _PROBES:
        # The first call may come while a model is being traced; a fresh
        # thread runs eagerly with gradient tapes recording.
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            _PROBES[check] = (keras.backend.backend() == "tensorflow"
                              and pool.submit(check).result())
    return _PROBES[check]


def native_grouped_conv_ok():
    """Whether TensorFlow's own grouped conv (and its gradient) is correct here.

    Keras sends every grouped convolution on the TensorFlow backend through
    an XLA-compiled function, because TensorFlow's CPU kernel has no
    grouped gradient without oneDNN. With oneDNN or on a GPU the plain op
    is correct and 36-57x faster to train. Decided once per process by
    comparing one small grouped conv against Keras' own path; the first
    time it is False on TensorFlow, a warning says what it costs and how to
    turn oneDNN on.
    """
    import keras

    ok = _probe(_compare_with_keras_conv)
    if not ok and not _WARNED and keras.backend.backend() == "tensorflow":
        _WARNED.append(True)
        warnings.warn(slow_path_message(), stacklevel=3)
    return ok


_WARNED = []


def onednn_enabled():
    """Whether TensorFlow runs its CPU ops with oneDNN in this process."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:
        return False
    return bool(_pywrap_util_port.IsMklEnabled())


def slow_path_message():
    """Why grouped convolutions are not native here, what it costs, the fix."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if onednn_enabled():
        cause, fix = ("oneDNN is on, but TensorFlow's grouped convolution did "
                      "not match Keras' in a check", "")
    elif setting is None or setting.lower() in ("1", "true"):
        cause = ("TensorFlow was imported before keras_regnet, and it turns oneDNN "
                 "on by itself only on CPUs with AVX-512 VNNI/BF16 or AMX"
                 if setting is None else "TF_ENABLE_ONEDNN_OPTS=1 was set after "
                 "TensorFlow had been imported")
        fix = (" For full speed set TF_ENABLE_ONEDNN_OPTS=1 before TensorFlow is "
               "imported, or import keras_regnet before keras and tensorflow.")
    else:
        cause = f"TF_ENABLE_ONEDNN_OPTS={setting}"
        fix = " For full speed set TF_ENABLE_ONEDNN_OPTS=1 instead."
    return (f"keras_regnet: TensorFlow runs grouped convolutions without oneDNN "
            f"here ({cause}), and its own have no gradient on this CPU. RegNets "
            "compute them from depthwise and per-group convolutions instead "
            "(the same results), which trains about 2x slower than with "
            f"oneDNN.{fix}")


def grouped_conv_path():
    """How `NativeConv2D` computes grouped convolutions in this process.

    Returns:
        `"native"` (TensorFlow's own op: oneDNN on a CPU, or a GPU),
        `"portable"` (`grouped_conv`: TensorFlow on a CPU without oneDNN)
        or `"keras"` (the JAX and torch backends: Keras' own conv).
    """
    import keras

    if keras.backend.backend() != "tensorflow":
        return "keras"
    return "native" if native_grouped_conv_ok() else "portable"


def native_bf16_batch_norm_ok():
    """Whether TensorFlow's fused batch norm runs on bfloat16 inputs here.

    oneDNN has no bfloat16 batch norm without AVX-512 (it raises); there
    the layer computes in float32, as Keras' layer does.
    """
    return _probe(_run_bf16_batch_norm)


def _run_bf16_batch_norm():
    import tensorflow as tf

    x = tf.ones((1, 2, 2, 16), tf.bfloat16)
    ones = tf.ones([16])
    empty = tf.constant([], tf.float32)
    try:
        for training in (True, False):
            tf.raw_ops.FusedBatchNormV3(
                x=x, scale=ones, offset=ones,
                mean=empty if training else ones,
                variance=empty if training else ones,
                is_training=training)[0].numpy()
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    return True


def _compare_with_keras_conv():
    import numpy as np
    import tensorflow as tf
    from keras import ops

    rng = np.random.default_rng(0)
    x = tf.constant(rng.standard_normal((2, 9, 9, 8)), tf.float32)
    k = tf.constant(rng.standard_normal((3, 3, 2, 8)), tf.float32)

    def forward_and_grads(conv):
        with tf.GradientTape() as tape:
            tape.watch([x, k])
            y = conv(x, k)
            loss = tf.reduce_sum(y * y)
        return [y, *tape.gradient(loss, [x, k])]

    try:
        native = forward_and_grads(
            lambda x, k: tf.nn.convolution(x, k, strides=2, padding="SAME"))
    except Exception:  # noqa: BLE001 - any failure means "not usable here"
        return False
    reference = forward_and_grads(
        lambda x, k: ops.conv(x, k, strides=2, padding="same",
                              data_format="channels_last"))
    return all(np.allclose(a.numpy(), np.asarray(b), rtol=1e-4, atol=1e-3)
               for a, b in zip(native, reference))
