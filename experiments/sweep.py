"""Runs a sweep: one training run per member, each in its own workdir.

  python -m experiments.sweep experiments/sweeps/alexnet_ablations.py [--dry_run]
      [--parallel=N] [--slurm=<out.sh>] [--workdir_root=runs/sweeps] [--args=data=<folder>,res=64]
      [--seeds=0,1,2]

A sweep definition is a small Python file with
  BASE      the config file and its arguments, e.g. 'configs/alexnet.py:smoke'
  MEMBERS   a list of `Member`s (made with `member(...)` / `product(...)` below): config-string
            arguments added to BASE's and/or `--config.<field>=<value>` overrides
  BASELINE  (optional) the member the aggregate table compares with; default: the first
  PAPER     (optional) member name → the paper's reported effect, for the table

`--seeds=0,1,2` runs every member once per seed, as members named `<member>-seed=<k>` (all
members of the first seed first, so a sweep cut short has whole seeds); experiments/aggregate.py
reports each member's mean and standard deviation over its seeds.

Each member runs `python main.py --config=<file>:<args> --workdir=<root>/<sweep>/<member>
[--config.x=y ...]` as a subprocess, so a crash in one member never takes the others down and
every member is exactly the command a user would type. A member whose summary.json says
"done" is skipped; an interrupted one is started again with the same command and main.py
resumes it from its latest checkpoint. While members run, a status line per member (its step,
rate and ETA, read from its log) is printed every 30 s. The sweep's plan (members, commands) is written to
<root>/<sweep>/sweep.json, which experiments/aggregate.py reads.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import itertools
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from concurrent import futures
from typing import Any, Callable, Iterable, Mapping, Sequence

from alexnet_jax import progress

from alexnet_jax.jsonl import read_summary

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MAIN = os.path.join(REPO, "main.py")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


class SweepError(Exception):
  """A sweep definition or command line the user has to fix."""


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a sweep: its folder name, config-string arguments and field overrides."""

  name: str
  args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Sweep:
  name: str
  base: str
  members: tuple[Member, ...]
  baseline: str
  paper: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Job:
  """A member made concrete: where it runs and the exact command."""

  member: Member
  workdir: str
  argv: tuple[str, ...]

  @property
  def command(self) -> str:
    return shlex.join(self.argv)


# ---------------------------------------------------------------------------------------------
# Building members (used by the sweep definition files).


def _value_text(value: Any) -> str:
  if isinstance(value, bool):
    return "True" if value else "False"
  return str(value)


def default_name(args: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> str:
  """A readable, folder-safe name from the arguments, e.g. 'lrn=False-towers=1'."""
  parts = [f"{k}={_value_text(v)}" for k, v in (args or {}).items()]
  parts += [f"{k.rsplit('.', 1)[-1]}={_value_text(v)}" for k, v in (overrides or {}).items()]
  if not parts:
    return "baseline"
  return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "-".join(parts))[:100]


def member(name: str | None = None, args: Mapping[str, Any] | None = None,
           overrides: Mapping[str, Any] | None = None) -> Member:
  """A member; without a name it is named after its arguments.

  `overrides` keys are config fields with or without the leading 'config.'
  (e.g. {'schedule.base_lr': 0.02}).
  """
  overrides = {k.removeprefix("config."): v for k, v in (overrides or {}).items()}
  return Member(name or default_name(args, overrides), dict(args or {}), overrides)


def product(prefix: str = "", overrides: Mapping[str, Sequence[Any]] | None = None,
            **options: Sequence[Any]) -> list[Member]:
  """Every combination of the given argument (and override) values, one member each.

  product(lrn=[True, False], towers=[1, 2]) gives four members named 'lrn=True-towers=1', ….
  """
  arg_keys, over_keys = list(options), list(overrides or {})
  value_lists = [list(options[k]) for k in arg_keys] + [list((overrides or {})[k]) for k in over_keys]
  for key, values in zip(arg_keys + over_keys, value_lists):
    if not values:
      raise SweepError(f"product(): option {key!r} has no values; give at least one.")
  out = []
  for combo in itertools.product(*value_lists):
    args = dict(zip(arg_keys, combo[:len(arg_keys)]))
    over = dict(zip(over_keys, combo[len(arg_keys):]))
    name = default_name(args, over)
    out.append(member(f"{prefix}{name}" if prefix else name, args, over))
  return out


SEED_SUFFIX = re.compile(r"-seed=(\d+)$")


