"""Hypermodels of the design spaces: RegNet (six parameters) and AnyNetX A-E."""

import math
import time
import zlib

import keras
import keras_tuner
import numpy as np

import keras_regnet
from keras_regnet.design.checks import invalid
from keras_regnet.design.sampling import PAPER_RANGES, SEARCH_BLOCKS, RegNetDesignSpace
from keras_regnet.design.spaces import SPACE_NAMES, design_space
from keras_regnet.design.spec import (MAX_CLASSES, MAX_INPUT_SIZE, MIN_INPUT_SIZES,
                                      STEM_TYPES)
from keras_regnet.training import SGD
from tuner import kt_adapter as kt
from tuner.config import optimizer_range

# Inputs smaller than this get the CIFAR-style stem (3x3 conv, stride 1).
CIFAR_STEM_BELOW = 64
LR_SCHEDULES = ("cosine", None)
ANYNET_SPACES = tuple(n for n in SPACE_NAMES if n != "regnet")
# A caller's callback of these kinds replaces the hypermodel's schedule.
_SETS_LEARNING_RATE = (keras.callbacks.LearningRateScheduler,
                       keras.callbacks.ReduceLROnPlateau)


_COMMON_ARGS = """
        flops: `None` or `(lo, hi)` multiply-adds at `input_shape` (either
            end may be `None`).
        params: `None` or `(lo, hi)` trainable parameters.
        learning_rate: fixed value or `(lo, hi)` log-scaled hyperparameter
            of SGD (momentum 0.9, Nesterov), as in the paper.
        weight_decay: fixed value (0 for none) or `(lo, hi)` log-scaled
            (decoupled, as `keras.optimizers.SGD` applies it).
        lr_schedule: `"cosine"` (the paper's cosine decay over the epochs,
            unless the `search` callbacks set the learning rate themselves)
            or `None` (the learning rate stays, or your callbacks set it).
        stem_type: `None` (CIFAR-style stem below 64x64 inputs, ImageNet
            stem otherwise), `"cifar"` or `"imagenet"`.
        mixed_precision: train in `mixed_float16` on a GPU, `mixed_bfloat16`
            otherwise.
        jit_compile: passed to `Model.compile`.
        zero_init_last_bn: zero-initialise the last BN of each residual
            branch (deep models then train stably from the first epoch).
        include_preprocessing: models take `[0, 255]` pixels.
        seed: if set, every trial starts from the same initial random state.
        name, tunable: as for `keras_tuner.HyperModel`."""


