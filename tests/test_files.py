"""`atomic_path`: whole files and folders, replacing only what we wrote,
and no temporaries left behind by killed writers."""

import json
import os
import signal
import socket
import struct
import subprocess
import sys
import textwrap
import zipfile
import zlib

import h5py
import pytest

from keras_regnet.files import (MARKER_FILE, atomic_path, check_target, is_dead_temp,
                                write_json)

HOST = socket.gethostname()


def _write(folder, text):
    os.makedirs(folder)
    with open(os.path.join(folder, "a.txt"), "w") as f:
        f.write(text)


def _png(path):
    """A 1x1 grey PNG, as any image library writes it."""
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n"
                + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 0, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(b"\0\x80")) + chunk(b"IEND", b""))


def _zip(path):
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", "{}")


def _h5(path, **attrs):
    with h5py.File(path, "w") as f:
        f.attrs.update(attrs)
        f["x"] = [1.0]


def _snapshot(root):
    """Every file under `root` with its content, to show nothing changed."""
    found = {}
    for folder, _, files in os.walk(root):
        for name in files:
            path = os.path.join(folder, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, root)] = f.read()
    return found


def test_file_and_folder_are_replaced_whole(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("name,old\n")
    with atomic_path(path) as tmp:
        assert os.path.dirname(os.path.dirname(tmp)) == str(tmp_path)
        assert os.path.basename(tmp) == "out.txt"  # writers that go by the extension
        with open(tmp, "w") as f:
            f.write("name,new\n")
        assert path.read_text() == "name,old\n"  # readers see the old file until the end
    assert path.read_text() == "name,new\n"

    folder = tmp_path / "model"
    with atomic_path(folder) as tmp:
        _write(tmp, "old")
        (tmp_path / "stale.txt").write_text("x")
    assert sorted(os.listdir(folder)) == [MARKER_FILE, "a.txt"]
    with atomic_path(folder) as tmp:
        _write(tmp, "new")
    assert sorted(os.listdir(folder)) == [MARKER_FILE, "a.txt"]
    assert (folder / "a.txt").read_text() == "new"
    assert sorted(os.listdir(tmp_path)) == ["model", "out.txt", "stale.txt"]


def test_a_failed_write_keeps_the_old_content(tmp_path):
    path = tmp_path / "out.csv"
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("trial_id,score\n")
    with pytest.raises(RuntimeError, match="disk full"):
        with atomic_path(path) as tmp:
            with open(tmp, "w") as f:
                f.write("partial")
            raise RuntimeError("disk full")
    assert path.read_text() == "trial_id,score\n"
    assert os.listdir(tmp_path) == ["out.csv"]


def test_write_json_replaces_the_file(tmp_path):
    path = tmp_path / "state.json"
    write_json(path, {"a": 1})
    os.link(path, tmp_path / "before")  # keeps the old inode's content
    write_json(path, {"b": [1, 2], "a": None})  # keys may be added
    assert json.loads(path.read_text()) == {"a": None, "b": [1, 2]}
    assert json.loads((tmp_path / "before").read_text()) == {"a": 1}
    assert sorted(os.listdir(tmp_path)) == ["before", "state.json"]


def test_marked_kinds_are_recognised_and_replaced(tmp_path):
    for name, writer in (("plot.png", _png), ("best.keras", _zip),
                         ("w.h5", lambda p: _h5(p, keras_regnet_weights=1))):
        path = tmp_path / name
        for _ in range(2):  # the second write replaces the first
            with atomic_path(path) as tmp:
                writer(tmp)
    with zipfile.ZipFile(tmp_path / "best.keras") as z:
        assert z.read("config.json") == b"{}" and z.testzip() is None
    png = (tmp_path / "plot.png").read_bytes()
    assert b"tEXtkeras_regnet\0" in png and png.endswith(b"IEND\xaeB`\x82")
    assert sorted(os.listdir(tmp_path)) == ["best.keras", "plot.png", "w.h5"]


def _user_files(root):
    """What a user may have where we are asked to write."""
    folder = root / "runA"
    _write(folder, "a search")
    (root / "notes.txt").write_text("my notes\n")
    (root / "config.json").write_text('{"mine": 1}')
    (root / "list.json").write_text("[1, 2]")
    (root / "empty.csv").write_bytes(b"")
    (root / "blob.bin").write_bytes(bytes(range(256)) * 4)
    _png(root / "photo.png")
    _zip(root / "other.keras")
    _h5(root / "theirs.h5")
    os.symlink(root / "notes.txt", root / "link.txt")


@pytest.mark.parametrize("target, kind", [
    ("runA", "a folder"), ("notes.txt", "a text file"),
    ("config.json", "a JSON file"), ("list.json", "a JSON file"),
    ("empty.csv", "an empty file"), ("blob.bin", "a binary file"),
    ("photo.png", "a PNG image"), ("other.keras", "a zip file"),
    ("theirs.h5", "an HDF5 file"), ("link.txt", "a symbolic link"),
])
@pytest.mark.parametrize("write", ["json", "text", "folder"])
def test_what_we_did_not_write_is_never_replaced(tmp_path, target, kind, write):
    _user_files(tmp_path)
    before = _snapshot(tmp_path)
    path = tmp_path / target
    with pytest.raises(ValueError) as e:
        if write == "json":
            write_json(path, {"a": 1})
        else:
            with atomic_path(path, argument="--out") as tmp:
                if write == "folder":
                    _write(tmp, "new")
                else:
                    with open(tmp, "w") as f:
                        f.write("trial_id,score\n")
    message = str(e.value)
    argument = "path" if write == "json" else "--out"
    assert message.startswith(f"Invalid `{argument}`: {str(path)!r} is {kind}")
    assert "Expected a path that does not exist yet" in message
    assert _snapshot(tmp_path) == before  # nothing lost, no temporaries


def test_refusals_say_how_ours_is_told(tmp_path):
    _user_files(tmp_path)
    for target, how, write in (
            ("runA", MARKER_FILE, check_target),
            ("photo.png", "text chunk", check_target),
            ("other.keras", "archive comment", check_target),
            ("theirs.h5", "root attribute", check_target),
            ("config.json", "keys keras_regnet writes", lambda p: write_json(p, {"a": 1})),
            ("notes.txt", "header keras_regnet writes", _text)):
        with pytest.raises(ValueError, match="keras_regnet did not write") as e:
            write(tmp_path / target)
        assert how in str(e.value)


def _text(path):
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("trial_id,score\n")


def test_a_kind_mismatch_is_refused_even_for_our_own(tmp_path):
    folder, path = tmp_path / "export", tmp_path / "trials.csv"
    with atomic_path(folder) as tmp:
        _write(tmp, "ours")
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            f.write("trial_id,score\n")
    before = _snapshot(tmp_path)
    with pytest.raises(ValueError, match="is a folder, but a PNG image is to be written"):
        with atomic_path(folder) as tmp:
            _png(tmp)
    with pytest.raises(ValueError, match="is a text file, but a PNG image is to be written"):
        with atomic_path(path) as tmp:
            _png(tmp)
    with pytest.raises(ValueError, match="is a text file, but a folder is to be written"):
        with atomic_path(path) as tmp:
            _write(tmp, "x")
    assert _snapshot(tmp_path) == before


def test_entries_of_a_search_folder_are_ours_if_of_the_same_kind(tmp_path):
    """The tuner declares its search folders (`files.own_folders_by`)."""
    import tuner.folder  # noqa: F401

    (tmp_path / "search.json").write_text(
        '{"dataset": "cifar10", "tuner": "random", "max_trials": 4}')
    _png(tmp_path / "edf.png")  # written before plots were marked
    _write(tmp_path / "best_savedmodel", "old")
    (tmp_path / "notes.txt").write_text("notes\n")
    with atomic_path(tmp_path / "edf.png") as tmp:
        _png(tmp)
    with atomic_path(tmp_path / "best_savedmodel") as tmp:
        _write(tmp, "new")
    assert (tmp_path / "best_savedmodel" / "a.txt").read_text() == "new"
    with pytest.raises(ValueError, match="is a text file, but a PNG image"):
        with atomic_path(tmp_path / "notes.txt") as tmp:
            _png(tmp)
    assert (tmp_path / "notes.txt").read_text() == "notes\n"
    # A state file cut short by a kill (not JSON any more) is replaced.
    (tmp_path / "kt").mkdir()
    (tmp_path / "kt" / "tuner0.json").write_text('{"a')
    write_json(tmp_path / "kt" / "tuner0.json", {})
    assert json.loads((tmp_path / "kt" / "tuner0.json").read_text()) == {}


def test_a_foreign_search_json_does_not_make_a_folder_ours(tmp_path):
    import tuner.folder  # noqa: F401

    (tmp_path / "search.json").write_text('{"query": "cats"}')
    (tmp_path / "results.json").write_text('{"cats": 3}')
    with pytest.raises(ValueError, match="did not write"):
        write_json(tmp_path / "results.json", {"dogs": 1})
    assert json.loads((tmp_path / "results.json").read_text()) == {"cats": 3}


def test_check_target_before_any_work(tmp_path):
    missing = r"Invalid `dst`: .*no/x\.h5'\. Its folder .* does not exist"
    with pytest.raises(ValueError, match=missing):
        check_target(tmp_path / "no" / "x.h5", "dst")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ValueError, match=r"Its folder .*file' is not a folder"):
        check_target(tmp_path / "file" / "x.h5", "dst")
    with pytest.raises(ValueError, match="Invalid `dst`: 3. Expected a path"):
        check_target(3, "dst")
    (tmp_path / "x.h5").mkdir()
    with pytest.raises(ValueError, match="is a folder that keras_regnet did not write"):
        check_target(tmp_path / "x.h5", "dst")
    assert check_target(tmp_path / "new.h5") == str(tmp_path / "new.h5")


