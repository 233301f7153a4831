"""The benchmark's contestants: keras_regnet, tf_keras.applications and pycls.

Every builder returns a `Runner`: two zero-argument callables that run one
batch of inference or one SGD training step and return only when the work
is done.
"""

import contextlib
import dataclasses
from typing import Callable, Optional

import numpy as np

BATCH = 32
SIZE = 224
CLASSES = 1000


@dataclasses.dataclass
class Runner:
    infer: Optional[Callable[[], object]] = None
    train: Optional[Callable[[], object]] = None
    model: object = None


def random_batch(seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(0, 255, (BATCH, SIZE, SIZE, 3)).astype("float32")
    labels = rng.integers(0, CLASSES, BATCH).astype("int32")
    return images, labels


# --------------------------------------------------------------- TensorFlow

def _tf_runner(model, apply_gradients, images, labels, jit_compile,
               infer=True, train=True):
    """Compiled inference and SGD training steps for a Keras 3 or tf_keras model."""
    import tensorflow as tf

    x = tf.constant(images)
    y = tf.constant(labels) if train else None

    @tf.function(jit_compile=jit_compile)
    def infer_step(x):
        return model(x, training=False)

    @tf.function(jit_compile=jit_compile)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            probs = tf.cast(model(x, training=True), tf.float32)
            loss = tf.reduce_mean(
                tf.keras.losses.sparse_categorical_crossentropy(y, probs))
        grads = tape.gradient(loss, model.trainable_variables)
        apply_gradients(grads, model.trainable_variables)
        return loss

    return Runner(
        infer=(lambda: infer_step(x).numpy()) if infer else None,
        train=(lambda: train_step(x, y).numpy()) if train else None,
        model=model)


@contextlib.contextmanager
def _global_policy(get, set_, policy):
    previous = get()
    set_(policy)
    try:
        yield
    finally:
        set_(previous)


def keras_policy(policy):
    import keras
    return _global_policy(keras.config.dtype_policy,
                          keras.config.set_dtype_policy, policy)


def keras3_runner(model, images, labels, jit_compile=False, infer=True,
                  train=True):
    import keras
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(model.trainable_variables)
    return _tf_runner(model, optimizer.apply, images, labels, jit_compile,
                      infer, train)


def ours(name, images, labels, bf16=False, jit_compile=False, train=True):
    """keras_regnet's model `name` (e.g. "RegNetX002"), random weights."""
    import keras_regnet.models.regnet as regnet
    with keras_policy("mixed_bfloat16" if bf16 else "float32"):
        model = getattr(regnet, name)(weights=None)
    return keras3_runner(model, images, labels, jit_compile, train=train)


def ours_inference(name, images, bf16=False, source=None, batch_splits=2):
    """keras_regnet's inference export (BN folded) of model `name`.

    By default the batch runs as two concurrent slices (`batch_splits=2`),
    the fastest for batch 32 on a CPU.
    """
    from keras_regnet.models import inference, regnet
    if source is None:
        source = getattr(regnet, name)(weights=None)
    model = inference.inference_model(
        source, dtype="bfloat16" if bf16 else "float32", batch_splits=batch_splits)
    return keras3_runner(model, images, None, train=False)


def tf_keras_policy(policy):
    import tf_keras
    return _global_policy(tf_keras.mixed_precision.global_policy,
                          tf_keras.mixed_precision.set_global_policy, policy)


def tf_keras_model(name, images, labels, native=True, bf16=False, train=True):
    """Keras 2's `tf_keras.applications.regnet` model `name`.

    With `native=False` it runs as shipped: every grouped convolution is an
    XLA-compiled function (`_jit_compiled_convolution_op`). `native=True`
    routes those through the layer's own `tf.nn.convolution` call instead,
    which oneDNN computes correctly on this CPU.
    """
    import tf_keras
    from tf_keras.applications import regnet
    with tf_keras_policy("mixed_bfloat16" if bf16 else "float32"):
        model = getattr(regnet, name)(weights=None)
    if native:
        for layer in model.submodules:
            if getattr(layer, "groups", 1) > 1:
                layer._jit_compiled_convolution_op = layer.convolution_op
    optimizer = tf_keras.optimizers.SGD(0.01, momentum=0.9)

    def apply_gradients(grads, variables):
        optimizer.apply_gradients(zip(grads, variables))

    return _tf_runner(model, apply_gradients, images, labels, False,
                      train=train)


# ------------------------------------------------------------------ PyTorch

def pycls_model(spec, images, labels, bf16=False):
    """pycls' AnyNet for an `AnyNetSpec`, channels-last, on CPU torch.

    bf16 uses `torch.autocast` (the forward pass; backward follows it).
    """
    import torch
    from pycls.models.anynet import AnyNet

    if spec.block_type not in ("x", "y"):
        raise ValueError(f"Invalid `spec.block_type`: {spec.block_type!r}. "
                         "The benchmark compares X and Y blocks only.")
    model = AnyNet(
        stem_type="simple_stem_in", stem_w=spec.stem_width,
        block_type="res_bottleneck_block", ds=list(spec.depths),
        ws=list(spec.widths), ss=list(spec.strides),
        bms=list(spec.bottleneck_ratios), gws=list(spec.group_widths),
        se_r=spec.se_ratio or None, nc=CLASSES)
    model = model.to(memory_format=torch.channels_last)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(
        memory_format=torch.channels_last)
    y = torch.from_numpy(labels).long()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = torch.nn.CrossEntropyLoss()

    def autocast():
        return torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)

    def infer():
        model.eval()
        with torch.inference_mode(), autocast():
            return model(x)

    def train():
        model.train()
        optimizer.zero_grad(set_to_none=True)
        with autocast():
            loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss.item()

    return Runner(infer=infer, train=train, model=model)


# ------------------------------------------------------------- matmul peak

def matmul_peak(repeats=5, dtypes=("fp32", "bf16")):
    """Best matmul throughput per dtype (FLOP/s, 2 per multiply-add).

    Square matmuls of a few sizes in TensorFlow and in torch, best of
    `repeats` each; the fastest is taken as the machine's peak for that
    dtype.
    """
    import time

    import tensorflow as tf
    import torch

    def best(fn, flops):
        fn()
        seconds = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            seconds.append(time.perf_counter() - start)
        return flops / min(seconds)

    matmul = tf.function(lambda m: tf.matmul(m, m)[0, 0])
    peaks = {}
    for dtype in dtypes:
        rates = {"tensorflow": 0.0, "torch": 0.0}
        for n in (1024, 2048, 4096):
            flops = 2 * n ** 3
            a = tf.random.uniform((n, n), dtype=tf.float32)
            tf_a = a if dtype == "fp32" else tf.cast(a, tf.bfloat16)
            rates["tensorflow"] = max(rates["tensorflow"],
                                      best(lambda: matmul(tf_a).numpy(), flops))
            t_a = torch.rand(n, n, dtype=torch.float32 if dtype == "fp32"
                             else torch.bfloat16)
            rates["torch"] = max(rates["torch"],
                                 best(lambda: torch.mm(t_a, t_a)[0, 0].item(), flops))
        peaks[dtype] = {**rates, "peak": max(rates.values())}
    return peaks