class DesignSpaceHyperModel(keras_tuner.HyperModel):
    """Trains the models of a `keras_regnet.design` design space.

    The hyperparameters are the space's (`space.hyperparameters()`) plus the
    learning rate and weight decay. The oracles of `tuner.oracle` (and
    `tuner.build_tuner`) draw configurations with the space's own sampler,
    inside its compute budget. A stock Keras Tuner oracle draws each
    hyperparameter on its own and ignores the budget: a configuration it
    proposes outside the space is replaced by one the space's sampler draws
    (seeded by the proposal) and recorded as the trial's values, so that no
    trial is spent or failed outside the budget.

    Use `RegNetHyperModel` or `AnyNetHyperModel`; this base takes a built
    `DesignSpace`.

    Args:
        space: a `keras_regnet.design.DesignSpace` whose `input_size`,
            `channels` and `classes` match `input_shape` and `classes`.
        input_shape: `(height, width, channels)` with height == width.
        classes: number of classes.{common}
    """

    def __init__(self, space, input_shape, classes, *, learning_rate=0.1,
                 weight_decay=5e-5, lr_schedule="cosine",
                 mixed_precision=False, jit_compile="auto",
                 zero_init_last_bn=True, include_preprocessing=True,
                 seed=None, name=None, tunable=True):
        super().__init__(name=name or space.name, tunable=tunable)
        self.space = space
        self.input_shape = tuple(input_shape)
        self.classes = classes
        self.learning_rate = optimizer_range("learning_rate", learning_rate, False)
        self.weight_decay = optimizer_range("weight_decay", weight_decay, True)
        if lr_schedule not in LR_SCHEDULES:
            raise invalid("lr_schedule", lr_schedule, f"one of {LR_SCHEDULES}")
        self.lr_schedule = lr_schedule
        for arg, value in (("mixed_precision", mixed_precision),
                           ("zero_init_last_bn", zero_init_last_bn),
                           ("include_preprocessing", include_preprocessing)):
            if not isinstance(value, bool):
                raise invalid(arg, value, "True or False")
        if jit_compile not in ("auto", True, False):
            raise invalid("jit_compile", jit_compile, "'auto', True or False")
        if seed is not None and not (isinstance(seed, int) and not isinstance(seed, bool)
                                     and 0 <= seed < 2**32):
            raise invalid("seed", seed, "None or an integer in [0, 2**32)")
        self.mixed_precision = mixed_precision
        self.jit_compile = jit_compile
        self.zero_init_last_bn = zero_init_last_bn
        self.include_preprocessing = include_preprocessing
        self.seed = seed
        # Keras Tuner builds the default configuration once at construction,
        # so it must fit the budget; this also rejects impossible budgets.
        self.defaults, _ = space.sample_in_budget(np.random.default_rng(0))

    def declare_hyperparameters(self, hp):
        self._values(hp)

    def _values(self, hp):
        """Declares (or reads) the hyperparameters; returns their values."""
        values = {}
        for p in self.space.hyperparameters():
            default = self.defaults[p.name]
            if p.kind == "fixed":
                values[p.name] = hp.Fixed(p.name, p.values[0])
            elif p.kind == "choice":
                values[p.name] = hp.Choice(p.name, list(p.values), default=default)
            elif p.kind == "int":
                values[p.name] = hp.Int(p.name, *p.values, step=p.step, default=default)
            else:
                values[p.name] = hp.Float(p.name, *p.values, default=default,
                                          sampling="log" if p.log else "linear")
        for name in ("learning_rate", "weight_decay"):
            lo, hi = getattr(self, name)
            values[name] = (hp.Fixed(name, lo) if lo == hi else
                            hp.Float(name, lo, hi, sampling="log",
                                     default=math.sqrt(lo * hi)))
        return values

    def _in_space(self, hp, values):
        """`values`, or an in-budget replacement written into `hp` (see the
        class docstring)."""
        if self.space.fits(values):
            return values
        seed = zlib.crc32(repr(sorted(values.items())).encode())
        replacement, _ = self.space.sample_in_budget(np.random.default_rng(seed))
        hp.values.update(replacement)
        return {**values, **replacement}

    def build(self, hp):
        start = time.perf_counter()
        values = self._in_space(hp, self._values(hp))
        if self.mixed_precision:
            keras.mixed_precision.set_global_policy(mixed_precision_policy())
        if self.seed is not None:
            keras.utils.set_random_seed(self.seed)
        model = keras_regnet.AnyNet(
            self.space.spec(values), input_shape=self.input_shape,
            classes=self.classes, include_preprocessing=self.include_preprocessing,
            zero_init_last_bn=self.zero_init_last_bn, name=self.name)
        optimizer = SGD(
            learning_rate=values["learning_rate"], momentum=0.9, nesterov=True,
            weight_decay=values["weight_decay"] or None)
        model.compile(optimizer=optimizer,
                      loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=self.jit_compile)
        _build_training_state(model)
        self._build_seconds = time.perf_counter() - start
        return model

    def fit(self, hp, model, *args, **kwargs):
        """`model.fit` with the caller's callbacks, the learning-rate schedule
        and a stop on divergence.

        The schedule (`lr_schedule="cosine"`: the paper's cosine decay over
        `epochs`, per epoch) is left out when `lr_schedule=None` or when the
        caller's callbacks set the learning rate themselves
        (`keras.callbacks.LearningRateScheduler`, `ReduceLROnPlateau`): the
        user's schedule wins.

        Raises:
            keras_tuner.errors.FailedTrialError: the loss or the weights
                became NaN or infinite; Keras Tuner records the trial as failed.
        """
        epochs = kwargs.get("epochs", 1)
        callbacks = list(kwargs.pop("callbacks", None) or [])
        if self.lr_schedule and not any(
                isinstance(c, _SETS_LEARNING_RATE) for c in callbacks):
            # From the hyperparameter, not the optimizer: a Hyperband round
            # that resumes a checkpoint restores the previous round's rate.
            base_lr = float(hp.get("learning_rate"))
            callbacks.insert(0, keras.callbacks.LearningRateScheduler(
                lambda epoch: base_lr * 0.5 * (1 + math.cos(math.pi * epoch / epochs))))
        if _is_dataset(args[0] if args else kwargs.get("x")):
            # A dataset shuffles itself; Keras warns on every fit otherwise.
            kwargs.setdefault("shuffle", False)
        divergence, timer = StopOnDivergence(), TrialTimer()
        history = model.fit(*args, callbacks=[*callbacks, divergence, timer], **kwargs)
        if divergence.reason:
            raise keras_tuner.errors.FailedTrialError(divergence.reason)
        timer.seconds["build_s"] = getattr(self, "_build_seconds", 0.0)
        for name, seconds in timer.seconds.items():
            history.history[name] = [round(seconds, 2)] * len(history.epoch)
        return history


