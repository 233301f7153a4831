"""Where a search trial's time goes, before and after the trial-overhead work.

    python bench/trial_phases.py             # 6 trials x 3 epochs of the README's main job, both setups
    python bench/trial_phases.py --trials 2 --epochs 1
    python bench/trial_phases.py --memory 12 # RSS after each of 12 in-process trials

Trains the configurations the README's main job draws (the RegNet space,
digits at 32x32, the default budget) with two setups, alternating in one
process:

- "keras": `keras.optimizers.SGD`, the optimizer and metric variables
  created while the first step is traced (so TensorFlow traces it twice),
  and the weights written at every epoch that improves (Keras Tuner's
  checkpoint), as keras_regnet 0.1 trained trials;
- "ours": what `tuner.RegNetHyperModel` does now: `keras_regnet.training.SGD`
  (one fused update per variable), that state built before the first step,
  and the best epoch written once.

For each it reports build, first step (tracing, graph optimisation and the
step), the other training steps, the validations and the checkpoints, in
seconds summed over the trials, and the speed-up of each phase.
"""

import argparse
import gc
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras_regnet  # noqa: E402,F401 - before TensorFlow: oneDNN on

PHASES = ("build_s", "first_step_s", "train_s", "first_eval_s", "eval_s", "checkpoint_s")


def configurations(n, seed=0):
    import numpy as np

    from tuner.hypermodel import RegNetHyperModel

    hypermodel = RegNetHyperModel((32, 32, 1), 10, flops=(None, 20e6),
                                  params=(None, 5e6))
    rng = np.random.default_rng(seed)
    return hypermodel, [hypermodel.space.sample_in_budget(rng)[0] for _ in range(n)]


def run_trial(hypermodel, values, data, epochs, setup, directory):
    import keras
    import keras_tuner

    from keras_regnet.training import SGD
    from tuner import hypermodel as hm

    hp = keras_tuner.HyperParameters()
    hypermodel.declare_hyperparameters(hp)
    hp.values.update(values)
    keras.backend.clear_session()
    gc.collect()
    if setup == "keras":  # as keras_regnet 0.1 built and trained trials
        start = time.perf_counter()
        optimizer_class, build_state = hm.SGD, hm._build_training_state
        hm.SGD, hm._build_training_state = keras.optimizers.SGD, lambda model: None
        try:
            model = hypermodel.build(hp)
        finally:
            hm.SGD, hm._build_training_state = optimizer_class, build_state
        build = time.perf_counter() - start
    else:
        start = time.perf_counter()
        model = hypermodel.build(hp)
        build = time.perf_counter() - start
        assert isinstance(model.optimizer, SGD)
    checkpoint = Checkpoint(os.path.join(directory, "checkpoint.weights.h5"),
                            every_improvement=setup == "keras")
    history = hypermodel.fit(hp, model, data.train, validation_data=data.val,
                             epochs=epochs, verbose=0, shuffle=False,
                             callbacks=[checkpoint])
    checkpoint.write_best()
    seconds = {k: history.history[k][0] for k in PHASES[1:-1]}
    return {"build_s": build, **seconds, "checkpoint_s": checkpoint.seconds,
            "val_accuracy": max(history.history["val_accuracy"])}


class Checkpoint:
    """Keras Tuner's checkpoint of the best epoch: written at every
    improvement, or kept in memory and written once."""

    def __new__(cls, path, every_improvement):
        import keras

        class _Checkpoint(keras.callbacks.Callback):
            def __init__(self):
                super().__init__()
                self.best, self.weights, self.seconds = -1.0, None, 0.0

            def on_epoch_end(self, epoch, logs=None):
                if logs["val_accuracy"] > self.best:
                    self.best = logs["val_accuracy"]
                    if every_improvement:
                        self._write()
                    else:
                        self.weights = self.model.get_weights()

            def write_best(self):
                if self.weights is not None:
                    self.model.set_weights(self.weights)
                    self._write()

            def _write(self):
                start = time.perf_counter()
                self.model.save_weights(path)
                self.seconds += time.perf_counter() - start

        return _Checkpoint()


def phases(args):
    from tuner.data import describe_dataset, load_dataset

    data = load_dataset(describe_dataset("digits"), batch_size=32, seed=0)
    hypermodel, configs = configurations(args.trials)
    totals = {setup: dict.fromkeys(PHASES, 0.0) for setup in ("keras", "ours")}
    with tempfile.TemporaryDirectory() as directory:
        for i, values in enumerate(configs, 1):
            for setup in (("keras", "ours") if i % 2 else ("ours", "keras")):
                result = run_trial(hypermodel, values, data, args.epochs, setup,
                                   directory)
                for k in PHASES:
                    totals[setup][k] += result[k]
                print(f"trial {i} {setup:5s}: " + ", ".join(
                    f"{k[:-2]} {result[k]:.1f}" for k in PHASES)
                    + f"; val_accuracy {result['val_accuracy']:.3f}", flush=True)
    print(f"\n{args.trials} trials x {args.epochs} epochs, seconds summed:\n")
    print("| phase | keras 0.1 setup | ours | speed-up |\n|---|---:|---:|---:|")
    for k in (*PHASES, "total"):
        a = sum(totals["keras"].values()) if k == "total" else totals["keras"][k]
        b = sum(totals["ours"].values()) if k == "total" else totals["ours"][k]
        ratio = f"{a / b:.2f}x" if b else "-"
        print(f"| {k.removesuffix('_s').replace('_', ' ')} | {a:.1f} | {b:.1f} | {ratio} |")


def memory(args):
    import keras
    import psutil

    import tuner
    from tuner.data import describe_dataset, load_dataset

    data = load_dataset(describe_dataset("digits"), batch_size=32, seed=0)
    hypermodel = tuner.RegNetHyperModel((32, 32, 1), 10, flops=(None, 20e6),
                                        params=(None, 5e6))
    process = psutil.Process()
    rss = []

    class Measure(keras.callbacks.Callback):
        def on_train_end(self, logs=None):
            gc.collect()
            rss.append(process.memory_info().rss / 2**20)
            print(f"trial {len(rss)}: RSS {rss[-1]:.0f} MB", flush=True)

    with tempfile.TemporaryDirectory() as directory:
        search = tuner.build_tuner(hypermodel, "random", max_trials=args.memory,
                                   seed=0, directory=directory, project_name="p")
        search.search(data.train, validation_data=data.val, epochs=args.epochs,
                      verbose=0, shuffle=False, callbacks=[Measure()])
    growth = (rss[-1] - rss[0]) / max(len(rss) - 1, 1)
    print(f"\nRSS {rss[0]:.0f} MB after the first trial, {rss[-1]:.0f} MB after "
          f"trial {len(rss)}: {growth:+.1f} MB per trial")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--memory", type=int, default=0, metavar="N",
                        help="instead: RSS over N in-process search trials")
    args = parser.parse_args(argv)
    from keras_regnet import runtime

    print(runtime.describe(), flush=True)
    memory(args) if args.memory else phases(args)


if __name__ == "__main__":
    main()
