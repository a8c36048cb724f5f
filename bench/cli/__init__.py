"""Command line: ``python -m bench list | run | tune | train | speed | noise | export | verify | report``.

Errors in the user's input print one line (``error: <file>: <problem>``) and exit with status 2; output
paths are checked before any work. Anything unexpected prints one line and the file holding its traceback
and exits with status 70 (``python -m bench --debug ...`` prints the traceback instead). A closed stdout
(``| head -1``) ends the command quietly with status 141, as SIGPIPE would.
"""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from bench.core.errors import BenchError, RunInterrupted, first_line
from bench.cli.checks import check_path_names, load_params_file, printable_path  # noqa: F401 (load_params_file: for callers)
from bench.cli.commands import EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_INTERNAL_ERROR, report_after_run  # noqa: F401
from bench.cli.parser import build_parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    _terminate_like_ctrl_c()
    try:
        check_path_names(args)
        status = args.handler(args)
        sys.stdout.flush()  # a reader that has gone (`| head -1`) shows up here rather than at exit
        return status
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # stdout's reader has gone: stop quietly
        _silence_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as exc:  # a file the system refused (no space, no permission): the set-up, not a bug
        if not isinstance(exc.filename, (str, bytes, os.PathLike)):
            return _internal_error(exc, args.debug)
        print(f"error: {printable_path(exc.filename)}: {exc.strerror or first_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:  # the safety net (an interruption is no Exception: it goes on to the next branch)
        return _internal_error(exc, args.debug)
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (see _terminate_like_ctrl_c)
        signum = getattr(exc, "signum", signal.SIGINT)
        print(f"interrupted ({signal.Signals(signum).name})", file=sys.stderr)
        return 128 + signum


def _terminate_like_ctrl_c() -> None:
    """SIGTERM (``kill``, a batch scheduler's time limit) stops every command the way Ctrl-C does: cleanup
    runs, a run writes its tables, and the exit status is 143 (128 + 15) instead of 130."""
    def handler(signum: int, frame) -> None:
        raise RunInterrupted(signum)

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, handler)


def _internal_error(exc: BaseException, debug: bool) -> int:
    """Report an unexpected exception: its full traceback with ``--debug``, else one line and the file the
    traceback was saved to."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
        return EXIT_INTERNAL_ERROR
    saved = _save_traceback(exc)
    where = f"traceback in {saved}" if saved else "the traceback could not be saved"
    print(f"error: internal error: {first_line(exc)} ({where}; `python -m bench --debug ...` prints it)",
          file=sys.stderr)
    return EXIT_INTERNAL_ERROR


def _save_traceback(exc: BaseException) -> Path | None:
    """Write the command line and ``exc``'s traceback to a new temporary file; its path, or None if that fails."""
    from bench import provenance

    try:
        handle, name = tempfile.mkstemp(prefix="raw-bench-error-", suffix=".log")
        with open(handle, "w", errors="backslashreplace") as log:
            log.write(provenance.command_line() + "\n\n")
            traceback.print_exception(exc, file=log)
    except OSError:
        return None
    return Path(name)


def _silence_stdout() -> None:
    """Point stdout at the null device, so that Python's own flush at exit does not fail on the closed pipe
    again (what the Python documentation advises for SIGPIPE)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