def member_group(name: str) -> tuple[str, int | None]:
  """'lrn_off-seed=2' → ('lrn_off', 2); a name without a seed suffix → (name, None)."""
  m = SEED_SUFFIX.search(name)
  return (name[:m.start()], int(m.group(1))) if m else (name, None)


def with_seeds(sweep: "Sweep", seeds: Sequence[int]) -> "Sweep":
  """Every member once per seed (seed-major order), named `<member>-seed=<k>`."""
  if not seeds:
    return sweep
  for m in sweep.members:
    if "seed" in m.args:
      raise SweepError(f"member {m.name!r} sets seed= itself; drop it or drop --seeds.")
  members = tuple(Member(f"{m.name}-seed={s}", {**m.args, "seed": s}, dict(m.overrides))
                  for s in seeds for m in sweep.members)
  return dataclasses.replace(sweep, members=members)


# ---------------------------------------------------------------------------------------------
# Loading and expanding a sweep.


def split_config(spec: str) -> tuple[str, dict[str, str | None]]:
  """'configs/x.py:a=1,smoke' → ('configs/x.py', {'a': '1', 'smoke': None}) (None: a bare flag)."""
  path, _, arg = spec.partition(":")
  args: dict[str, str | None] = {}
  for item in filter(None, (s.strip() for s in arg.split(","))):
    key, eq, value = item.partition("=")
    args[key.strip()] = value.strip() if eq else None
  return path, args


def join_config(path: str, args: Mapping[str, Any]) -> str:
  """The inverse of `split_config`; a True/None value is written as a bare flag."""
  items = [k if v is None or v is True else f"{k}={_value_text(v)}" for k, v in args.items()]
  return f"{path}:{','.join(items)}" if items else path


def _looks_like_member(m: Any) -> bool:
  return all(hasattr(m, a) for a in ("name", "args", "overrides"))


def load_sweep(path: str) -> Sweep:
  """Imports a sweep definition file and checks it."""
  if not os.path.isfile(path):
    raise SweepError(f"Sweep definition {path!r} does not exist; pass a file such as "
                     f"experiments/sweeps/demo.py.")
  name = os.path.splitext(os.path.basename(path))[0]
  if REPO not in sys.path:
    sys.path.insert(0, REPO)  # definitions import `experiments.sweep`
  spec = importlib.util.spec_from_file_location(f"_sweep_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for attr in ("BASE", "MEMBERS"):
    if not hasattr(module, attr):
      raise SweepError(f"{path} defines no {attr}; a sweep file needs BASE = 'configs/<family>.py:<args>' "
                       f"and MEMBERS = [member(...), ...].")
  # Rebuilt as this module's Member: under `python -m`, the definition's import of
  # experiments.sweep is a second copy of this module with its own class.
  members = tuple(Member(m.name, dict(m.args), dict(m.overrides)) if _looks_like_member(m) else m
                  for m in module.MEMBERS)
  if not members:
    raise SweepError(f"{path}: MEMBERS is empty; list at least one member.")
  seen: set[str] = set()
  for m in members:
    if not isinstance(m, Member):
      raise SweepError(f"{path}: MEMBERS holds {m!r}; build members with sweep.member(...) or sweep.product(...).")
    if not _NAME_RE.match(m.name):
      raise SweepError(f"{path}: member name {m.name!r} is not folder-safe; use letters, digits and _ . = + -.")
    if m.name in seen:
      raise SweepError(f"{path}: two members are called {m.name!r}; give them distinct names.")
    seen.add(m.name)
  baseline = getattr(module, "BASELINE", members[0].name)
  if baseline not in seen:
    raise SweepError(f"{path}: BASELINE={baseline!r} is not a member; choose one of {sorted(seen)}.")
  config_path, _ = split_config(module.BASE)
  if not os.path.isfile(config_path) and not os.path.isfile(os.path.join(REPO, config_path)):
    raise SweepError(f"{path}: BASE config file {config_path!r} does not exist.")
  return Sweep(name=name, base=module.BASE, members=members, baseline=baseline,
               paper=dict(getattr(module, "PAPER", {})))


def expand(sweep: Sweep, root: str, extra_args: str = "", main: str = DEFAULT_MAIN,
           python: str = sys.executable, extra_overrides: Sequence[str] = ()) -> list[Job]:
  """The concrete command and workdir of every member.

  Arguments combine left to right, later ones winning: BASE's, the member's, then `extra_args`
  (a config-string fragment such as 'data=/data/imagenette,res=64' for the whole sweep).
  `extra_overrides` ('field=value', e.g. 'log_every_steps=13') are added to every member's
  `--config.<field>` overrides, after the member's own.
  """
  sweep_overrides = {}
  for item in extra_overrides:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
      raise SweepError(f"--set expects field=value (e.g. --set=log_every_steps=13), got {item!r}.")
    sweep_overrides[key.strip().removeprefix("config.")] = value.strip()
  path, base_args = split_config(sweep.base)
  _, extra = split_config(":" + extra_args)
  jobs = []
  for m in sweep.members:
    args = {**base_args, **{k: _value_text(v) if not isinstance(v, bool) or not v else True
                           for k, v in m.args.items()}, **extra}
    workdir = os.path.join(root, sweep.name, m.name)
    argv = [python, main, f"--config={join_config(path, args)}", f"--workdir={workdir}"]
    overrides = {**m.overrides, **sweep_overrides}
    argv += [f"--config.{k}={_value_text(v)}" for k, v in overrides.items()]
    jobs.append(Job(m, workdir, tuple(argv)))
  return jobs


# ---------------------------------------------------------------------------------------------
# Running.


def member_state(workdir: str) -> str:
  """'done' (finished), 'partial' (started: resumes from its checkpoint) or 'new'."""
  summary = read_summary(workdir)
  if summary and summary.get("done"):
    return "done"
  if summary is not None or os.path.isdir(os.path.join(workdir, "checkpoints")) or os.path.exists(os.path.join(workdir, "metrics.jsonl")):
    return "partial"
  return "new"


def write_plan(sweep: Sweep, root: str, jobs: Sequence[Job]) -> str:
  """<root>/<sweep>/sweep.json: what aggregate.py needs to label and compare the members."""
  folder = os.path.join(root, sweep.name)
  os.makedirs(folder, exist_ok=True)
  plan = {
      "sweep": sweep.name, "base": sweep.base, "baseline": sweep.baseline,
      "members": [{"name": j.member.name, "group": member_group(j.member.name)[0],
                   "seed": member_group(j.member.name)[1],
                   "args": {k: _value_text(v) for k, v in j.member.args.items()},
                   "overrides": {k: _value_text(v) for k, v in j.member.overrides.items()},
                   "command": j.command, "paper": sweep.paper.get(member_group(j.member.name)[0])}
                  for j in jobs],
  }
  path = os.path.join(folder, "sweep.json")
  with open(path, "w") as f:
    json.dump(plan, f, indent=2)
  return path


def _cpu_shares(parallel: int) -> list[set[int]]:
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


def _forward_stop(signum, frame) -> None:
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
                            start_new_session=True)  # Ctrl-C reaches members once, via _forward_stop
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
  shares = _cpu_shares(parallel) if pin_cpus else [None] * max(1, parallel)
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


