"""The one exception type the command line turns into a one-line message (no traceback)."""


class BenchError(Exception):
    """A problem with the user's input or set-up, stated in one line that names the file or thing at fault."""