def test_cached_files_are_replaced_whatever_they_hold_and_left_unmarked(tmp_path):
    path = tmp_path / "x.keras"
    path.write_bytes(b"\0" * 10)  # a partial download
    with atomic_path(path, cached=True) as tmp:
        _zip(tmp)
    with zipfile.ZipFile(path) as z:
        assert z.comment == b""  # the bytes stay as fetched
    (tmp_path / "d.h5").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        with atomic_path(tmp_path / "d.h5", cached=True) as tmp:
            _h5(tmp)


_KILLED_WRITER = textwrap.dedent("""
    import sys, time
    from keras_regnet.files import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        open(tmp, "w").write('{"half": ')
        print("writing", flush=True)
        time.sleep(120)
""")


def _writer(path):
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(path)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "writing\n"
    return proc


def test_temporaries_of_killed_writers_are_removed_by_the_next_write(tmp_path):
    path = tmp_path / "oracle.json"
    write_json(path, {"a": 1})
    dead, live = _writer(path), _writer(path)
    dead.send_signal(signal.SIGKILL)
    dead.wait()
    temps = {p: name for name in os.listdir(tmp_path)
             for p in (dead, live) if f".{HOST}.{p.pid}." in name}
    assert len(temps) == 2 and all(n.startswith(".oracle.json.tmp.") for n in temps.values())
    other_host = tmp_path / f".oracle.json.tmp.otherhost.{dead.pid}.abcdefgh"
    other_host.mkdir()
    assert json.loads(path.read_text()) == {"a": 1}  # the kill left the old file

    assert is_dead_temp(tmp_path / temps[dead])
    assert not is_dead_temp(tmp_path / temps[live])
    assert not is_dead_temp(other_host) and not is_dead_temp(path)
    write_json(path, {"a": 2})
    left = set(os.listdir(tmp_path))
    assert temps[dead] not in left  # the dead writer's temporary is gone
    assert temps[live] in left  # a running writer's is untouched
    assert other_host.name in left  # so is another host's
    live.kill()
    live.wait()
    assert json.loads(path.read_text()) == {"a": 2}