# ---------------------------------------------------------------------------------------------
# SLURM.


def slurm_script(jobs: Sequence[Job], sweep_name: str, log_dir: str, partition: str = "",
                 gpus: int = 0, cpus: int = 8, mem: str = "32G", time_limit: str = "24:00:00",
                 extra_sbatch: Iterable[str] = ()) -> str:
  """A SLURM job-array script: array task k runs member k (same commands as a local run)."""
  lines = ["#!/bin/bash", f"#SBATCH --job-name={sweep_name}", f"#SBATCH --array=0-{len(jobs) - 1}",
           f"#SBATCH --cpus-per-task={cpus}", f"#SBATCH --mem={mem}", f"#SBATCH --time={time_limit}",
           f"#SBATCH --output={log_dir}/%a-%A.out"]
  if partition:
    lines.append(f"#SBATCH --partition={partition}")
  if gpus:
    lines.append(f"#SBATCH --gpus={gpus}")
  lines += [f"#SBATCH {s}" for s in extra_sbatch]
  lines += ["", "# One member per array task. Re-submitting skips nothing by itself, but main.py resumes",
            "# a member from its checkpoint and returns at once for a finished one.", "set -euo pipefail",
            f"cd {shlex.quote(REPO)}", "COMMANDS=("]
  lines += [f"  {shlex.quote(j.command)}  # {k}: {j.member.name}" for k, j in enumerate(jobs)]
  lines += [")", 'echo "member ${SLURM_ARRAY_TASK_ID}: ${COMMANDS[$SLURM_ARRAY_TASK_ID]}"',
            'eval "${COMMANDS[$SLURM_ARRAY_TASK_ID]}"', ""]
  return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Command line.


