"""Files and folders written whole, replacing only what this package wrote.

Every file and folder the library and the tuner write goes through
`atomic_path`: the content is written to a temporary path beside the
target and renamed into place, so a kill never leaves a half-written
target. An existing target is replaced only if it is of the same kind as
the new content and keras_regnet wrote it, which is told per kind:

- folder (SavedModel exports): it holds the marker file `.keras_regnet`,
  which `atomic_path` puts into every folder it writes.
- zip (`.keras` files): the archive comment `keras_regnet`, set by
  `atomic_path`.
- PNG: a `tEXt` chunk with the keyword `keras_regnet` right after the
  image header, inserted by `atomic_path`.
- HDF5: a root attribute whose name starts with `keras_regnet` (converted
  weights files carry `keras_regnet_weights`); set by their writer.
- JSON: an object, and each of its keys is a key of the new object (our
  state files keep their keys from one write to the next).
- other text (CSV): the same first header field as the new file
  (`trial_id` in `trials.csv`).

Besides, a file in a folder we own (one that holds the marker file or a
file registered by its writer with `own_folders_by` (the tuner's
`search.json`), up to three levels up) is ours if it is of
the new content's kind (files written before the marks existed), or if
JSON is to be written where a kill cut a JSON state file short.

Anything else (a link, an empty or other binary file, a folder where a
file goes or the reverse) is refused with a `ValueError` that names the
path, what it is and what is allowed; nothing is written.

A killed writer leaves its temporary folder
`.NAME.tmp.HOST.PID.XXXXXXXX` beside the target. The next write of that
target removes those of this host whose process no longer runs.
"""

import codecs
import contextlib
import json
import os
import shutil
import socket
import struct
import tempfile
import zipfile
import zlib

MARK = "keras_regnet"
MARKER_FILE = ".keras_regnet"
_HDF5 = b"\x89HDF\r\n\x1a\n"
_PNG = b"\x89PNG\r\n\x1a\n"
_PNG_TEXT_AT = 33  # after the signature and the 25-byte IHDR chunk
_PNG_MARK = MARK.encode() + b"\0"
_TEXT_PREFIX = 64 << 10  # read to tell text from binary
_TEXT_LIMIT = 64 << 20  # larger files are not parsed as JSON
_HOST = socket.gethostname()
# For tests of faults: a callable that `atomic_path` calls with each target
# path once its content is written, before the rename; it may raise the
# `OSError` of a full disk or a vanished folder. None in normal use.
fault_injector = None


