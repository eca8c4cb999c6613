"""Running a sweep's members on this machine, each a `python main.py ...` subprocess.

A crash in one member never takes the others down, and every member runs exactly the command a
user would type. A member whose summary.json says "done" is skipped; an interrupted one is
started again with the same command and main.py resumes it from its latest checkpoint. With
several members at once, each gets its own share of the CPUs. While members run, a status
line per member (its step, rate and ETA, read from its log) is printed every 30 s. SIGTERM or
SIGINT (`forward_stop`) starts no new member and asks the running ones to save and exit.
"""

from __future__ import annotations

import datetime
import os
import re
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any, Callable, Sequence

from alexnet_jax import progress
from alexnet_jax.jsonl import read_summary
from experiments.sweep_plan import REPO, Job


def member_state(workdir: str) -> str:
  """'done' (finished), 'partial' (started: resumes from its checkpoint) or 'new'."""
  summary = read_summary(workdir)
  if summary and summary.get("done"):
    return "done"
  if summary is not None or os.path.isdir(os.path.join(workdir, "checkpoints")) or os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return "partial"
  return "new"


def cpu_shares(parallel: int) -> list[set[int]]:
  """Splits this process's CPUs into `parallel` disjoint sets (one per concurrent member)."""
  cpus = sorted(os.sched_getaffinity(0))
  n = max(1, parallel)
  if len(cpus) < n:
    return [set(cpus)] * n
  return [set(cpus[i::n]) for i in range(n)]


def member_env(cpus: set[int] | None) -> dict[str, str]:
  """The member's environment; with a CPU share, thread pools sized to it."""
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  if cpus:
    k = str(len(cpus))
    env.update(TF_NUM_INTRAOP_THREADS=k, TF_NUM_INTEROP_THREADS=k, OMP_NUM_THREADS=k)
  return env


# Members running now, so a stop request can be passed on to them (they checkpoint and exit).
_LIVE: set[subprocess.Popen] = set()
_STOP = threading.Event()


def forward_stop(signum, frame) -> None:
  """SIGTERM/SIGINT: start no new member and ask the running ones to save and exit."""
  del frame
  _STOP.set()
  for proc in list(_LIVE):
    if proc.poll() is None:
      proc.send_signal(signum)


# The training loop's progress line in a member's log, e.g. "... 53.8% (250/465), ETA: 8m".
_STEP_RE = re.compile(rb"\((\d+)/(\d+)\)")


def member_progress(log_path: str, tracker: dict[str, Any]) -> str:
  """'step 250/465 (53.8%), 0.4/s, ETA 8m05s' from the tail of a running member's log.

  `tracker` keeps, between calls for one member, the first step seen (a resumed member starts
  part-way) and a `progress.Progress` over the steps this process has run.
  """
  try:
    with open(log_path, "rb") as f:
      f.seek(max(0, os.path.getsize(log_path) - 65536))
      matches = _STEP_RE.findall(f.read())
  except OSError:
    matches = []
  if not matches:
    return "starting up"
  step, total = (int(x) for x in matches[-1])
  if "bar" not in tracker:
    tracker["first"] = step
    tracker["bar"] = progress.Progress(max(1, total - step), "step", every_s=0, log=lambda _: None)
  bar = tracker["bar"]
  bar.total = max(1, total - tracker["first"])
  bar.update(step - tracker["first"])
  text = f"step {step}/{total} ({100.0 * step / max(1, total):.1f}%)"
  eta = bar.eta()
  if step > tracker["first"] and eta is not None:
    text += f", {bar.rate():.2f} steps/s, ETA {progress.format_duration(eta)}"
  return text


