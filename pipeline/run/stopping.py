"""How a run stops early: Ctrl-C or SIGTERM (a second one: at once), or a fatal error.

A stop lets in-flight requests finish within a grace period, so their answers are written
and the job resumes from there; a 401/403 stops with no grace (every request would fail).
A tripped endpoint breaker keeps the grace for requests already on the wire only: the
client starts no new attempt, and the engine stops as soon as none is on the wire.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from collections.abc import Callable

from pipeline.errors import AuthError

STOP_GRACE_S = 30.0  # how long in-flight requests may take to finish after Ctrl-C / SIGTERM


class StopControl:
    def __init__(self) -> None:
        self.requested = asyncio.Event()  # stop reading; send nothing new
        self.now = asyncio.Event()  # a second Ctrl-C: give up the grace period
        self.fatal: BaseException | None = None  # the error that stopped the job, if any

    @property
    def stopping(self) -> bool:
        return self.requested.is_set()

    @property
    def grace_s(self) -> float:
        return 0.0 if isinstance(self.fatal, AuthError) else STOP_GRACE_S

    def stop_for(self, error: BaseException) -> None:
        """Stop because of `error` (an AuthError, EndpointUnusable): no request can
        succeed. The first such error is the one reported."""
        if self.fatal is None:
            self.fatal = error
        self.requested.set()

    def on_signal(self) -> None:
        if self.requested.is_set():
            print("\nstopping now: in-flight requests are abandoned", file=sys.stderr)
            self.now.set()
            return
        print(
            f"\nstopping: finishing in-flight requests (at most {STOP_GRACE_S:.0f}s; "
            "Ctrl-C again to stop at once), then writing what is done",
            file=sys.stderr,
        )
        self.requested.set()

    def install_signal_handlers(self) -> Callable[[], None]:
        """Route SIGINT and SIGTERM to `on_signal`; returns the function that undoes it."""
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self.on_signal)
                installed.append(sig)
            except (
                NotImplementedError,
                RuntimeError,
                ValueError,
            ):  # not the main thread, or Windows
                pass

        def restore() -> None:
            for sig in installed:
                loop.remove_signal_handler(sig)

        return restore
