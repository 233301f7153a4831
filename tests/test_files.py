"""`atomic_path`: whole files and folders replaced, nothing partial left."""

import json
import os

import pytest

from keras_regnet.files import atomic_path, write_json


def _write(folder, text):
    os.makedirs(folder)
    with open(os.path.join(folder, "a.txt"), "w") as f:
        f.write(text)


def test_file_and_folder_are_replaced_whole(tmp_path):
    path = tmp_path / "out.json"
    path.write_text("old")
    with atomic_path(path) as tmp:
        assert os.path.dirname(os.path.dirname(tmp)) == str(tmp_path)
        assert os.path.basename(tmp) == "out.json"  # writers that go by the extension
        with open(tmp, "w") as f:
            f.write("new")
        assert path.read_text() == "old"  # readers see the old file until the end
    assert path.read_text() == "new"

    folder = tmp_path / "model"
    _write(folder, "old")
    (folder / "stale.txt").write_text("x")
    with atomic_path(folder) as tmp:
        _write(tmp, "new")
    assert sorted(os.listdir(folder)) == ["a.txt"]
    assert (folder / "a.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model", "out.json"]  # no temporaries


def test_a_failed_write_keeps_the_old_content(tmp_path):
    path = tmp_path / "out.csv"
    path.write_text("old")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("partial")
            raise RuntimeError("disk full")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_write_json_replaces_the_file(tmp_path):
    path = tmp_path / "state.json"
    path.write_text("old")
    os.link(path, tmp_path / "before")  # keeps the old inode's content
    write_json(path, {"b": [1, 2], "a": None})
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2]}
    assert (tmp_path / "before").read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["before", "state.json"]
