"""Computations the runtime tests repeat on each Keras backend.

Imported by tests/test_models_runtime.py for TensorFlow, and run as a script
with KERAS_BACKEND set for JAX and torch:

    python tests/_backend_check.py IN.npz OUT.npz WEIGHTS.h5 MODEL_KWARGS_JSON
"""

import json
import os
import sys

import numpy as np

# The grouped-conv cases: every one is a grouped conv (groups > 1), with
# odd and even sizes so that stride-2 'same' padding is asymmetric.
CONV_CASES = [
    dict(filters=16, kernel_size=3, strides=1, padding="same", groups=2),
    dict(filters=16, kernel_size=3, strides=2, padding="same", groups=4),
    dict(filters=16, kernel_size=3, strides=2, padding="valid", groups=2),
    dict(filters=8, kernel_size=3, strides=1, padding="valid", groups=8),
    dict(filters=16, kernel_size=1, strides=2, padding="same", groups=2),
]
CONV_INPUT_SHAPE = (2, 10, 9, 8)


def conv_inputs(seed=0):
    """Input, one kernel and one output cotangent per case, as numpy."""
    import keras

    rng = np.random.default_rng(seed)
    arrays = {"x": rng.standard_normal(CONV_INPUT_SHAPE).astype("float32")}
    channels = CONV_INPUT_SHAPE[-1]
    for i, case in enumerate(CONV_CASES):
        k = case["kernel_size"]
        arrays[f"{i}_kernel"] = rng.standard_normal(
            (k, k, channels // case["groups"], case["filters"])).astype("float32")
        out_shape = keras.layers.Conv2D(**case).compute_output_shape(
            CONV_INPUT_SHAPE)
        arrays[f"{i}_cot"] = rng.standard_normal(out_shape).astype("float32")
    return arrays


def _forward_and_grads(layer, x, cotangent):
    """Output of `layer(x)` and the gradients of sum(output * cotangent)
    with respect to `x` and the layer's kernel, as numpy arrays."""
    import keras

    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            out = layer(x)
            loss = tf.reduce_sum(out * cotangent)
        gx, gk = tape.gradient(loss, [x, layer.kernel])
        return out.numpy(), gx.numpy(), gk.numpy()
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        def loss(x, kernel):
            out, _ = layer.stateless_call([kernel], [], x)
            return jnp.sum(out * cotangent), out

        (_, out), (gx, gk) = jax.value_and_grad(
            loss, argnums=(0, 1), has_aux=True)(jnp.asarray(x),
                                                layer.kernel.value)
        return np.asarray(out), np.asarray(gx), np.asarray(gk)
    if backend == "torch":
        import torch

        x = torch.tensor(x, requires_grad=True)
        out = layer(x)
        loss = (out * torch.tensor(cotangent)).sum()
        gx, gk = torch.autograd.grad(loss, [x, layer.kernel.value])
        return (out.detach().cpu().numpy(), gx.cpu().numpy(),
                gk.cpu().numpy())
    raise ValueError(f"Unsupported backend: {backend!r}.")


def conv_results(layer_class, arrays):
    """Per case: output of `layer_class` with the case's kernel, and the
    gradients of sum(output * cotangent) w.r.t. input and kernel."""
    results = {}
    for i, case in enumerate(CONV_CASES):
        layer = layer_class(**case, use_bias=False)
        layer.build(CONV_INPUT_SHAPE)
        layer.kernel.assign(arrays[f"{i}_kernel"])
        results[i] = _forward_and_grads(layer, arrays["x"], arrays[f"{i}_cot"])
    return results


def main(in_path, out_path, weights_path, model_kwargs):
    """Writes, for this process's backend, the grouped-conv results of
    `NativeConv2D` and `keras.layers.Conv2D` and the outputs of
    `RegNet(**model_kwargs)` loaded from `weights_path`."""
    import keras

    import keras_regnet

    arrays = dict(np.load(in_path))
    results = {"backend": np.array(keras.backend.backend())}
    for prefix, cls in (("grouped", keras_regnet.NativeConv2D),
                        ("keras", keras.layers.Conv2D)):
        for i, values in conv_results(cls, arrays).items():
            for key, value in zip(("out", "dx", "dkernel"), values):
                results[f"{i}_{prefix}_{key}"] = value
    model = keras_regnet.RegNet(**model_kwargs, weights=weights_path)
    results["model_out"] = np.asarray(model.predict(arrays["images"], verbose=0))
    tmp = out_path + ".tmp.npz"
    np.savez(tmp, **results)
    os.replace(tmp, out_path)


if __name__ == "__main__":
    main(*sys.argv[1:4], json.loads(sys.argv[4]))