def _check_input(input_shape, classes, block, stem_type, blocks):
    """Validates the arguments every hypermodel takes; returns the stem."""
    if not (isinstance(input_shape, (tuple, list)) and len(input_shape) == 3
            and all(isinstance(v, int) and not isinstance(v, bool)
                    and 1 <= v <= MAX_INPUT_SIZE for v in input_shape)
            and input_shape[0] == input_shape[1]):
        raise invalid("input_shape", input_shape, f"(size, size, channels) with "
                                                  f"integers in [1, {MAX_INPUT_SIZE}]")
    if not (isinstance(classes, int) and not isinstance(classes, bool)
            and 2 <= classes <= MAX_CLASSES):
        raise invalid("classes", classes, f"an integer in [2, {MAX_CLASSES}]")
    if str(block).lower() not in blocks:
        raise invalid("block", block, f"one of {tuple(b.upper() for b in blocks)}")
    if stem_type is None:
        stem_type = "cifar" if input_shape[0] < CIFAR_STEM_BELOW else "imagenet"
    if stem_type not in STEM_TYPES:
        raise invalid("stem_type", stem_type, f"None or one of {STEM_TYPES}")
    smallest = MIN_INPUT_SIZES[stem_type]
    if input_shape[0] < smallest:
        raise invalid("input_shape", input_shape,
                     f"height and width >= {smallest} with the {stem_type} stem")
    return stem_type


class RegNetHyperModel(DesignSpaceHyperModel):
    """Searches the RegNet design space (Radosavovic et al., 2020) with Keras Tuner.

    The hyperparameters are the six RegNet parameters: depth `d`, initial
    width `w0`, slope `wa`, width multiplier `wm`, bottleneck ratio `b` and
    group width `g`, with the paper's ranges as defaults. Pass a number to
    fix one, a `(lo, hi)` pair (or, for `b` and `g`, a list of values) to
    narrow it. With a compute budget, use `tuner.build_tuner` (or the
    oracles of `tuner.oracle`), which only propose configurations inside it.

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
        block: `"X"` (RegNetX), `"Y"` (RegNetY, squeeze-and-excitation
            with ratio 0.25) or `"Z"` (RegNetZ: inverted bottleneck, SE and
            SiLU).
        depth: fixed value or `(lo, hi)`; default `(12, 28)`.
        w0: fixed value or `(lo, hi)`, multiples of 8; default `(8, 256)`.
        wa: fixed value or `(lo, hi)`, log-scaled; default `(8, 256)`.
        wm: fixed value or `(lo, hi)`, log-scaled; default `(1.5, 3)`.
        bottleneck_ratio: fixed value or list from `(1, 2, 4)`; for Z
            blocks, from `(0.25, 0.5, 1)` (expansion 4, 2, 1).
        group_width: fixed value or list from `(1, 2, 4, 8, 16, 32)`.{common}
    """

    def __init__(self, input_shape=(224, 224, 3), classes=1000, block="X", *,
                 depth=PAPER_RANGES["depth"], w0=PAPER_RANGES["w0"],
                 wa=PAPER_RANGES["wa"], wm=PAPER_RANGES["wm"],
                 bottleneck_ratio=None, group_width=PAPER_RANGES["group_width"],
                 flops=None, params=None, stem_type=None, name=None, **kwargs):
        stem_type = _check_input(input_shape, classes, block, stem_type,
                                 RegNetDesignSpace.block_types)
        self.block = str(block).upper()
        space = RegNetDesignSpace(
            depth, w0, wa, wm, bottleneck_ratio, group_width,
            block_type=self.block.lower(), stem_type=stem_type,
            input_size=input_shape[0], channels=input_shape[2],
            classes=classes, flops=flops, params=params)
        super().__init__(space, input_shape, classes,
                         name=name or f"regnet{self.block.lower()}", **kwargs)


