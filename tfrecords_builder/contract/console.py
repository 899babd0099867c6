"""How every command of hsr-keras and tfrecords_builder ends, and what it keeps off the terminal.

Exit codes, the same for every command:

    0    success
    1    an internal error (a bug): Python's traceback is kept
    2    bad input or usage (a full disk too): one line on stderr, no traceback
    130  interrupted (Ctrl-C): nothing was published

Libraries log (`logging`); commands print. `run_command` shows the two packages' log records
on stderr as bare lines (notes at INFO, warnings, errors); a command's `--quiet` keeps only
warnings and errors (`set_quiet`).

TensorFlow 2.21 writes its native start-up messages (oneDNN, CUDA stubs, CPU features) to the
process's stderr before its logging is configured, so no environment variable silences them;
`quiet_native_logs` filters exactly those lines out of file descriptor 2 and passes everything
else through. Set HSR_KERAS_NATIVE_LOGS=1 to see them.
"""

import atexit
import logging
import os
import re
import sys
import threading

from tfrecords_builder.contract.errors import InputError
from tfrecords_builder.contract.files import is_disk_full

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130

# Native log lines TensorFlow prints on every start: informational (I) and warning (W) lines of
# its C++ logging, absl's notice that logging is not initialised yet, the CPU-feature hint, and
# the failed CUDA initialisation of a machine without a GPU, and the graph optimiser's notice
# that it skipped a rewrite (printed while tracing training steps on the CPU; harmless).
NATIVE_NOISE = re.compile(
    rb"^(WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|[IW]\d{4} \d\d:\d\d:[\d.]+\s+\d+ \S+:\d+\] "
    rb"|E\d{4} \d\d:\d\d:[\d.]+\s+\d+ cuda_\w+\.cc:\d+\] failed call to cuInit"
    rb"|E\d{4} \d\d:\d\d:[\d.]+\s+\d+ meta_optimizer\.cc:\d+\] remapper failed"
    rb"|To enable the following instructions: )"
)

_filter = None


PACKAGES = ("hsr_keras", "tfrecords_builder")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is at the moment (the native-log filter and pytest replace it)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def show_logs(level=logging.INFO):
    """Show the packages' log records of `level` and above on stderr, one bare line each (once per process)."""
    for name in PACKAGES:
        logger = logging.getLogger(name)
        if not any(isinstance(h, _StderrHandler) for h in logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(logging.Formatter("%(message)s"))
            logger.addHandler(handler)
        logger.setLevel(level)


def set_quiet(quiet):
    """A command's --quiet: warnings and errors only."""
    show_logs(logging.WARNING if quiet else logging.INFO)


def one_line(err):
    """An exception's message on one line (whitespace folded), for `error: ...`."""
    return " ".join(str(err).split()) or type(err).__name__


def run_command(body, argv=None):
    """Runs `body(argv)` (it returns the exit code) with the exit-code policy above.

    `InputError` and file-system errors (`OSError`: a missing, unreadable or read-only path, a
    full disk) are bad input, and so is a full disk that a library reports in its own error
    type (TensorFlow, h5py); any other exception is a bug and keeps its traceback.
    """
    quiet_native_logs()
    show_logs()
    try:
        return int(body(argv) or EXIT_OK)
    except KeyboardInterrupt:
        print("interrupted: nothing was published", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (InputError, OSError) as err:
        print(f"error: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as err:
        if not is_disk_full(err):
            raise
        print(f"error: the disk is full: {one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def quiet_native_logs():
    """Filter TensorFlow's native start-up lines (`NATIVE_NOISE`) out of stderr for this process.

    Python's own writes (`sys.stderr`: messages, tracebacks, progress bars) go straight to the
    terminal; native writes to file descriptor 2 pass through a pipe whose reader drops only the
    noise. Does nothing when stderr is not file descriptor 2 (e.g. captured by pytest), when
    HSR_KERAS_NATIVE_LOGS=1, or when already installed.
    """
    global _filter
    if _filter is not None or os.environ.get("HSR_KERAS_NATIVE_LOGS") == "1":
        return
    try:
        if sys.stderr.fileno() != 2:
            return
    except (AttributeError, OSError, ValueError):
        return
    sys.stderr.flush()
    terminal = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    sys.stderr = open(terminal, "w", buffering=1, closefd=False, errors="backslashreplace")  # noqa: SIM115
    thread = threading.Thread(target=_pass_through, args=(read_end, terminal), daemon=True, name="native-stderr")
    thread.start()
    _filter = (terminal, thread)
    atexit.register(_stop)


def _pass_through(read_end, terminal):
    with os.fdopen(read_end, "rb", buffering=0) as pipe:
        pending = b""
        while chunk := pipe.read(65536):
            *lines, pending = (pending + chunk).split(b"\n")
            kept = b"".join(line + b"\n" for line in lines if not NATIVE_NOISE.match(line))
            if kept:
                os.write(terminal, kept)
        if pending and not NATIVE_NOISE.match(pending):
            os.write(terminal, pending)


def _stop():
    """At exit: put the terminal back on descriptor 2 (closing the pipe) and let the reader drain it."""
    terminal, thread = _filter
    sys.stderr.flush()
    os.dup2(terminal, 2)
    thread.join(timeout=2.0)