@contextlib.contextmanager
def atomic_path(path, argument="path", cached=False, parents=False):
    """Yields a temporary path to write the file or folder `path` to.

    The temporary path lies in a fresh folder beside `path` and has its base
    name (so writers that go by the extension still work). When the block
    ends normally it replaces `path`; whatever happens, nothing temporary is
    left. Readers see the old content or the new, never a partial write.

    Args:
        path: the file or folder to write.
        argument: name of the argument that gave `path`, for messages.
        cached: `path` is a cache entry holding a copy of a remote file: a
            file there is replaced whatever it holds, and the new file is
            left byte for byte as written (no mark).
        parents: create `path`'s missing folders (as `mkdir -p`).

    Raises:
        ValueError: `path`'s folder does not exist (and `parents` is False)
            or cannot be made, or `path` exists and is not a file or folder
            of the new content's kind that keras_regnet wrote (see the
            module docstring). Checked before the block runs and again
            before the rename.
    """
    path = check_target(path, argument, cached, parents)
    parent, base = os.path.split(path)
    os.makedirs(parent, exist_ok=True)
    _remove_dead_temps(parent, base)
    work = tempfile.mkdtemp(prefix=f".{base}.tmp.{_HOST}.{os.getpid()}.",
                            dir=parent)
    try:
        tmp = os.path.join(work, base)
        yield tmp
        if fault_injector is not None:
            fault_injector(path)
        if not cached:
            _mark(tmp)
        if os.path.lexists(path):
            _check_replaceable(path, argument, cached, new=tmp)
        if os.path.isdir(path):
            os.replace(path, tmp + ".old")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def check_target(path, argument="path", cached=False, parents=False):
    """Checks that `atomic_path` may write `path`; returns it absolute.

    Call it before expensive work whose result goes to `path`.

    Raises:
        ValueError: as `atomic_path`, as far as can be told before the new
            content exists.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Invalid `{argument}`: {path!r}. Expected a path.")
    path = os.path.abspath(os.fspath(path))
    parent = os.path.dirname(path)
    if parents:
        check_folder_creatable(parent, argument, path)
    elif not os.path.isdir(parent):
        problem = "is not a folder" if os.path.exists(parent) else "does not exist"
        raise ValueError(f"Invalid `{argument}`: {path!r}. Its folder "
                         f"{parent!r} {problem}.")
    if os.path.lexists(path):
        _check_replaceable(path, argument, cached)
    return path


def check_folder_creatable(folder, argument="path", given=None):
    """Checks that `folder` exists or that `os.makedirs` can make it: its
    nearest existing ancestor is a folder. `given`: the user's path, for
    the message (default `folder`).

    Raises:
        ValueError: naming `argument`, the path and the ancestor in the way.
    """
    ancestor = os.path.abspath(folder)
    while not os.path.lexists(ancestor):
        ancestor = os.path.dirname(ancestor)
    if not os.path.isdir(ancestor):
        raise ValueError(f"Invalid `{argument}`: {given or folder!r}. Its folder "
                         f"{ancestor!r} is {_kind(ancestor)}, not a folder.")


def os_error_text(error):
    """An `OSError` in one line: `No space left on device: '/runs/x/trials.csv'`."""
    if error.strerror:
        where = f": {error.filename!r}" if error.filename else ""
        return f"{error.strerror}{where}"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)


def _check_replaceable(path, argument, cached, new=None):
    if cached:
        problem = (None if os.path.isfile(path) and not os.path.islink(path)
                   else f"is {_kind(path)}")
    else:
        old = _kind(path)
        ours = _in_our_folder(path)
        problem = None
        cut_short = ours and old in _CUT_SHORT
        if old not in _HOW and not cut_short:
            problem = f"is {old}"
        elif new is not None and _kind(new) != old and not (
                cut_short and _kind(new) == "a JSON file"):
            problem = f"is {old}, but {_kind(new)} is to be written there"
        elif not (ours or _ours(path, old, new)):
            problem = f"is {old} that keras_regnet did not write ({_HOW[old]})"
    if problem:
        raise ValueError(
            f"Invalid `{argument}`: {path!r} {problem}. Expected a path that "
            "does not exist yet, or a file or folder of the same kind that "
            "keras_regnet wrote; move it away or choose another path.")


# The kinds that may be replaced, and what tells that keras_regnet wrote them.
_HOW = {
    "a folder": f"no {MARKER_FILE} marker file in it",
    "a zip file": f"no '{MARK}' archive comment",
    "a PNG image": f"no '{MARK}' text chunk",
    "an HDF5 file": f"no '{MARK}' root attribute",
    "a JSON file": "not a JSON object with the keys keras_regnet writes there",
    "a text file": "not the header keras_regnet writes there",
}


# What a JSON state file cut short by a kill reads as; in a folder of ours
# the next write replaces it.
_CUT_SHORT = ("a text file", "an empty file")


# File name -> predicate on its path: a folder holding such a file (for
# which the predicate is true) is ours. Filled by `own_folders_by`.
_FOLDER_FILES = {}


def own_folders_by(name, recognize):
    """Declares that a folder holding a file `name` for which
    `recognize(path)` is true was written by this project (e.g. a tuner
    search's `search.json`), so that files in it may be replaced."""
    _FOLDER_FILES[name] = recognize


def existing_file(path, argument, expected):
    """`path` as a string, if it names an existing file; else a `ValueError`
    naming `argument`, what `path` is and what was `expected`."""
    if not isinstance(path, (str, os.PathLike)):
        raise ValueError(f"Invalid `{argument}`: {path!r}. Expected {expected}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        problem = ("It is a folder" if os.path.isdir(path)
                   else "The file does not exist")
        raise ValueError(f"Invalid `{argument}`: {path!r}. {problem}; "
                         f"expected {expected}.")
    return path


def _in_our_folder(path, levels=3):
    """Whether `path` lies in a folder of ours: one of its first `levels`
    ancestors holds the marker file or a file registered by `own_folders_by`."""
    folder = os.path.dirname(path)
    for _ in range(levels):
        if os.path.isfile(os.path.join(folder, MARKER_FILE)) or any(
                recognize(os.path.join(folder, name))
                for name, recognize in _FOLDER_FILES.items()):
            return True
        folder = os.path.dirname(folder)
    return False


def _kind(path):
    """What `path` is, in words: a key of `_HOW`, or a kind never replaced."""
    if os.path.islink(path):
        return "a symbolic link"
    if os.path.isdir(path):
        return "a folder"
    if not os.path.isfile(path):
        return "a special file"
    with open(path, "rb") as f:
        head = f.read(_TEXT_PREFIX)
    if not head:
        return "an empty file"
    if head.startswith(_HDF5):
        return "an HDF5 file"
    if head.startswith(_PNG):
        return "a PNG image"
    if head[:4] in (b"PK\x03\x04", b"PK\x05\x06"):
        return "a zip file"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head)
    except UnicodeDecodeError:
        return "a binary file"
    if b"\0" in head:
        return "a binary file"
    try:
        read_json(path)
        return "a JSON file"
    except ValueError:
        return "a text file"


