"""Progress lines for long work: done/total, rate and ETA, at most one line every few seconds.

    bar = progress.Progress(total=len(files), what="Screening images", unit="files")
    for i, f in enumerate(files):
      check(f)
      bar.update(i + 1)          # logs "Screening images: 1,200/50,000 files (2.4%), 310/s, ETA 2m37s"
    bar.finish()                 # logs "Screening images: 50,000/50,000 files in 2m41s (310/s)"

`update` takes the absolute count (work that reports "how far" rather than "one more");
`advance(n)` adds to it. Lines go to `absl.logging.info` unless `log` is given (any
callable taking one string, e.g. `print`). The clock is injectable for tests.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable, Iterator, TypeVar

from absl import logging

T = TypeVar("T")


def format_duration(seconds: float) -> str:
  """12s, 3m05s, 1h02m, 2d03h: two units at most, for an ETA or a wall time."""
  s = max(0, int(round(seconds)))
  if s < 60:
    return f"{s}s"
  if s < 3600:
    return f"{s // 60}m{s % 60:02d}s"
  if s < 86400:
    return f"{s // 3600}h{s % 3600 // 60:02d}m"
  return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def _rate_text(rate: float) -> str:
  """Three significant digits below 100 (0.0417, 2.5, 66.7), whole numbers above (1,234)."""
  return f"{rate:.3g}" if rate < 100 else f"{rate:,.0f}"


def _log_info(line: str) -> None:
  logging.info("%s", line)


class Progress:
  """Counts work done towards a total and reports rate and ETA, throttled to `every_s` seconds."""

  def __init__(self, total: int | None, what: str, unit: str = "", every_s: float = 5.0,
               log: Callable[[str], None] | None = None, clock: Callable[[], float] = time.monotonic):
    self.total = total
    self.what = what
    self.unit = f" {unit}" if unit else ""
    self.every_s = every_s
    self.log = log or _log_info
    self.clock = clock
    self.done = 0
    self.start = clock()
    self._last_line = self.start

  @property
  def elapsed(self) -> float:
    return self.clock() - self.start

  def rate(self) -> float:
    """Units per second since the start (0 before any time has passed)."""
    elapsed = self.elapsed
    return self.done / elapsed if elapsed > 0 else 0.0

  def eta(self) -> float | None:
    """Seconds left at the average rate so far; None without a total or before any work."""
    rate = self.rate()
    if self.total is None or rate <= 0:
      return None
    return max(0.0, (self.total - self.done) / rate)

  def line(self) -> str:
    """'what: done/total unit (pct%), rate/s, ETA t' (parts without data are left out)."""
    text = f"{self.what}: {self.done:,}"
    if self.total is not None:
      text += f"/{self.total:,}{self.unit}"
      if self.total > 0:
        text += f" ({100.0 * self.done / self.total:.1f}%)"
    else:
      text += self.unit
    rate = self.rate()
    if rate > 0:
      text += f", {_rate_text(rate)}/s"
    eta = self.eta()
    if eta is not None:
      text += f", ETA {format_duration(eta)}"
    return text

  def update(self, done: int) -> str | None:
    """Sets the count; logs and returns a line when `every_s` seconds passed since the last one."""
    self.done = done
    now = self.clock()
    if now - self._last_line < self.every_s:
      return None
    self._last_line = now
    text = self.line()
    self.log(text)
    return text

  def advance(self, n: int = 1) -> str | None:
    """Adds `n` to the count (see `update`)."""
    return self.update(self.done + n)

  def finish(self) -> str:
    """Logs and returns the closing line: the count, the wall time and the average rate."""
    text = f"{self.what}: {self.done:,}"
    if self.total is not None:
      text += f"/{self.total:,}"
    text += f"{self.unit} in {format_duration(self.elapsed)}"
    rate = self.rate()
    if rate > 0:
      text += f" ({_rate_text(rate)}/s)"
    self.log(text)
    return text


def track(items: Iterable[T], total: int | None, what: str, unit: str = "", every_s: float = 5.0,
          log: Callable[[str], None] | None = None) -> Iterator[T]:
  """Yields `items`, reporting progress every `every_s` seconds and a closing line at the end."""
  bar = Progress(total, what, unit, every_s=every_s, log=log)
  for item in items:
    yield item
    bar.advance()
  bar.finish()
