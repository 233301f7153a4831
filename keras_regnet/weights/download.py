"""Verified, atomic downloads into the Keras cache directory."""

import hashlib
import http.client
import os
import tempfile
import time
import urllib.error
import urllib.request

from keras_regnet.design.checks import invalid
from keras_regnet.files import atomic_path

_CHUNK = 1 << 20


class DownloadError(OSError):
    """A weights file could not be downloaded or failed verification."""


def cache_dir(subdir="models"):
    """The Keras cache directory (`$KERAS_HOME` or `~/.keras`), like Keras'.

    Falls back to `/tmp/.keras` (or the system temp dir) when the home
    cache is not writable, as `keras.utils.get_file` does.
    """
    base = os.path.expanduser(
        os.environ.get("KERAS_HOME", os.path.join("~", ".keras")))
    try:
        os.makedirs(base, exist_ok=True)
    except OSError:
        pass
    if not os.access(base, os.W_OK):
        base = os.path.join(tempfile.gettempdir(), ".keras")
    path = os.path.join(base, subdir)
    os.makedirs(path, exist_ok=True)
    return path


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def fetch(url, fname, sha256, directory=None, timeout=60, deadline=None):
    """Returns the path of a verified copy of `url`, downloading if needed.

    A cached file is trusted only if its SHA-256 matches. A download goes
    to a temporary file in the same directory and is renamed into place
    only after its hash checks out, so an interrupted or corrupted download
    never leaves a file a later call would trust, and concurrent downloads
    of the same file end with one complete, valid file.

    Args:
        url: where to download the file from.
        fname: file name in the cache directory.
        sha256: expected SHA-256 hex digest, or None for a file published
            without one (timm's tags): it is then checked when it is read.
        directory: cache directory; defaults to `cache_dir()`.
        timeout: socket timeout in seconds (connecting, and each wait for
            data).
        deadline: most seconds the whole download may take; it may run
            over by up to `timeout`. Defaults to 60 s plus 1 s per 50 kB
            of the file's size (1 hour if the server sends no size), so
            that a server trickling bytes cannot hold the call forever.

    Raises:
        DownloadError: the server cannot be reached, the transfer breaks
            off or runs past the deadline, or the file's hash does not
            match.
    """
    if not isinstance(fname, str) or os.path.basename(fname) != fname or (
            fname in ("", ".", "..")):
        raise invalid("fname", fname, "a file name without folders, e.g. "
                                      "'regnetx002.h5'")
    if sha256 is not None and not (
            isinstance(sha256, str) and len(sha256) == 64
            and all(c in "0123456789abcdef" for c in sha256.lower())):
        raise invalid("sha256", sha256, "64 hex digits or None")
    sha256 = sha256 and sha256.lower()
    if not _seconds(timeout):
        raise invalid("timeout", timeout, "a number of seconds > 0")
    if deadline is not None and not _seconds(deadline):
        raise invalid("deadline", deadline, "a number of seconds > 0, or None")
    directory = directory or cache_dir()
    if not os.path.isdir(directory):
        raise invalid("directory", directory, "an existing folder, or None for the "
                                              "Keras cache")
    target = os.path.join(directory, fname)
    if os.path.isfile(target) and sha256 in (None, sha256_of(target)):
        return target
    try:
        with atomic_path(target, argument="fname", cached=True) as tmp:
            with open(tmp, "wb") as out:
                digest = _download(url, out, timeout, deadline)
            if sha256 is not None and digest != sha256:
                raise DownloadError(
                    f"The download of {fname} from {url} is corrupted: its "
                    f"SHA-256 is {digest}, expected {sha256}. Nothing was "
                    "cached; try again, or pass a verified local copy as "
                    "`weights='/path/to/file'`.")
        return target
    except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
        if isinstance(e, DownloadError):
            raise
        reason = getattr(e, "reason", None) or e
        check = f", check that its SHA-256 is {sha256}," if sha256 else ""
        raise DownloadError(
            f"Could not download {fname} from {url} ({reason}). If this "
            f"machine is offline, download {url} elsewhere{check} and either "
            f"pass its path as `weights='/path/to/{fname}'` or copy it to "
            f"{target}.") from e


def _seconds(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and value > 0)


def _download(url, out, timeout, deadline):
    """Streams `url` into the open file `out`; returns its SHA-256."""
    start = time.monotonic()
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        expected = getattr(response, "length", None)  # Content-Length
        if deadline is None:
            deadline = 3600 if expected is None else 60 + expected / 50e3
        # read1 returns what has arrived, so the deadline is checked even
        # while a slow server keeps every socket wait short.
        for chunk in iter(lambda: response.read1(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
            if time.monotonic() - start > deadline:
                raise TimeoutError(
                    f"the download took longer than its deadline of "
                    f"{deadline:g} s, with {received} bytes received")
    if expected is not None and received != expected:
        raise http.client.IncompleteRead(b"", expected - received)
    return digest.hexdigest()