def parse_flags(argv: Sequence[str]) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m experiments.sweep", description=__doc__.split("\n")[0])
  p.add_argument("sweep", help="sweep definition file, e.g. experiments/sweeps/demo.py")
  p.add_argument("--workdir_root", default="runs/sweeps", help="members run in <root>/<sweep>/<member>")
  p.add_argument("--args", default="", help="config-string arguments added to every member, e.g. data=<folder>,res=64")
  p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                 help="a --config.<field>=<value> override for every member (repeatable)")
  p.add_argument("--dry_run", action="store_true", help="print the commands and each member's state; run nothing")
  p.add_argument("--parallel", type=int, default=1, help="members run at once (each gets its share of the CPUs)")
  p.add_argument("--pin_cpus", choices=["auto", "yes", "no"], default="auto",
                 help="give each concurrent member its own CPUs (auto: when --parallel > 1)")
  p.add_argument("--seeds", default="", help="comma-separated seeds: every member runs once per seed")
  p.add_argument("--only", default="", help="comma-separated member names to run (default: all); "
                 "with --seeds a name without its seed suffix selects every seed")
  p.add_argument("--aggregate", choices=["yes", "no"], default="yes",
                 help="write the results table and plots when every member is done")
  p.add_argument("--main", default=DEFAULT_MAIN, help=argparse.SUPPRESS)  # the entry point (tests use a fake)
  p.add_argument("--slurm", default="", help="write a SLURM job-array script to this file instead of running")
  p.add_argument("--slurm_partition", default="")
  p.add_argument("--slurm_gpus", type=int, default=0)
  p.add_argument("--slurm_cpus", type=int, default=8)
  p.add_argument("--slurm_mem", default="32G")
  p.add_argument("--slurm_time", default="24:00:00")
  flags = p.parse_args(argv)
  if flags.parallel < 1:
    p.error(f"--parallel must be at least 1, got {flags.parallel}.")
  return flags


def main(argv: Sequence[str] | None = None) -> int:
  flags = parse_flags(sys.argv[1:] if argv is None else argv)
  try:
    sweep = load_sweep(flags.sweep)
  except SweepError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  root = os.path.abspath(flags.workdir_root)
  try:
    seeds = [int(x) for x in flags.seeds.split(",") if x.strip()]
  except ValueError:
    print(f"error: --seeds expects comma-separated integers, got {flags.seeds!r}.", file=sys.stderr)
    return 2
  try:
    sweep = with_seeds(sweep, seeds)
    jobs = expand(sweep, root, flags.args, main=flags.main, extra_overrides=flags.set)
  except SweepError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  all_jobs = jobs
  if flags.only:
    wanted = [s.strip() for s in flags.only.split(",") if s.strip()]
    unknown = sorted(set(wanted) - {j.member.name for j in jobs} - {member_group(j.member.name)[0] for j in jobs})
    if unknown:
      print(f"error: --only names unknown members {unknown}; the sweep has {[j.member.name for j in jobs]}.",
            file=sys.stderr)
      return 2
    jobs = [j for j in jobs if j.member.name in wanted or member_group(j.member.name)[0] in wanted]
  log_dir = os.path.join(root, sweep.name, "logs")
  if flags.slurm:
    os.makedirs(log_dir, exist_ok=True)  # SLURM does not create the --output folder
    with open(flags.slurm, "w") as f:
      f.write(slurm_script(jobs, sweep.name, log_dir, flags.slurm_partition, flags.slurm_gpus,
                           flags.slurm_cpus, flags.slurm_mem, flags.slurm_time))
    write_plan(sweep, root, all_jobs)
    print(f"Wrote {flags.slurm}: {len(jobs)} array tasks (0-{len(jobs) - 1}). Submit with: sbatch {flags.slurm}")
    return 0
  if flags.dry_run:
    for i, j in enumerate(jobs, 1):
      print(f"[{i}/{len(jobs)}] {j.member.name} ({member_state(j.workdir)}): {j.command}")
    return 0
  write_plan(sweep, root, all_jobs)  # every member, so a later --only run keeps the full plan
  pin = {"auto": None, "yes": True, "no": False}[flags.pin_cpus]
  previous = {sig: signal.signal(sig, _forward_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
  try:
    failed = run_sweep(jobs, flags.parallel, pin, log_dir)
  finally:
    for sig, handler in previous.items():
      signal.signal(sig, handler)
  folder = os.path.join(root, sweep.name)
  if failed:
    print(f"{failed} member(s) did not finish; see {log_dir}. Run the same command again to resume them.")
    return 1
  if flags.aggregate == "yes":
    from experiments import aggregate
    written = aggregate.aggregate(folder)
    print("Wrote " + ", ".join(written))
  return 0


if __name__ == "__main__":
  sys.exit(main())
