"""Every command the README and docs/ show runs as written, offline.

Every ```python block of README.md and docs/*.md runs in a fresh namespace,
in an empty folder of its own; every ```bash block runs line by line
(`\\` continues a line) in a fresh copy of the repository's files, as a
user's clone, with the network closed. Both get:

- `weights="imagenet"`: the Keras 2 file of each model asked for is a
  tf_keras model of that size with random weights, made on first request
  and served from 127.0.0.1 into an empty Keras cache (Python blocks only:
  the URL base and the SHA-256 registry of `keras_regnet.weights.imagenet`
  are patched in this process), and Keras' ImageNet class names;
- FILES: the checkpoints and images the prose assumes the reader has, made
  in the folder (random weights in their library's layout) when a block
  names them;
- SHORTER: what would take longer than a few minutes runs shorter (a
  Python search 1 trial of 1 epoch; the bash substitutions below, each
  with its reason), the only change to a block's text. `pip install ... &&`
  before a command is left out: the suite runs in the installed package.

A bash command that tests/test_examples.py runs verbatim (its RUNS) is
checked there. A block preceded by `<!-- not run: reason -->` is skipped
with that reason (the test command itself; commands that need the network
or other machines); a failing block fails with its file and line.
"""

import functools
import glob
import http.server
import os
import re
import shutil
import subprocess
import threading
import traceback
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from conftest import PAPER_ZOO, REPO
from keras_regnet import AnyNetSpec
from keras_regnet.design.zoo import MODEL_NAMES
from keras_regnet.weights import imagenet
from keras_regnet.weights.download import sha256_of
from test_examples import RUNS, offline_env

DOCS = [str(Path(REPO, "README.md")),
        *sorted(glob.glob(str(Path(REPO, "docs", "*.md"))))]
FENCES = {"python": re.compile(r"```(?:python|py|python3)\s*$"),
          "bash": re.compile(r"```(?:bash|sh|shell)\s*$")}
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->")
PYTHON_SHORTER = [(r"\bmax_trials=\d+", "max_trials=1"), (r"\bepochs=\d+", "epochs=1")]
INSTALL = re.compile(r"^pip install [^&]*&&\s*")
# (command pattern, substitution, why): applied to bash commands in order.
BASH_SHORTER = [
    (r"^(python examples/design_spaces\.py)$", r"\1 --spaces anynetx_c,regnet "
     "--models 2 --epochs 1 --jobs 1", "its 4 spaces x 24 models take 20-50 minutes"),
    (r"(--max-trials) 12 (--epochs) 2", r"\1 2 \2 1",
     "each search of 12 trials x 2 epochs takes 2-4 minutes"),
    # The benchmarks run once, briefly: that they run is checked, not their figures.
    (r"^(python bench/speed\.py)(?: --quick)?$", r"\1 --quick --runs 1 --min-run 0",
     "the full comparison takes 10 minutes, --quick 1.5"),
    (r"^(python bench/onednn\.py)$", r"\1 --runs 1 --environments default forced",
     "3 runs of 4 environments, Keras' XLA path the slowest"),
    (r"^(python bench/trial_phases\.py)$", r"\1 --trials 1 --epochs 1",
     "6 trials of 3 epochs, twice"),
    (r"^(python bench/trial_phases\.py --memory) 12$", r"\1 2 --epochs 1",
     "12 trials of 3 epochs"),
    (r"^(python bench/grouped_conv\.py)$", r"\1 --quick", "every layer shape, twice"),
    (r"^(python bench/batch_split\.py)$", r"\1 --batches 1 3 --runs 1",
     "5 batch sizes, 7 runs"),
    (r"^(python bench/op_profile\.py)$", r"\1 --steps 1", "3 profiled steps"),
    (r"^(python bench/deploy\.py)$", r"\1 --models RegNetX002 --runs 1 --min-run 0",
     "two models in four formats, 7 runs"),
]

Block = namedtuple("Block", "path line code not_run")


def blocks(text, kind, path="README.md"):
    """The ```kind blocks: file, first code line, code, not-run reason or None."""
    found, code, previous, start, reason = [], None, "", 0, None
    for number, line in enumerate(text.splitlines(), 1):
        if code is not None:
            if line.startswith("```"):
                found.append(Block(path, start, "\n".join(code), reason))
                code, previous = None, line
            else:
                code.append(line)
        elif FENCES[kind].match(line):
            marker = NOT_RUN.fullmatch(previous.strip())
            code, start, reason = [], number + 1, marker and marker.group(1)
        elif line.strip():
            previous = line
    assert code is None, f"{path}:{start - 1}: a ```{kind} block never ends"
    return found


