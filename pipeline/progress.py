"""The progress bar: queries done, documents/s and tokens, on stderr when it is a terminal."""

from __future__ import annotations

import sys
import time

from tqdm import tqdm

from pipeline.accounting.stats import JobStats


class Progress:
    def __init__(self, stats: JobStats, total: int | None, quiet: bool):
        self.stats = stats
        enabled = not quiet and sys.stderr.isatty()
        self.bar = tqdm(
            total=total, unit="q", desc="reranking", disable=not enabled, dynamic_ncols=True
        )
        self._last = 0.0

    def advance(self) -> None:
        """One more input item accounted for: ranked, failed or skipped."""
        self.bar.update(1)
        now = time.monotonic()
        if now - self._last > 0.5:
            self.refresh()
            self._last = now

    def skip(self, queries: int) -> None:
        """Queries an earlier run finished: counted at once, no documents."""
        self.bar.update(queries)

    def refresh(self) -> None:
        if self.bar.disable:
            return
        elapsed = max(time.monotonic() - self.stats.started, 1e-9)
        tokens = self.stats.reported_total_tokens or self.stats.estimated_tokens
        self.bar.set_postfix(
            docs_s=f"{self.stats.documents_ranked / elapsed:,.0f}",
            tokens=f"{tokens:,}",
            failed=self.stats.queries_failed,
            retries=self.stats.retries,
            refresh=True,
        )

    def write(self, message: str) -> None:
        """A diagnostic line on stderr: above the live bar (which is redrawn below it), not
        into it."""
        if self.bar.disable:
            print(message, file=sys.stderr)
        else:
            self.bar.write(message, file=sys.stderr)

    def close(self) -> None:
        self.bar.close()
