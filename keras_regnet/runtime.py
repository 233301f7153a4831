"""What this process computes with: backend, device, CPU and the fast paths."""

import contextlib
import os
import platform
import sys
import tempfile


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
    (`keras_regnet.models.layers.grouped_conv_path()`).
    """
    import keras

    from keras_regnet.models import layers

    backend = keras.backend.backend()
    name, isa = cpu_model()
    info = {"backend": backend, "keras": keras.__version__,
            "cpu": f"{name}, {os.cpu_count()} cores"
                   + (f", {'/'.join(isa).upper()}" if isa else ""),
            "device": _accelerator(backend) or "CPU",
            "onednn": layers.onednn_enabled() if backend == "tensorflow" else None,
            "grouped_conv": layers.grouped_conv_path()}
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
