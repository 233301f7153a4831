"""Training utilities for RegNets on the TensorFlow backend."""

import keras


@keras.saving.register_keras_serializable(package="keras_regnet")
class SGD(keras.optimizers.SGD):
    """`keras.optimizers.SGD` whose update is one fused kernel per variable.

    Same arguments, state, updates (momentum, Nesterov, decoupled weight
    decay) and saved files as `keras.optimizers.SGD`. On the TensorFlow
    backend, outside a `tf.distribute` strategy, each variable's update is
    TensorFlow's `ResourceApplyKerasMomentum` (and its weight decay one
    `ResourceApplyGradientDescent`) instead of Keras' chain of a dozen
    elementwise ops per variable: a RegNet's training graph has about half
    the ops, so each new model traces and starts training about twice as
    fast, which is most of a short trial's time on a CPU. Elsewhere it is
    exactly Keras' SGD.
    """

    def _fused(self, grads):
        if keras.backend.backend() != "tensorflow":
            return False
        import tensorflow as tf

        return (not tf.distribute.has_strategy()
                and not any(isinstance(g, tf.IndexedSlices) for g in grads))

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        if not self._fused(grads):
            return super()._backend_update_step(grads, trainable_variables,
                                                learning_rate)
        import tensorflow as tf

        for grad, variable in zip(grads, trainable_variables):
            var = variable.value if isinstance(variable, keras.Variable) else variable
            lr = tf.cast(learning_rate, var.dtype)
            grad = tf.cast(grad, var.dtype)
            if self.momentum:
                accum = self.momentums[self._get_variable_index(variable)]
                tf.raw_ops.ResourceApplyKerasMomentum(
                    var=var.handle, accum=accum.value.handle, lr=lr, grad=grad,
                    momentum=tf.cast(self.momentum, var.dtype),
                    use_nesterov=self.nesterov)
            else:
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=var.handle, alpha=lr, delta=grad)

    def _apply_weight_decay(self, variables):
        if self.weight_decay is None or not self._fused([]):
            return super()._apply_weight_decay(variables)
        import tensorflow as tf

        for variable in variables:
            if self._use_weight_decay(variable):
                var = variable.value if isinstance(variable, keras.Variable) else variable
                decay = tf.cast(self.learning_rate * self.weight_decay, var.dtype)
                tf.raw_ops.ResourceApplyGradientDescent(
                    var=var.handle, alpha=decay, delta=var.read_value())