def _ours(path, kind, new):
    """Whether the existing `path` of this kind was written by keras_regnet.

    JSON and text files are judged against the new content `new`; before
    it exists (None) they pass.
    """
    try:
        if kind == "a folder":
            return os.path.isfile(os.path.join(path, MARKER_FILE))
        if kind == "a zip file":
            with zipfile.ZipFile(path) as z:
                return z.comment == MARK.encode()
        if kind == "a PNG image":
            with open(path, "rb") as f:
                head = f.read(_PNG_TEXT_AT + 8 + len(_PNG_MARK))
            return head[_PNG_TEXT_AT + 4:] == b"tEXt" + _PNG_MARK
        if kind == "an HDF5 file":
            import h5py

            with h5py.File(path, "r") as f:
                return any(k.startswith(MARK) for k in f.attrs)
        if new is None:
            return True
        if kind == "a JSON file":
            old, obj = read_json(path), read_json(new)
            return (isinstance(old, dict) and isinstance(obj, dict)
                    and set(old) <= set(obj))
        return _first_field(path) == _first_field(new)
    except (OSError, ValueError, zipfile.BadZipFile):
        return False


def read_json(path):
    """The JSON value in `path` (at most a few MB); `OSError` or
    `ValueError` if it cannot be read."""
    if os.path.getsize(path) > _TEXT_LIMIT:
        raise ValueError("too large")
    with open(path, "rb") as f:
        return json.loads(f.read())


def _first_field(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.readline().split(",")[0].strip()


def _mark(tmp):
    """Marks what was written at `tmp` as keras_regnet's (see module doc)."""
    if os.path.isdir(tmp):
        with open(os.path.join(tmp, MARKER_FILE), "w", encoding="utf-8") as f:
            f.write("Written by keras_regnet, which may replace this folder.\n")
        return
    kind = _kind(tmp)
    if kind == "a zip file":
        with zipfile.ZipFile(tmp, "a") as z:
            z.comment = MARK.encode()
    elif kind == "a PNG image" and not _ours(tmp, kind, None):
        with open(tmp, "rb") as f:
            data = f.read()
        text = _PNG_MARK + b"written by keras_regnet"
        chunk = (struct.pack(">I", len(text)) + b"tEXt" + text
                 + struct.pack(">I", zlib.crc32(b"tEXt" + text)))
        with open(tmp, "wb") as f:
            f.write(data[:_PNG_TEXT_AT] + chunk + data[_PNG_TEXT_AT:])


def _remove_dead_temps(parent, base):
    """Removes temporary folders of `base` left by dead processes of this host."""
    for entry in os.scandir(parent):
        if entry.name.startswith(f".{base}.tmp.") and is_dead_temp(entry.path):
            shutil.rmtree(entry.path, ignore_errors=True)


def is_dead_temp(path):
    """Whether `path` is a temporary folder of `atomic_path` whose process
    (on this host) was killed before it could remove it."""
    name = os.path.basename(path)
    _, marker, tail = name.rpartition(f".tmp.{_HOST}.")
    pid, _, suffix = tail.partition(".")
    return bool(name.startswith(".") and marker and pid.isdigit() and suffix
                and not _alive(int(pid)) and os.path.isdir(path)
                and not os.path.islink(path))


def _alive(pid):
    if os.name != "posix":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        pass
    return True
