"""Verified, atomic downloads into the Keras cache directory."""

import hashlib
import http.client
import os
import tempfile
import urllib.error
import urllib.request

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


def fetch(url, fname, sha256, directory=None, timeout=60):
    """Returns the path of a verified copy of `url`, downloading if needed.

    A cached file is trusted only if its SHA-256 matches. A download goes
    to a temporary file in the same directory and is renamed into place
    only after its hash checks out, so an interrupted or corrupted download
    never leaves a file a later call would trust, and concurrent downloads
    of the same file end with one complete, valid file.

    Args:
        url: where to download the file from.
        fname: file name in the cache directory.
        sha256: expected SHA-256 hex digest.
        directory: cache directory; defaults to `cache_dir()`.
        timeout: socket timeout in seconds.

    Raises:
        DownloadError: the server cannot be reached, the transfer breaks
            off, or the file's hash does not match.
    """
    directory = directory or cache_dir()
    target = os.path.join(directory, fname)
    if os.path.exists(target) and sha256_of(target) == sha256:
        return target
    try:
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                digest = _download(url, out, timeout)
            if digest != sha256:
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
        raise DownloadError(
            f"Could not download {fname} from {url} ({reason}). If this "
            f"machine is offline, download {url} elsewhere, check that its "
            f"SHA-256 is {sha256}, and either pass its path as "
            f"`weights='/path/to/{fname}'` or copy it to {target}.") from e


def _download(url, out, timeout):
    """Streams `url` into the open file `out`; returns its SHA-256."""
    digest = hashlib.sha256()
    received = 0
    with urllib.request.urlopen(url, timeout=timeout) as response:
        expected = response.headers.get("Content-Length")
        for chunk in iter(lambda: response.read(_CHUNK), b""):
            digest.update(chunk)
            out.write(chunk)
            received += len(chunk)
    if expected is not None and received != int(expected):
        raise http.client.IncompleteRead(b"", int(expected) - received)
    return digest.hexdigest()
