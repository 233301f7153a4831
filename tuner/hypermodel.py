"""The RegNet hypermodel: the paper's six-parameter design space for Keras Tuner."""

import math

import keras
import keras_tuner
import numpy as np

import keras_regnet
from keras_regnet.design.regnet import QUANTUM
from keras_regnet.design.sampling import (CHOICE_PARAMS, PAPER_RANGES,
                                          RANGE_PARAMS, RegNetDesignSpace,
                                          _error, _is_number)

# Inputs smaller than this get the CIFAR-style stem (3x3 conv, stride 1).
CIFAR_STEM_BELOW = 64


def _optimizer_range(name, value, allow_zero):
    """A fixed value or a `(lo, hi)` log range of a positive number."""
    pair = value if isinstance(value, (tuple, list)) else (value, value)
    ok = len(pair) == 2 and all(_is_number(v) for v in pair)
    if ok:
        lo, hi = float(pair[0]), float(pair[1])
        fixed = lo == hi
        ok = lo <= hi and (lo > 0 or (allow_zero and fixed and lo == 0))
    if not ok:
        zero = " (or exactly 0)" if allow_zero else ""
        raise _error(name, value, f"a number > 0{zero} or a `(lo, hi)` range with 0 < lo <= hi")
    return lo, hi


class RegNetHyperModel(keras_tuner.HyperModel):
    """Searches the RegNet design space (Radosavovic et al., 2020) with Keras Tuner.

    The hyperparameters are the six RegNet parameters: depth `d`, initial
    width `w0`, slope `wa`, width multiplier `wm`, bottleneck ratio `b` and
    group width `g`, with the paper's ranges as defaults. Pass a number to
    fix one, a `(lo, hi)` pair (or, for `b` and `g`, a list of values) to
    narrow it. With a compute budget, use the oracles of `tuner.oracle` (or
    `tuner.build_tuner`), which only propose configurations inside it.

    Example:

    ```python
    hypermodel = tuner.RegNetHyperModel((32, 32, 3), classes=10,
                                        flops=(20e6, 40e6))
    search = tuner.build_tuner(hypermodel, "random", max_trials=20)
    search.search(x, y, validation_data=(x_val, y_val), epochs=5)
    ```

    Args:
        input_shape: `(height, width, channels)` with height == width.
        classes: number of classes.
        block: `"X"` (RegNetX) or `"Y"` (RegNetY, squeeze-and-excitation
            with ratio 0.25).
        depth: fixed value or `(lo, hi)`; default `(12, 28)`.
        w0: fixed value or `(lo, hi)`, multiples of 8; default `(8, 256)`.
        wa: fixed value or `(lo, hi)`, log-scaled; default `(8, 256)`.
        wm: fixed value or `(lo, hi)`, log-scaled; default `(1.5, 3)`.
        bottleneck_ratio: fixed value or list from `(1, 2, 4)`.
        group_width: fixed value or list from `(1, 2, 4, 8, 16, 32)`.
        flops: `None` or `(lo, hi)` multiply-adds at `input_shape` (either
            end may be `None`).
        params: `None` or `(lo, hi)` trainable parameters.
        learning_rate: fixed value or `(lo, hi)` log-scaled hyperparameter
            of SGD (momentum 0.9, Nesterov), as in the paper.
        weight_decay: fixed value (0 for none) or `(lo, hi)` log-scaled.
        stem_type: `None` (CIFAR-style stem below 64x64 inputs, ImageNet
            stem otherwise), `"cifar"` or `"imagenet"`.
        mixed_precision: train in `mixed_float16` on a GPU, `mixed_bfloat16`
            otherwise.
        jit_compile: passed to `Model.compile`.
        zero_init_last_bn: zero-initialise the last BN of each residual
            branch (deep models then train stably from the first epoch).
        include_preprocessing: models take `[0, 255]` pixels.
        seed: if set, every trial starts from the same initial random state.
        name, tunable: as for `keras_tuner.HyperModel`.
    """

    def __init__(self, input_shape=(224, 224, 3), classes=1000, block="X", *,
                 depth=PAPER_RANGES["depth"], w0=PAPER_RANGES["w0"],
                 wa=PAPER_RANGES["wa"], wm=PAPER_RANGES["wm"],
                 bottleneck_ratio=PAPER_RANGES["bottleneck_ratio"],
                 group_width=PAPER_RANGES["group_width"], flops=None,
                 params=None, learning_rate=0.1, weight_decay=5e-5,
                 stem_type=None, mixed_precision=False, jit_compile="auto",
                 zero_init_last_bn=True, include_preprocessing=True,
                 seed=None, name="regnet", tunable=True):
        super().__init__(name=name, tunable=tunable)
        if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
                and all(isinstance(v, int) and v >= 1 for v in input_shape)
                and input_shape[0] == input_shape[1]):
            raise _error("input_shape", input_shape,
                         "(size, size, channels) with positive integers")
        if str(block).upper() not in ("X", "Y"):
            raise _error("block", block, "'X' or 'Y'")
        if stem_type is None:
            stem_type = "cifar" if input_shape[0] < CIFAR_STEM_BELOW else "imagenet"
        smallest = 32 if stem_type == "imagenet" else 8
        if input_shape[0] < smallest:
            raise _error("input_shape", input_shape,
                         f"height and width >= {smallest} with the {stem_type} stem")
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.block = str(block).upper()
        self.space = RegNetDesignSpace(
            depth, w0, wa, wm, bottleneck_ratio, group_width,
            block_type=self.block.lower(), stem_type=stem_type,
            input_size=input_shape[0], channels=input_shape[2],
            classes=classes, flops=flops, params=params)
        self.learning_rate = _optimizer_range("learning_rate", learning_rate, False)
        self.weight_decay = _optimizer_range("weight_decay", weight_decay, True)
        self.mixed_precision = bool(mixed_precision)
        self.jit_compile = jit_compile
        self.zero_init_last_bn = zero_init_last_bn
        self.include_preprocessing = include_preprocessing
        self.seed = seed
        # Keras Tuner builds the default configuration once at construction,
        # so it must fit the budget; this also rejects impossible budgets.
        self.defaults, _ = self.space.sample_in_budget(np.random.default_rng(0))

    def declare_hyperparameters(self, hp):
        self._values(hp)

    def _values(self, hp):
        """Declares (or reads) the hyperparameters; returns their values."""
        values = {}
        for name in RANGE_PARAMS:
            lo, hi = self.space.ranges[name]
            default = self.defaults[name]
            if lo == hi:
                values[name] = hp.Fixed(name, lo)
            elif name == "w0":
                values[name] = hp.Int(name, lo, hi, step=QUANTUM, default=default)
            elif name == "depth":
                values[name] = hp.Int(name, lo, hi, default=default)
            else:
                values[name] = hp.Float(name, lo, hi, sampling="log", default=default)
        for name in CHOICE_PARAMS:
            choices = list(self.space.ranges[name])
            values[name] = (hp.Fixed(name, choices[0]) if len(choices) == 1 else
                            hp.Choice(name, choices, default=self.defaults[name]))
        for name in ("learning_rate", "weight_decay"):
            lo, hi = getattr(self, name)
            values[name] = (hp.Fixed(name, lo) if lo == hi else
                            hp.Float(name, lo, hi, sampling="log",
                                     default=math.sqrt(lo * hi)))
        return values

    def build(self, hp):
        values = self._values(hp)
        if not self.space.fits(values):
            # Only reachable with an oracle that ignores the budget.
            raise keras_tuner.errors.FailedTrialError(
                f"Configuration {values} is outside the budget "
                f"{self.space.budget} or has more than {self.space.max_stages} "
                "stages for the input size; use the oracles of `tuner.oracle`.")
        if self.mixed_precision:
            keras.mixed_precision.set_global_policy(mixed_precision_policy())
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        model = keras_regnet.RegNet(
            values["depth"], values["w0"], values["wa"], values["wm"],
            values["group_width"], bottleneck_ratio=values["bottleneck_ratio"],
            se_ratio=self.space.se_ratio, stem_type=self.space.stem_type,
            input_shape=self.input_shape, classes=self.classes,
            include_preprocessing=self.include_preprocessing,
            zero_init_last_bn=self.zero_init_last_bn,
            name=f"regnet{self.block.lower()}")
        optimizer = keras.optimizers.SGD(
            learning_rate=values["learning_rate"], momentum=0.9, nesterov=True,
            weight_decay=values["weight_decay"] or None)
        model.compile(optimizer=optimizer,
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=self.jit_compile)
        return model

    def fit(self, hp, model, *args, **kwargs):
        """`model.fit` with the caller's callbacks, a per-epoch cosine learning
        rate schedule over `epochs` (the paper's), and a stop on divergence.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss or the weights
                became NaN or infinite; Keras Tuner records the trial as failed.
        """
        epochs = kwargs.get("epochs", 1)
        # From the hyperparameter, not the optimizer: a Hyperband round that
        # resumes a checkpoint restores the previous round's decayed rate.
        base_lr = float(hp.get("learning_rate"))
        schedule = keras.callbacks.LearningRateScheduler(
            lambda epoch: base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs)))
        divergence = StopOnDivergence()
        callbacks = [schedule, *(kwargs.pop("callbacks", None) or []), divergence]
        history = model.fit(*args, callbacks=callbacks, **kwargs)
        if divergence.reason:
            raise keras_tuner.errors.FailedTrialError(divergence.reason)
        return history


class StopOnDivergence(keras.callbacks.Callback):
    """Stops training once the loss or a weight is NaN or infinite.

    The weights are checked at each epoch's end because the cross-entropy
    of softmax outputs clips probabilities: NaN outputs can give a finite loss.
    """

    def __init__(self):
        super().__init__()
        self.reason = None

    def _stop(self, reason):
        self.reason = reason
        self.model.stop_training = True

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self._stop(f"Loss became {float(loss)} in batch {batch + 1}.")

    def on_epoch_end(self, epoch, logs=None):
        if self.reason is None and not all(
                np.isfinite(keras.ops.convert_to_numpy(w)).all()
                for w in self.model.trainable_weights):
            self._stop(f"Weights became NaN or infinite in epoch {epoch + 1}.")


def mixed_precision_policy():
    """`"mixed_float16"` when a GPU is visible, `"mixed_bfloat16"` otherwise."""
    gpu = any(d.startswith(("gpu", "cuda")) for d in _devices())
    return "mixed_float16" if gpu else "mixed_bfloat16"


def _devices():
    return [str(d).lower() for d in keras.distribution.list_devices()]
