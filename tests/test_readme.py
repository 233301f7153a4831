"""Every ```python block of README.md runs as written, offline.

Each block runs in a fresh namespace, in an empty folder of its own, with:

- `weights="imagenet"`: the Keras 2 file of each model asked for is a
  tf_keras model of that size with random weights, made on first request
  and served from 127.0.0.1 into an empty Keras cache (the URL base and the
  SHA-256 registry of `keras_regnet.weights.imagenet` are patched in this
  process only);
- FILES: the checkpoints the prose assumes the reader has, made in the
  folder (random weights in their library's layout) when a block names them;
- SPEED: a search runs 1 trial of 1 epoch (`max_trials=1`, `epochs=1`),
  the only change to a block's text.

A block preceded by `<!-- not run: reason -->` is skipped with that reason;
a failing block fails with its line in README.md.
"""

import functools
import http.server
import re
import threading
import traceback
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from keras_regnet.design.zoo import MODEL_NAMES
from keras_regnet.weights import imagenet
from keras_regnet.weights.download import sha256_of

README = str(Path(REPO, "README.md"))
FENCE = re.compile(r"```(?:python|py|python3)\s*$")
NOT_RUN = re.compile(r"<!--\s*not run:\s*(.*?)\s*-->")
SPEED = [(r"\bmax_trials=\d+", "max_trials=1"), (r"\bepochs=\d+", "epochs=1")]

Block = namedtuple("Block", "line code not_run")


def python_blocks(text):
    """The ```python blocks: first code line, code, not-run reason or None."""
    blocks, code, previous, start, reason = [], None, "", 0, None
    for number, line in enumerate(text.splitlines(), 1):
        if code is not None:
            if line.startswith("```"):
                blocks.append(Block(start, "\n".join(code), reason))
                code, previous = None, line
            else:
                code.append(line)
        elif FENCE.match(line):
            marker = NOT_RUN.fullmatch(previous.strip())
            code, start, reason = [], number + 1, marker and marker.group(1)
        elif line.strip():
            previous = line
    assert code is None, f"README.md:{start - 1}: a ```python block never ends"
    return blocks


BLOCKS = python_blocks(Path(README).read_text(encoding="utf-8"))


# The reader's own checkpoints (Pretrained weights section), by file name.
def pycls_converted(path, name="RegNetY016", params=(27, 48, 20.71, 2.65, 24)):
    """A pycls checkpoint converted by `keras_regnet.weights.convert`."""
    from test_weights_torch import pycls_regnet, torch_and_pycls

    from keras_regnet.weights import convert

    torch = torch_and_pycls()
    source = path.with_suffix(".pyth")
    ref = pycls_regnet(*params, se=name.startswith("RegNetY"))
    torch.save({"model_state": ref.state_dict()}, source)
    convert(str(source), str(path), model=name)


def timm_safetensors(path, params=(13, 24, 36.44, 2.49, 8)):
    """A timm RegNetX002 checkpoint."""
    from safetensors.numpy import save_file
    from test_weights_torch import pycls_regnet, pycls_to_timm, rgb_state

    save_file(rgb_state(pycls_regnet(*params, se=False), pycls_to_timm), str(path))


def torchvision_x400mf(path):
    """torchvision's regnet_x_400mf: the paper's widths but a last stage of 400."""
    from test_weights_torch import torch_and_pycls, torchvision_entry

    import keras_regnet

    torch = torch_and_pycls()
    model = keras_regnet.AnyNet(depths=(1, 2, 7, 12), widths=(32, 64, 160, 400),
                                group_widths=16, input_shape=(64, 64, 3))
    state = {}
    for layer in model.layers:
        for v in layer.weights:
            state.update(torchvision_entry(layer.name, v.name, np.asarray(v)))
    torch.save({k: torch.from_numpy(v) for k, v in state.items()}, path)


FILES = {
    "regnety016_pycls.h5": pycls_converted,
    "regnetx_002.safetensors": timm_safetensors,
    "regnet_x_400mf.pth": torchvision_x400mf,
}


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
    """Serves the ImageNet weights from 127.0.0.1, into an empty cache."""
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
        yield
    httpd.shutdown()
    httpd.server_close()


def test_blocks_are_found_with_their_lines_and_markers():
    text = ("Intro.\n\n<!-- not run: needs a GPU -->\n```python\nx = 1\n```\n"
            "\n```python\nimport math\n\nmath.pi\n```\n```bash\nls\n```\n")
    assert python_blocks(text) == [Block(5, "x = 1", "needs a GPU"),
                                   Block(9, "import math\n\nmath.pi", None)]


def test_every_python_fence_is_a_block():
    fences = [line for line in Path(README).read_text(encoding="utf-8").splitlines()
              if re.match(r"\s*```\s*py", line, re.IGNORECASE)]
    assert BLOCKS and len(fences) == len(BLOCKS), fences


@pytest.mark.parametrize("block", BLOCKS, ids=[f"README.md:{b.line}" for b in BLOCKS])
def test_readme_block_runs(block, local_imagenet, tmp_path, monkeypatch):
    if block.not_run:
        pytest.skip(f"README.md:{block.line} is marked not run: {block.not_run}")
    monkeypatch.chdir(tmp_path)
    for name, make in FILES.items():
        if name in block.code:
            make(tmp_path / name)
    code = block.code
    for pattern, replacement in SPEED:
        code = re.sub(pattern, replacement, code)
    try:  # padded, so that README.md's own line numbers show
        exec(compile("\n" * (block.line - 1) + code, README, "exec"),
             {"__name__": "__main__"})
    except Exception as e:
        frames = [f.lineno for f in traceback.extract_tb(e.__traceback__)
                  if f.filename == README]
        line = e.lineno if isinstance(e, SyntaxError) else (frames or [block.line])[-1]
        pytest.fail(f"README.md:{line} (the block from line {block.line}) "
                    f"raised {type(e).__name__}: {e}", pytrace=False)
