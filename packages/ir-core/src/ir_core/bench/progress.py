"""A progress bar on stderr: tqdm when installed, else a one-line bar."""

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
        self._bar: Any = None
        if enabled:
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

    def step(self, message: str) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            if self.done:
                self._bar.update(1)
            self._bar.set_postfix_str(message[:60], refresh=True)
        else:
            frac = self.done / max(self.total, 1)
            filled = int(30 * frac)
            elapsed = time.perf_counter() - self.start
            self.stream.write(
                f"\rir bench [{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
                f"{elapsed:5.0f}s {message[:50]:<50}"
            )
            self.stream.flush()
        self.done += 1

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.update(1)
            self._bar.close()
        else:
            self.stream.write("\r" + " " * 120 + "\r")
            self.stream.flush()
