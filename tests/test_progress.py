"""progress.Progress: counts, rate, ETA and throttling, on a fake clock."""

from alexnet_jax import progress


class FakeClock:
  def __init__(self):
    self.t = 100.0

  def __call__(self):
    return self.t


def test_rate_eta_and_throttled_lines():
  clock, lines = FakeClock(), []
  bar = progress.Progress(1000, "Screening", unit="files", every_s=5.0, log=lines.append, clock=clock)
  clock.t += 2.0
  assert bar.update(100) is None and lines == []  # under 5 s since the start: no line yet
  clock.t += 3.0
  line = bar.update(250)  # 250 files in 5 s: 50/s, 750 left → 15 s
  assert line == "Screening: 250/1,000 files (25.0%), 50/s, ETA 15s" and lines == [line]
  clock.t += 1.0
  assert bar.advance(50) is None  # throttled again
  clock.t += 9.0
  bar.update(1000)
  assert bar.eta() == 0.0
  assert bar.finish() == "Screening: 1,000/1,000 files in 15s (66.7/s)"
  assert len(lines) == 3


def test_unknown_total_and_no_progress_yet():
  clock = FakeClock()
  bar = progress.Progress(None, "Reading", every_s=0.0, log=lambda _: None, clock=clock)
  assert bar.eta() is None and bar.line() == "Reading: 0"
  clock.t += 10
  bar.update(5)
  assert bar.line() == "Reading: 5, 0.5/s" and bar.eta() is None


def test_format_duration():
  assert [progress.format_duration(s) for s in (0, 59.4, 61, 3600, 3725, 90000)] == \
      ["0s", "59s", "1m01s", "1h00m", "1h02m", "1d01h"]


def test_track_yields_everything_and_closes():
  lines = []
  assert list(progress.track(range(3), 3, "Items", every_s=1e9, log=lines.append)) == [0, 1, 2]
  assert len(lines) == 1 and lines[0].startswith("Items: 3/3 in ")
