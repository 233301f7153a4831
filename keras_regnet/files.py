"""Files and folders written atomically."""

import contextlib
import json
import os
import shutil
import tempfile


@contextlib.contextmanager
def atomic_path(path):
    """Yields a temporary path to write the file or folder `path` to.

    The temporary path lies in a fresh folder beside `path` and has its base
    name (so writers that go by the extension still work). When the block
    ends normally it replaces `path` (an existing folder is moved aside
    first); whatever happens, nothing temporary is left. Readers see the old
    content or the new, never a partial write.
    """
    path = os.path.abspath(os.fspath(path))
    work = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.",
                            dir=os.path.dirname(path))
    try:
        tmp = os.path.join(work, os.path.basename(path))
        yield tmp
        if os.path.isdir(path) and not os.path.islink(path):
            os.replace(path, tmp + ".old")
        os.replace(tmp, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_json(path, obj):
    """Writes `obj` as JSON to `path` atomically (see `atomic_path`)."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
