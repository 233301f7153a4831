"""Ctrl-C and SIGTERM during a command-line search.

The first signal asks the search to stop: the main thread raises
`KeyboardInterrupt` itself at its next check (`raise_if_stopped`: each
batch, and the chief's poll), in plain Python code, and the search then
ends like its last trial would. An interrupt injected into the main thread
wherever it happens to be (`_thread.interrupt_main`) was lost in JAX's gc
callback and turned into a `RuntimeError` by TensorFlow's pybind11 error
translation. The second signal ends the process at once.
"""

import os
import signal
import sys
import threading

SIGNALS = {signal.SIGINT, signal.SIGTERM}
STOP = threading.Event()


def stop_on_signals():
    """Takes Ctrl-C and SIGTERM in a thread of its own: the first sets `STOP`,
    the second exits with code 130. Everything a search writes is written
    whole, so what is complete stays complete."""
    if not hasattr(signal, "pthread_sigmask"):
        return  # Windows: Python's own KeyboardInterrupt
    # A process started in the background (`... &`) inherits SIGINT ignored,
    # and a platform may discard an ignored signal although it is blocked.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)

    def watch():
        signal.sigwait(SIGNALS)
        STOP.set()
        print("\nStopping at the next batch (press Ctrl-C again to stop at once).",
              file=sys.stderr, flush=True)
        signal.sigwait(SIGNALS)
        print("\nStopped; completed trials are kept. Continue with --resume.",
              file=sys.stderr, flush=True)
        os._exit(130)

    threading.Thread(target=watch, daemon=True, name="stop-on-signals").start()


def raise_if_stopped():
    """`KeyboardInterrupt` once a signal has asked the search to stop."""
    if STOP.is_set():
        raise KeyboardInterrupt
