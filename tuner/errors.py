"""Exceptions of the search, importable without Keras or TensorFlow."""


class SearchStopped(RuntimeError):
    """Raised when the oracle stopped the search (repeated failed trials)."""


class DamagedRun(ValueError):
    """Raised when a search folder's state cannot be read; nothing was changed."""


class WorkerRecycle(Exception):
    """Raised in a worker process that has run its share of trials."""