def run_job(job: Job, cpus: set[int] | None = None, log_dir: str | None = None,
            report: Callable[[str], None] | None = None, status_every_s: float = 30.0) -> tuple[str, float]:
  """Runs one member to completion; returns ('done' | 'failed (exit N)', seconds).

  With `report`, every `status_every_s` seconds it gets the member's progress (`member_progress`).
  """
  log_dir = log_dir or os.path.dirname(job.workdir)
  os.makedirs(log_dir, exist_ok=True)
  log_path = os.path.join(log_dir, f"{job.member.name}.log")
  tracker: dict[str, Any] = {}
  preexec = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
  t0 = time.time()
  with open(log_path, "a") as log:
    log.write(f"# {datetime.datetime.now().isoformat(timespec='seconds')} {job.command}\n")
    log.flush()
    proc = subprocess.Popen(list(job.argv), stdout=log, stderr=subprocess.STDOUT, cwd=REPO,
                            env=member_env(cpus), preexec_fn=preexec,
                            start_new_session=True)  # Ctrl-C reaches members once, via forward_stop
    _LIVE.add(proc)
    try:
      while True:
        try:
          rc = proc.wait(timeout=status_every_s if report else None)
          break
        except subprocess.TimeoutExpired:
          report(member_progress(log_path, tracker))
    finally:
      _LIVE.discard(proc)
  wall = time.time() - t0
  if rc != 0:
    return f"failed (exit {rc}; log {log_path})", wall
  summary = read_summary(job.workdir)
  if not (summary and summary.get("done")):
    return f"stopped before the end (log {log_path}); run again to resume", wall
  return "done", wall


def progress_line(index: int, total: int, name: str, status: str, workdir: str, wall: float | None) -> str:
  summary = read_summary(workdir) or {}
  top1 = (summary.get("eval") or {}).get("top1")
  parts = [f"[{index}/{total}] {name}: {status}"]
  if top1 is not None:
    parts.append(f"top-1 {100 * top1:.2f}%")
  run_wall = summary.get("wall_s", wall)
  if run_wall is not None:
    parts.append(f"{run_wall:.0f} s")
  return ", ".join(parts)


def run_sweep(jobs: Sequence[Job], parallel: int = 1, pin_cpus: bool | None = None,
              log_dir: str | None = None, out=None, status_every_s: float = 30.0) -> int:
  """Runs the members not yet done; returns how many failed.

  Prints a line when a member starts and ends (with the sweep's ETA from the members finished
  so far) and, every `status_every_s` seconds, one per running member with its step and ETA.
  """
  out = out or sys.stdout
  _STOP.clear()
  total = len(jobs)
  todo = []
  for i, job in enumerate(jobs, 1):
    state = member_state(job.workdir)
    if state == "done":
      print(progress_line(i, total, job.member.name, "skipped (already done)", job.workdir, None), file=out, flush=True)
    else:
      todo.append((i, job, state))
  if pin_cpus is None:
    pin_cpus = parallel > 1
  shares = cpu_shares(parallel) if pin_cpus else [None] * max(1, parallel)
  failed = 0
  members = progress.Progress(len(todo), "sweep", unit="members", every_s=0, log=lambda _: None)

  def work(slot: int, i: int, job: Job, state: str) -> tuple[int, Job, str, float]:
    verb = "resuming" if state == "partial" else "starting"
    print(f"[{i}/{total}] {job.member.name}: {verb} → {job.workdir}", file=out, flush=True)

    def report(status: str) -> None:
      print(f"[{i}/{total}] {job.member.name}: {status}", file=out, flush=True)

    status, wall = run_job(job, shares[slot % len(shares)], log_dir, report=report,
                           status_every_s=status_every_s)
    return i, job, status, wall

  with futures.ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
    # Slot k of each wave gets CPU share k; a new wave starts as slots free up.
    pending: dict[futures.Future, int] = {}
    queue = list(todo)
    free = list(range(max(1, parallel)))
    while queue or pending:
      while queue and free and not _STOP.is_set():
        slot = free.pop(0)
        i, job, state = queue.pop(0)
        pending[pool.submit(work, slot, i, job, state)] = slot
      if not pending:
        print(f"Stopped; {len(queue)} member(s) not started. Run the same command again to continue.",
              file=out, flush=True)
        failed += len(queue)
        break
      done, _ = futures.wait(pending, return_when=futures.FIRST_COMPLETED)
      for fut in done:
        free.append(pending.pop(fut))
        i, job, status, wall = fut.result()
        failed += status != "done"
        members.advance()
        line = progress_line(i, total, job.member.name, status, job.workdir, wall)
        if members.done < len(todo):
          line += f" ({members.line()})"
        print(line, file=out, flush=True)
  return failed
