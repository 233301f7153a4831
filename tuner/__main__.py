import signal
import sys


def main():
    # A search takes Ctrl-C and SIGTERM in a thread of its own
    # (`tuner.stopping`). Blocked before NumPy starts its BLAS threads,
    # which would otherwise inherit them unblocked and take them instead.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
    from tuner.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
