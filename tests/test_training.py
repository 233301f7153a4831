"""keras_regnet.training.SGD against Keras' SGD, and the hypermodel's
training setup: one trace per model (issue 12)."""

import collections

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

import keras_regnet
from keras_regnet.training import SGD
from tuner import RegNetHyperModel


def _run(optimizer_class, steps=3, **kwargs):
    rng = np.random.default_rng(0)
    variables = [keras.Variable(rng.normal(size=(3, 4)).astype("float32")),
                 keras.Variable(rng.normal(size=4).astype("float32"))]
    optimizer = optimizer_class(learning_rate=0.1, **kwargs)
    optimizer.build(variables)

    @tf.function
    def step(grads):
        optimizer.apply(grads, variables)

    for i in range(steps):
        step([tf.constant(rng.normal(size=v.shape), tf.float32) for v in variables])
    return [v.numpy() for v in variables + optimizer.variables]


@pytest.mark.parametrize("kwargs", [
    dict(momentum=0.9, nesterov=True, weight_decay=5e-3),
    dict(momentum=0.9),
    dict(),
    dict(weight_decay=1e-2),
])
def test_fused_sgd_equals_keras_sgd(kwargs):
    ours, keras_sgd = _run(SGD, **kwargs), _run(keras.optimizers.SGD, **kwargs)
    assert len(ours) == len(keras_sgd)
    for a, b in zip(ours, keras_sgd):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    # The variables moved: the comparison is not between two no-ops.
    assert not np.allclose(ours[0], _run(SGD, steps=0, **kwargs)[0])


def test_fused_sgd_halves_the_training_graph():
    model = keras_regnet.RegNet(depth=6, w0=16, wa=16.0, wm=2.0, group_width=8,
                                stem_type="cifar", input_shape=(16, 16, 3), classes=10)
    x = tf.zeros((2, 16, 16, 3))
    y = tf.zeros((2,), tf.int32)

    def graph_ops(optimizer):
        optimizer.build(model.trainable_variables)

        def step(x, y):
            with tf.GradientTape() as tape:
                loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                    y, model(x, training=True)))
            optimizer.apply(tape.gradient(loss, model.trainable_variables),
                            model.trainable_variables)

        graph = tf.function(step).get_concrete_function(x, y).graph
        return collections.Counter(op.type for op in graph.get_operations())

    kwargs = dict(learning_rate=0.1, momentum=0.9, nesterov=True, weight_decay=5e-5)
    ours, theirs = graph_ops(SGD(**kwargs)), graph_ops(keras.optimizers.SGD(**kwargs))
    assert ours["ResourceApplyKerasMomentum"] == len(model.trainable_variables)
    assert sum(ours.values()) < 0.8 * sum(theirs.values())


def test_fused_sgd_is_saved_and_loaded(tmp_path):
    model = keras_regnet.RegNet(depth=2, w0=16, wa=16.0, wm=2.0, group_width=8,
                                stem_type="cifar", input_shape=(16, 16, 3), classes=3)
    model.compile(optimizer=SGD(0.05, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy")
    model.fit(np.random.rand(4, 16, 16, 3) * 255, np.arange(4) % 3, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    assert type(loaded.optimizer) is SGD and loaded.optimizer.nesterov
    assert float(loaded.optimizer.learning_rate) == pytest.approx(0.05)


def test_hypermodel_models_trace_their_training_step_once():
    """Keras creates the optimizer and metric variables while tracing the
    first step unless they exist, and TensorFlow then traces the step again."""
    hypermodel = RegNetHyperModel((8, 8, 1), 10, depth=(1, 3), w0=(8, 16),
                                  wa=(8.0, 16.0), group_width=(4, 8))
    model = hypermodel.build(keras_tuner.HyperParameters())
    traces = []
    train_step = model.train_step

    def counting_train_step(data):
        traces.append(1)
        return train_step(data)

    model.train_step = counting_train_step
    x = np.random.default_rng(0).uniform(0, 255, (40, 8, 8, 1)).astype("float32")
    model.fit(x, np.arange(40) % 10, batch_size=8, epochs=2, verbose=0)
    assert len(traces) == 1