class AnyNetHyperModel(DesignSpaceHyperModel):
    """Searches one of the AnyNetX design spaces (paper, sec. 3) with Keras Tuner.

    Four stride-2 stages of X blocks (Y blocks with `block="Y"`); per stage
    depth 1-16, width 8-1024 (multiples of 8), bottleneck ratio b and group
    width g. `"anynetx_a"` leaves all 16 free; `"anynetx_b"` shares b,
    `"anynetx_c"` also g, `"anynetx_d"` adds non-decreasing widths and
    `"anynetx_e"` non-decreasing depths (`keras_regnet.design.spaces`).

    Args:
        input_shape: `(height, width, channels)` with height == width.
        classes: number of classes.
        space: `"anynetx_a"` ... `"anynetx_e"`.
        block: `"X"` or `"Y"`.
        depth, width, bottleneck_ratio, group_width: narrow the per-stage
            ranges, as for `keras_regnet.design.AnyNetXADesignSpace`.{common}
    """

    def __init__(self, input_shape=(224, 224, 3), classes=1000,
                 space="anynetx_a", block="X", *, flops=None, params=None,
                 stem_type=None, name=None, **kwargs):
        stem_type = _check_input(input_shape, classes, block, stem_type, SEARCH_BLOCKS)
        if space not in ANYNET_SPACES:
            raise invalid("space", space, f"one of {ANYNET_SPACES}")
        ranges = {k: kwargs.pop(k) for k in ("depth", "width", "bottleneck_ratio",
                                             "group_width") if k in kwargs}
        self.block = str(block).upper()
        built = design_space(
            space, **ranges, block_type=self.block.lower(), stem_type=stem_type,
            input_size=input_shape[0], channels=input_shape[2],
            classes=classes, flops=flops, params=params)
        super().__init__(built, input_shape, classes, name=name or space, **kwargs)


def hypermodel_class(space):
    """The hypermodel class that searches the design space named `space`."""
    return RegNetHyperModel if space == "regnet" else AnyNetHyperModel


for _cls in (DesignSpaceHyperModel, RegNetHyperModel, AnyNetHyperModel):
    _cls.__doc__ = _cls.__doc__.format(common=_COMMON_ARGS)


def _build_training_state(model):
    """Creates the optimizer, loss and metric variables of a compiled model now.

    Without a `tf.distribute` strategy Keras creates them while tracing the
    first training step, and TensorFlow then traces the step a second time
    (a function that created variables is traced again without them): the
    slowest part of starting to train a new RegNet, done twice.
    """
    if model.optimizer is not None:
        model.optimizer.build(model.trainable_variables)
    y_pred = model.outputs[0]
    y_true = keras.KerasTensor(y_pred.shape[:-1], "int32")  # sparse labels
    kt.build_compiled_metrics(model, y_true, y_pred)


class TrialTimer(keras.callbacks.Callback):
    """Where a trial's time goes: `seconds` holds `first_step_s` (tracing,
    graph optimisation and the first training step), `train_s` (the other
    training steps), `first_eval_s` (the first validation, with its
    tracing) and `eval_s` (the other validations)."""

    def __init__(self):
        super().__init__()
        self.seconds = dict.fromkeys(
            ("first_step_s", "train_s", "first_eval_s", "eval_s"), 0.0)
        self._evals = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        key = "train_s" if self.seconds["first_step_s"] else "first_step_s"
        self.seconds[key] += time.perf_counter() - self._start

    def on_test_begin(self, logs=None):
        self._start = time.perf_counter()

    def on_test_end(self, logs=None):
        self.seconds["eval_s" if self._evals else "first_eval_s"] += (
            time.perf_counter() - self._start)
        self._evals += 1


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


def _is_dataset(x):
    """Whether `x` is a `tf.data.Dataset` (without importing TensorFlow)."""
    return any(c.__module__.startswith("tensorflow") and c.__name__ in
               ("DatasetV2", "DatasetV1") for c in type(x).__mro__)