def doc_blocks(kind):
    return [b for path in DOCS
            for b in blocks(Path(path).read_text(encoding="utf-8"), kind,
                            os.path.relpath(path, REPO))]


def commands(code):
    """A bash block's commands: `\\`-continued lines joined, comments and
    blank lines left out."""
    joined = re.sub(r"\s*\\\n\s*", " ", code)
    return [line.strip() for line in joined.splitlines()
            if line.strip() and not line.strip().startswith("#")]


def as_run(command):
    """The command as the suite runs it: without its install step and the
    trailing comment, shortened by BASH_SHORTER."""
    command = INSTALL.sub("", re.sub(r"\s+#.*$", "", command)).strip()
    for pattern, replacement, _ in BASH_SHORTER:
        command = re.sub(pattern, replacement, command)
    return command


PYTHON_BLOCKS = doc_blocks("python")
BASH_BLOCKS = doc_blocks("bash")
EXAMPLE_RUNS = set(RUNS.values())
SUITE = "python -m pytest"  # the README's test command: this run


# What the prose assumes the reader has, by file name: checkpoints with
# random weights in their library's layout, and an image.
def zoo_params(name):
    d, w0, wa, wm, g, se = PAPER_ZOO[name][:6]
    return (d, w0, wa, wm, g), se


def pycls_checkpoint(path, name="RegNetY016"):
    """A pycls model-zoo checkpoint (`.pyth`)."""
    from test_weights_torch import pycls_regnet, torch_and_pycls

    torch = torch_and_pycls()
    params, se = zoo_params(name)
    torch.save({"model_state": pycls_regnet(*params, se=se).state_dict()}, path)


def pycls_converted(path, name="RegNetY016"):
    """A pycls checkpoint converted by `keras_regnet.weights.convert`."""
    from keras_regnet.weights import convert

    source = path.with_suffix(".pyth")
    pycls_checkpoint(source, name)
    convert(str(source), str(path), model=name)


def timm_safetensors(path, name="RegNetX002"):
    """A timm checkpoint (`.safetensors`)."""
    from safetensors.numpy import save_file
    from test_weights_torch import pycls_regnet, pycls_to_timm, rgb_state

    params, se = zoo_params(name)
    save_file(rgb_state(pycls_regnet(*params, se=se), pycls_to_timm), str(path))


def torchvision_checkpoint(path, spec):
    """A torchvision checkpoint (`.pth`) of an AnyNet spec or zoo name."""
    from test_weights_torch import torch_and_pycls, torchvision_entry

    import keras_regnet

    torch = torch_and_pycls()
    model = keras_regnet.AnyNet(keras_regnet.zoo_spec(spec) if isinstance(spec, str)
                                else spec, input_shape=(64, 64, 3))
    state = {}
    for layer in model.layers:
        for v in layer.weights:
            state.update(torchvision_entry(layer.name, v.name, np.asarray(v)))
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)


def photo(path):
    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (300, 400, 3), dtype="uint8")).save(path)


FILES = {
    "RegNetY-1.6GF_dds_8gpu.pyth": pycls_checkpoint,
    "regnety016_pycls.h5": pycls_converted,
    "regnetx_002.safetensors": timm_safetensors,
    "regnety_016.safetensors": functools.partial(timm_safetensors, name="RegNetY016"),
    # torchvision's regnet_x_400mf: the paper's widths but a last stage of 400.
    "regnet_x_400mf.pth": functools.partial(torchvision_checkpoint, spec=AnyNetSpec(
        depths=(1, 2, 7, 12), widths=(32, 64, 160, 400), group_widths=16)),
    "regnet_x_1_6gf.pth": functools.partial(torchvision_checkpoint, spec="RegNetX016"),
    "elephant.jpg": photo,
}


def make_files(folder, text):
    for name, make in FILES.items():
        if name in text:
            make(folder / name)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class _LazyHashes:
    """`imagenet.SHA256[name]`'s (with top, without) pair; indexing it
    writes that Keras 2 file into the served folder and gives its hash."""

    def __init__(self, folder, name):
        self.folder, self.name = folder, name

    def __getitem__(self, index):
        return keras2_file(self.folder, self.name, include_top=index == 0)


