"""The command line's standard streams: a reader that leaves early costs nothing.

`rerank-pipeline run job.toml | head` closes the pipe after ten lines; the next write
raises BrokenPipeError, and Python would print a traceback and end with status 1 (or 120,
when the last flush at exit fails). A run's exit status must describe the run, so while
`guarded_streams()` is in force, a stream whose reader is gone is pointed at /dev/null and
everything else carries on as if the text had been read.

    >>> import io
    >>> class Closed(io.StringIO):
    ...     def write(self, text):
    ...         raise BrokenPipeError
    >>> ReaderGoneSafe(Closed(), silence=lambda: None).write("table")
    5
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any, TextIO


class ReaderGoneSafe:
    """A text stream that swallows BrokenPipeError and sends the rest to /dev/null."""

    def __init__(self, stream: TextIO, silence: Callable[[], None] | None = None):
        self._stream = stream
        self._silence = silence or self._to_devnull

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._silence()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._silence()

    def _to_devnull(self) -> None:
        # The file descriptor itself: text still buffered, and the flush Python makes at
        # exit, then go to /dev/null instead of failing again.
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, self._stream.fileno())
        finally:
            os.close(devnull)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)  # isatty, fileno, encoding...


@contextlib.contextmanager
def guarded_streams() -> Iterator[None]:
    """sys.stdout and sys.stderr as `ReaderGoneSafe` streams; flushed and put back after."""
    saved = sys.stdout, sys.stderr
    guarded = [ReaderGoneSafe(s) for s in saved if s is not None]
    if len(guarded) == 2:  # else no console at all (pythonw): nothing to guard
        sys.stdout, sys.stderr = guarded
    try:
        yield
    finally:
        for stream in guarded:
            stream.flush()
        sys.stdout, sys.stderr = saved
