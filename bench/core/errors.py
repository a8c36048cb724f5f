"""The one exception type the command line turns into a one-line message (no traceback)."""


class BenchError(Exception):
    """A problem with the user's input or set-up, stated in one line that names the file or thing at fault."""


def first_line(exc: BaseException) -> str:
    """``"TypeName: first line of the message"`` (just the type name when there is no message)."""
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0]}" if text else type(exc).__name__


class RunInterrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM stopped the work; ``signum`` says which. A KeyboardInterrupt, so that every
    ``except KeyboardInterrupt`` cleanup treats SIGTERM like Ctrl-C."""

    def __init__(self, signum: int):
        import signal

        super().__init__(signal.Signals(signum).name)
        self.signum = signum