@functools.cache
def keras2_file(folder, name, include_top):
    tf_keras = pytest.importorskip(
        "tf_keras", reason="needs tf-keras to make Keras 2 ImageNet files")
    path = folder / f"{name.lower()}{'' if include_top else '_notop'}.h5"
    getattr(tf_keras.applications, name)(
        weights=None, include_top=include_top).save_weights(str(path))
    tf_keras.backend.clear_session()
    return sha256_of(path)


@pytest.fixture(scope="module")
def local_imagenet(tmp_path_factory):
    """Serves the ImageNet weights from 127.0.0.1, into an empty cache, and
    gives Keras ImageNet class names."""
    from keras.src.applications import imagenet_utils

    served = tmp_path_factory.mktemp("served")
    handler = functools.partial(_Quiet, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(imagenet, "BASE_URL",
                   f"http://127.0.0.1:{httpd.server_address[1]}/")
        mp.setattr(imagenet, "SHA256",
                   {name: _LazyHashes(served, name) for name in MODEL_NAMES})
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras_home")))
        mp.setattr(imagenet_utils, "CLASS_INDEX",
                   {str(i): [f"n{i:08d}", f"class_{i}"] for i in range(1000)})
        yield
    httpd.shutdown()
    httpd.server_close()


def test_blocks_are_found_with_their_lines_and_markers():
    text = ("Intro.\n\n<!-- not run: needs a GPU -->\n```python\nx = 1\n```\n"
            "\n```python\nimport math\n\nmath.pi\n```\n```bash\nls \\\n  -l  # all\n"
            "# a comment\n\npip install -e . && python -m tuner search\n```\n")
    assert blocks(text, "python") == [Block("README.md", 5, "x = 1", "needs a GPU"),
                                      Block("README.md", 9, "import math\n\nmath.pi", None)]
    (bash,) = blocks(text, "bash")
    assert bash.line == 14 and bash.not_run is None
    assert commands(bash.code) == ["ls -l  # all", "pip install -e . && python -m tuner search"]
    assert [as_run(c) for c in commands(bash.code)] == ["ls -l", "python -m tuner search"]
    assert as_run("python examples/design_spaces.py  # slow") == (
        "python examples/design_spaces.py --spaces anynetx_c,regnet --models 2 "
        "--epochs 1 --jobs 1")


@pytest.mark.parametrize("kind", ["python", "bash"])
def test_every_fence_is_a_block(kind):
    """No block escapes the parser by a fence spelled differently."""
    found = doc_blocks(kind)
    fences = [line for path in DOCS
              for line in Path(path).read_text(encoding="utf-8").splitlines()
              if re.match(r"\s*```\s*" + kind[:2], line, re.IGNORECASE)]
    assert found and len(fences) == len(found), fences


def test_readme_starts_with_the_two_commands():
    (first, *_) = doc_blocks("bash")
    assert first.path == "README.md" and commands(first.code) == [
        "pip install -e . && python -m tuner search --max-trials 6 --epochs 3 "
        "--out runs/quick", 'pip install -e ".[test]" && python -m pytest']
    ci = Path(REPO, ".ci", "run").read_text(encoding="utf-8")
    assert commands(first.code)[1] in ci


def test_not_run_blocks_say_why():
    skipped = [b for b in [*PYTHON_BLOCKS, *BASH_BLOCKS] if b.not_run]
    for block in skipped:
        assert re.search(r"network|other machines|the suite itself", block.not_run), block


@pytest.mark.parametrize("block", PYTHON_BLOCKS,
                         ids=[f"{b.path}:{b.line}" for b in PYTHON_BLOCKS])
def test_python_block_runs(block, local_imagenet, tmp_path, monkeypatch):
    if block.not_run:
        pytest.skip(f"{block.path}:{block.line} is marked not run: {block.not_run}")
    monkeypatch.chdir(tmp_path)
    make_files(tmp_path, block.code)
    code = block.code
    for pattern, replacement in PYTHON_SHORTER:
        code = re.sub(pattern, replacement, code)
    try:  # padded, so that the file's own line numbers show
        exec(compile("\n" * (block.line - 1) + code, block.path, "exec"),
             {"__name__": "__main__"})
    except Exception as e:
        frames = [f.lineno for f in traceback.extract_tb(e.__traceback__)
                  if f.filename == block.path]
        line = e.lineno if isinstance(e, SyntaxError) else (frames or [block.line])[-1]
        pytest.fail(f"{block.path}:{line} (the block from line {block.line}) "
                    f"raised {type(e).__name__}: {e}", pytrace=False)


def clone_like(folder):
    """The repository's files as a fresh clone has them, in `folder`."""
    files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        if os.path.isfile(os.path.join(REPO, name)):
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(os.path.join(REPO, name), folder / name)
    return folder


def main_job(folder, output):
    """The README's first command: 6 trials that learn the digits, each line
    with the time left, the plots named last, the best model's weights
    stored three times and nothing else big."""
    from tuner.trials import read_trials_csv

    out = folder / "runs" / "quick"
    rows = read_trials_csv(out / "trials.csv")
    assert [r["status"] for r in rows] == ["COMPLETED"] * 6, output
    assert max(r["val_accuracy"] for r in rows) >= 0.95, output
    lines = re.findall(r"^trial (\d)/6 \|.*\| (\d+:\d\d) elapsed(, ~\d+:\d\d left|, done)$",
                       output, re.M)
    assert [int(n) for n, *_ in lines] == list(range(1, 7)), output
    assert lines[-1][2] == ", done" and all(left for *_, left in lines)
    plots = output.strip().splitlines()[-1]
    assert plots.startswith("Plots: ") and sorted(plots[7:].split(", ")) == sorted(
        f"runs/quick/{name}" for name in os.listdir(out) if name.endswith(".png")), plots
    checkpoints = list((out / "kt_project").rglob("checkpoint.weights.h5"))
    assert len(checkpoints) == 1, checkpoints  # --keep-checkpoints 1
    def size_of(path):
        return sum(f.stat().st_size for f in [path, *path.rglob("*")] if f.is_file())

    # The best model's weights are stored three times (the Keras file, the
    # SavedModel and the one checkpoint) and nothing else is big.
    size, best_size = size_of(out), size_of(out / "best_model.keras")
    copies = [size_of(out / "best_savedmodel"), size_of(checkpoints[0])]
    assert all(c < 1.2 * best_size for c in copies), (best_size, copies)
    assert size - best_size - sum(copies) < 2e6, f"{out} holds {size / 1e6:.1f} MB"
    # The best model, as a Keras file and a SavedModel, gives the best trial's
    # validation accuracy.
    import tensorflow as tf

    import keras_regnet
    from conftest import dataset_arrays
    from tuner.data import describe_dataset, load_dataset

    x, y = dataset_arrays(load_dataset(describe_dataset("digits"), batch_size=64).val)
    model = keras_regnet.load_model(str(out / "best_model.keras"))
    probs = model.predict(x, verbose=0)
    best = max(r["val_accuracy"] for r in rows)
    assert np.mean(probs.argmax(-1) == y) == pytest.approx(best, abs=1e-6)
    saved = tf.saved_model.load(str(out / "best_savedmodel"))
    np.testing.assert_allclose(saved.serve(x).numpy(), probs, atol=1e-5)
    print(f"main job: best val_accuracy {max(r['val_accuracy'] for r in rows):.4f}, "
          f"{size / 1e6:.1f} MB")


# Checks of a command's results beyond its exit code, by the command as run.
CHECKS = {"python -m tuner search --max-trials 6 --epochs 3 --out runs/quick": main_job}


@pytest.mark.parametrize("block", BASH_BLOCKS, ids=[f"{b.path}:{b.line}" for b in BASH_BLOCKS])
def test_bash_block_runs(block, tmp_path):
    if block.not_run:
        pytest.skip(f"{block.path}:{block.line} is marked not run: {block.not_run}")
    runs = [as_run(c) for c in commands(block.code)]
    # The others: tests/test_examples.py runs them, and the suite is this run.
    mine = [c for c in runs if c not in EXAMPLE_RUNS and c != SUITE]
    if not mine:
        pytest.skip(f"{block.path}:{block.line}: tests/test_examples.py runs its commands")
    folder = clone_like(tmp_path / "clone")
    make_files(folder, block.code)
    env = offline_env(tmp_path)
    for command in dict.fromkeys(mine):  # once each, as shortened
        proc = subprocess.run(["bash", "-c", command], cwd=folder, env=env,
                              capture_output=True, text=True, timeout=600)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"{block.path}:{block.line}: `{command}` " \
                                     f"exited {proc.returncode}:\n{output[-3000:]}"
        if command in CHECKS:
            CHECKS[command](folder, proc.stdout)
