"""A progress bar on stderr: tqdm when installed, else a one-line bar; on a
stream that is not a terminal (a log file), one line per 5% instead."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO


class Progress:
    """``step(msg)`` before each of ``total`` steps; ``close()`` at the end."""

    def __init__(self, total: int, *, enabled: bool = True, stream: TextIO | None = None) -> None:
        self.total, self.enabled, self.done = total, enabled, 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._last_pct = -5
        self._bar: Any = None
        if enabled and self.tty:
            try:
                from tqdm import tqdm

                self._bar = tqdm(
                    total=total,
                    file=self.stream,
                    unit="step",
                    dynamic_ncols=True,
                    desc="ir bench",
                    leave=False,
                )
            except ImportError:
                self._bar = None

    def _line(self, message: str) -> str:
        frac = self.done / max(self.total, 1)
        filled = int(30 * frac)
        elapsed = time.perf_counter() - self.start
        return (
            f"ir bench [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
            f"{elapsed:5.0f}s {message[:50]}"
        )

    def step(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            if self.done:
                self._bar.update(1)
            self._bar.set_postfix_str(message[:60], refresh=True)
        elif self.tty:
            self.stream.write("\r" + self._line(message).ljust(110))
            self.stream.flush()
        else:
            pct = 100 * self.done // max(self.total, 1)
            if pct >= self._last_pct + 5:
                self._last_pct = pct
                self.stream.write(self._line(message) + "\n")
                self.stream.flush()
        self.done += 1

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()
        elif self.tty:
            self.stream.write("\r" + " " * 110 + "\r")
            self.stream.flush()
        else:
            self.stream.write(
                f"ir bench: {self.done}/{self.total} steps in "
                f"{time.perf_counter() - self.start:.0f}s\n"
            )
            self.stream.flush()
