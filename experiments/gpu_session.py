"""One block of GPU time, prepared: a plan's runs in priority order inside a wall-clock budget, resumable.

  python -m experiments.gpu_session --plan=leaderboard --out=$OUT --budget_s=540
  python -m experiments.gpu_session --plan=leaderboard --status     # what is done and what is left

docs/GPU.md says which plan to run first, the exact command, and what data to bring. Plans
(several, comma-separated, run in the order given):
  speed        the train-step benchmark with its end-to-end rows (experiments/gpu_bench.py)
  leaderboard  configs/imagenette.py at 128 px: 5 seeds × 5 epochs first, then 20 epochs
  ablations    the paper's comparisons (experiments/sweeps/alexnet_paper.py), seeds 0-4
  tiny         a few steps of a small net on the embedded data: what CI runs on the CPU

One call, until its deadline (start + --budget_s, less the time to stop and bundle):
 1. prepares each sweep's store once (`main.py --mode=prepare`);
 2. compiles first: a program that several runs of the first wave would compile (one sweep
    member: its seeds share it) is compiled by one run alone, stopped at its first evaluation, so
    the crowd loads it from JAX's persistent compilation cache; the first one is compiled on a
    cold and then a warm cache, and XLA's seconds of each go to compile_cache_<plan>.json;
 3. runs the crowd (`parallel` at once), highest priority first;
 4. at the deadline (or on SIGTERM) asks every run still going to save and stop, then kills;
 5. writes status.json (every run: done / imported / partial / new) and, into <out>, the records
    archive records-<plans>.tar.gz (experiments/campaign.py) and status-<plans>.json.

Running it again resumes: a run whose record says done, in the runs root or already imported into
experiments/results/, is skipped; a stopped one resumes from its checkpoint; a program already
compiled alone is not compiled alone again.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time

from alexnet_jax import jsonl
from experiments import campaign
from experiments import gpu_pack
from experiments import sweep as sweep_lib

REPO = campaign.REPO
GRACE_S = 30.0       # a stopped run's time to save its checkpoint before it is killed
RESERVE_S = 20.0     # kept after the grace period for status and bundling
say = campaign.say
COMPILE_RECORD = ("seconds from process start to the first logged step and to the first evaluation, and XLA's "
                  "compile (or cache load) seconds per program, of one run alone on a cold, then a warm cache")
# A run compiled alone: the crowd's config (so the same programs) with a log and an evaluation every step.
WARM_FLAGS = ("--config.log_every_steps=1", "--config.eval_every_epochs=1e-9",
              "--config.checkpoint_every_steps=100000000")


@dataclasses.dataclass(frozen=True)
class SweepStep:
  sweep: str                      # sweep definition file
  study: str                      # its records go to experiments/results/<study>/runs/
  seeds: tuple[int, ...]
  args: str                       # config-string arguments; {data} is the --data folder
  sets: tuple[str, ...] = ()      # --config.<field>=<value> for every run
  parallel: int = 4
  warm_parallel: int = 1          # programs compiled alone at the same time
  probe: bool = True              # measure the first program's compile on a cold and a warm cache
  member_major: bool = False      # run every seed of a member before the next member


@dataclasses.dataclass(frozen=True)
class CommandStep:
  name: str
  argv: tuple[str, ...]           # after `python`; {budget_s} and {root} are filled in
  outputs: tuple[tuple[str, str], ...] = ()  # (path under experiments/results/, file under {root})
  budget_s: float = 300.0


PLANS: dict[str, tuple] = {
    "speed": (CommandStep("gpu_bench", ("-m", "experiments.gpu_bench", "--budget_s={budget_s}",
                                        "--json={root}/benchmarks/gpu_step.json"),
                          (("benchmarks/gpu_step.json", "benchmarks/gpu_step.json"),), budget_s=420.0),),
    "leaderboard": (SweepStep("experiments/sweeps/imagenette_leaderboard.py", "imagenette_leaderboard",
                              (0, 1, 2, 3, 4), "bf16,data={data}/imagenette", parallel=6, member_major=True),),
    "ablations": (SweepStep("experiments/sweeps/alexnet_paper.py", "alexnet_paper", (0, 1, 2, 3, 4),
                            "res=112,bf16,data={data}/imagenette", ("input.pipeline=store",), parallel=12,
                            warm_parallel=4),),
    "tiny": (SweepStep("experiments/sweeps/tiny.py", "tiny", (0, 1), "data=embedded", parallel=2,
                       probe=False, member_major=True),),
}


class Session:
  """The runs root, the deadline, the children's environment and the status of every step."""

  def __init__(self, root: str, data: str, budget_s: float, main: str = "main.py", results: str = ""):
    self.root, self.data, self.main = root, data, main
    self.results = results or os.path.join(REPO, campaign.PREFIX)  # records already imported
    self.start = time.time()
    self.end = self.start + budget_s - RESERVE_S
    self.deadline = self.end - GRACE_S  # when running work is asked to stop
    self.status: dict = {"steps": {}, "compile": {}}
    self.env = gpu_pack.child_env(root)
    os.makedirs(self.path("jax_cache"), exist_ok=True)

  def left(self) -> float:
    return self.deadline - time.time()

  def path(self, *parts: str) -> str:
    return os.path.join(self.root, *parts)

  def start_proc(self, argv: list[str], log: str) -> subprocess.Popen:
    os.makedirs(os.path.dirname(log), exist_ok=True)
    with open(log, "a") as f:
      f.write(f"# {time.strftime('%Y-%m-%d %H:%M:%S')} {campaign.public(shlex.join(argv))}\n")
      f.flush()
      return subprocess.Popen(argv, cwd=REPO, stdout=f, stderr=subprocess.STDOUT, env=self.env,
                              start_new_session=True)

  def stop(self, procs: list[subprocess.Popen]) -> None:
    """SIGTERM (the run saves and exits), then SIGKILL to the process group after the grace period."""
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGTERM)
    until = min(time.time() + GRACE_S, self.end)
    while any(p.poll() is None for p in procs) and time.time() < until:
      time.sleep(0.2)
    for p in procs:
      kill(p)

  def run_until(self, argv: list[str], log: str, limit_s: float) -> tuple[int | None, float]:
    t0 = time.time()
    proc = self.start_proc(argv, log)
    while proc.poll() is None and time.time() - t0 < limit_s:
      time.sleep(0.2)
    if proc.poll() is None:
      self.stop([proc])
    return proc.returncode, time.time() - t0

  def jobs(self, step: SweepStep) -> tuple[sweep_lib.Sweep, list[sweep_lib.Job]]:
    sw = sweep_lib.with_seeds(sweep_lib.load_sweep(os.path.join(REPO, step.sweep)), step.seeds)
    jobs = sweep_lib.expand(sw, self.path("runs"), step.args.format(data=self.data), main=self.main,
                            extra_overrides=step.sets)
    if step.member_major:  # with_seeds lists the members in order for every seed
      order = [sweep_lib.member_group(j.member.name)[0] for j in jobs]
      jobs.sort(key=lambda j: (order.index(sweep_lib.member_group(j.member.name)[0]), j.member.args["seed"]))
    sweep_lib.write_plan(sw, self.path("runs"), jobs)
    return sw, jobs

  def run_command(self, step: CommandStep) -> dict:
    record = self.status["steps"].setdefault(step.name, {"state": "not started"})
    if all(os.path.isfile(self.path(p)) for _, p in step.outputs):
      record["state"] = "done"  # by an earlier call
    if record["state"] == "done" or self.left() < 30:
      return record
    budget = int(min(step.budget_s, self.left()))
    argv = [sys.executable, *(a.format(budget_s=budget, root=self.root) for a in step.argv)]
    say(f"{step.name}: {campaign.public(shlex.join(argv))}")
    rc, wall = self.run_until(argv, self.path("logs", f"{step.name}.log"), budget + GRACE_S)
    outputs = all(os.path.isfile(self.path(p)) for _, p in step.outputs)
    record.update(state="done" if rc == 0 and outputs else f"stopped (exit {rc})", wall_s=round(wall, 1))
    say(f"{step.name}: {record['state']} in {wall:.0f} s")
    return record

  def prepare(self, job: sweep_lib.Job) -> None:
    argv = [a for a in job.argv if not a.startswith("--workdir=")] + ["--mode=prepare"]
    rc, wall = self.run_until(argv, self.path("logs", "prepare.log"), self.left())
    say(f"prepare (exit {rc}, {wall:.0f} s): {campaign.public(shlex.join(argv))}")

  def warm(self, step: SweepStep, sw: sweep_lib.Sweep, todo: list[sweep_lib.Job]) -> None:
    """Compiles alone each program that more than one run of the first wave would compile."""
    groups: dict[str, list[sweep_lib.Job]] = {}
    for job in todo[:step.parallel]:
      groups.setdefault(sweep_lib.member_group(job.member.name)[0], []).append(job)
    compiled = self.status["compile"].setdefault(sw.name, {})
    marker = lambda g: self.path("jax_cache", f".compiled-{sw.name}-{g}.json")  # noqa: E731
    wanted = [(g, js[0]) for g, js in groups.items() if len(js) > 1 and not os.path.exists(marker(g))]
    probe = step.probe and not compiled
    while wanted and self.left() > 0:
      # Programs of one batch differ, so they compile side by side; the probed one compiles alone.
      n = 1 if probe else step.warm_parallel
      batch, wanted = wanted[:n], wanted[n:]
      results = self._warm_batch(sw.name, [(g, j, "cold") for g, j in batch])
      for group, _ in batch:
        compiled[group] = {"cold": results[group]}
      if probe and self.left() > 0:
        group, job = batch[0]
        compiled[group]["warm"] = self._warm_batch(sw.name, [(group, job, "warm")])[group]
      probe = False
      for group, _ in batch:
        if "first_eval_s" in compiled[group]["cold"]:
          with open(marker(group), "w") as f:
            json.dump(compiled[group], f)
    self.write_status()

  def _warm_batch(self, sweep_name: str, items: list) -> dict[str, dict]:
    """Runs each (group, job, cache kind) in a scratch folder until its first evaluation is logged."""
    procs, out = {}, {}
    for group, job, kind in items:
      workdir = self.path("warm", sweep_name, f"{group}-{kind}")
      shutil.rmtree(workdir, ignore_errors=True)
      replaced = ("--workdir=", *(f.partition("=")[0] + "=" for f in WARM_FLAGS))
      argv = [x for x in job.argv if not x.startswith(replaced)] + [f"--workdir={workdir}", *WARM_FLAGS]
      log = workdir + ".log"
      say(f"compile alone ({kind} cache): {group}")
      procs[group] = (self.start_proc(argv, log), time.time(), workdir, log)
    times: dict[str, dict] = {g: {} for g in procs}
    while self.left() > 0:
      for group, (p, t0, workdir, _) in procs.items():
        for row in jsonl.read(os.path.join(workdir, "metrics.jsonl")):
          if "train/loss" in row:
            times[group].setdefault("first_step_s", round(time.time() - t0, 1))
          if any(k.startswith("eval/") for k in row):
            times[group].setdefault("first_eval_s", round(time.time() - t0, 1))
      if all(p.poll() is not None or "first_eval_s" in times[g] for g, (p, *_) in procs.items()):
        break
      time.sleep(0.5)
    for group, (p, t0, _, log) in procs.items():
      kill(p)  # a scratch run: its programs are in the cache, nothing to save
      out[group] = {**times[group], "exit": p.returncode, "compile_s": campaign.compile_seconds(log)}
      say(f"compiled {group}: {out[group]}")
    return out

  def run_sweep(self, step: SweepStep, run: bool = True) -> dict:
    """Runs the step's unfinished runs (with `run`) and records every run's state."""
    sw, jobs = self.jobs(step)
    record = self.status["steps"].setdefault(sw.name, {"study": step.study})
    todo = [j for j in jobs if self.state(j, step.study) not in ("done", "imported")]
    if todo and run and self.left() > 0:
      self.prepare(todo[0])
      self.warm(step, sw, todo)
      self.crowd(step, todo)
    record["runs"] = {j.member.name: self.state(j, step.study) for j in jobs}
    record["unfinished"] = [n for n, s in record["runs"].items() if s not in ("done", "imported")]
    self.write_status()
    return record

  def crowd(self, step: SweepStep, todo: list[sweep_lib.Job]) -> None:
    queue, live = list(todo), {}
    while (queue or live) and self.left() > 0:
      while queue and len(live) < step.parallel and self.left() > 0:
        job = queue.pop(0)
        say(f"{job.member.name}: {self.state(job, step.study)} → start")
        live[job.member.name] = (job, self.start_proc(list(job.argv), log_of(job)), time.time())
      for name, (job, p, t0) in list(live.items()):
        if p.poll() is not None:
          self.record_process(job, p.returncode, t0)
          say(f"{name}: exit {p.returncode}, {self.state(job, step.study)}, {time.time() - t0:.0f} s")
          del live[name]
      time.sleep(0.5)
    if live:
      say(f"deadline: stopping {len(live)} run(s)")
      self.stop([p for _, p, _ in live.values()])
      for job, p, t0 in live.values():
        self.record_process(job, p.returncode, t0)

  def record_process(self, job: sweep_lib.Job, rc: int | None, t0: float) -> None:
    """This process (start, wall s, exit) into the run's machine.json, with its command and compile seconds."""
    path, log = os.path.join(job.workdir, "machine.json"), log_of(job)
    procs = campaign._read_json(path).get("processes", []) + [  # noqa: SLF001 - the bundle's reader
        {"started": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t0)), "wall_s": round(time.time() - t0, 1),
         "exit": rc}]
    os.makedirs(job.workdir, exist_ok=True)
    with open(path, "w") as f:
      json.dump({"command": campaign.public(job.command), "processes": procs,
                 "wall_s": round(sum(p["wall_s"] for p in procs), 1), "compile_s": campaign.compile_seconds(log)},
                f, indent=2)

  def state(self, job: sweep_lib.Job, study: str) -> str:
    """done | imported (its record is already in experiments/results/) | partial | new."""
    state = sweep_lib.member_state(job.workdir)
    if state != "done" and (jsonl.read_summary(os.path.join(self.results, study, "runs", job.member.name))
                            or {}).get("done"):
      return "imported"
    return state

  def write_status(self) -> None:
    self.status["elapsed_s"] = round(time.time() - self.start, 1)
    with open(self.path("status.json"), "w") as f:
      json.dump(self.status, f, indent=2)


def kill(p: subprocess.Popen) -> None:
  """SIGKILL to the process group of `p` (a run and any workers it started) unless it has exited."""
  if p.poll() is None:
    with contextlib.suppress(ProcessLookupError):
      os.killpg(p.pid, signal.SIGKILL)
  p.wait()


def log_of(job: sweep_lib.Job) -> str:
  return os.path.join(os.path.dirname(job.workdir), "logs", f"{job.member.name}.log")


def steps_of(plans: list[str]) -> list:
  return [step for name in plans for step in PLANS[name]]


def show_status(session: Session, plans: list[str]) -> None:
  """Every run of the plans and its state; nothing is run."""
  for step in steps_of(plans):
    if isinstance(step, CommandStep):
      there = all(os.path.isfile(session.path(p)) for _, p in step.outputs)
      print(f"{step.name}: {'done' if there else 'not done'}")
      continue
    record = session.run_sweep(step, run=False)
    runs, left = record["runs"], record["unfinished"]
    print(f"{step.study}: {len(runs) - len(left)} of {len(runs)} runs done; unfinished: {', '.join(left) or 'none'}\n"
          + "\n".join(f"  {name}: {state}" for name, state in runs.items()))


def finish(session: Session, plans: list[str], out: str) -> str:
  """status.json, the compile record and the records archive, copied into `out`."""
  tag = "-".join(plans)
  session.status.update(plans=plans, deadline_hit=time.time() >= session.deadline,
                        unfinished={k: v["unfinished"] if "runs" in v else ([] if v.get("state") == "done" else [k])
                                    for k, v in session.status["steps"].items()})
  session.write_status()
  machine = campaign.machine_record(shlex.join(["python", "-m", "experiments.gpu_session", *sys.argv[1:]]))
  extra = {arc: session.path(p) for step in steps_of(plans) if isinstance(step, CommandStep) for arc, p in step.outputs}
  if session.status["compile"]:
    record = session.path("benchmarks", f"compile_cache_{tag}.json")
    os.makedirs(os.path.dirname(record), exist_ok=True)
    with open(record, "w") as f:
      json.dump({"machine": machine, "what": COMPILE_RECORD, "programs": session.status["compile"]}, f, indent=2)
    extra[f"benchmarks/compile_cache_{tag}.json"] = record
  studies = {os.path.splitext(os.path.basename(s.sweep))[0]: s.study
             for s in steps_of(plans) if isinstance(s, SweepStep)}
  os.makedirs(out, exist_ok=True)
  archive = os.path.join(out, f"records-{tag}.tar.gz")
  campaign.bundle(session.path("runs"), archive, machine, studies, extra)
  shutil.copyfile(session.path("status.json"), os.path.join(out, f"status-{tag}.json"))
  return archive


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.gpu_session", description=__doc__.split("\n")[0])
  p.add_argument("--plan", default="leaderboard", help=f"comma-separated, run in order: {', '.join(PLANS)}")
  p.add_argument("--budget_s", type=float, default=540.0,
                 help="wall seconds for this call, stopping and bundling included (one device command may run 600)")
  p.add_argument("--out", default=os.environ.get("OUT", ""), help="where the records archive and status go "
                 "(default $OUT, else <root>/out)")
  p.add_argument("--root", default="runs/gpu", help="runs, compilation cache, stores and logs (git-ignored)")
  p.add_argument("--data", default=".data", help="the folder holding imagenette/ (docs/GPU.md)")
  p.add_argument("--status", action="store_true", help="print every run's state and what is unfinished; run nothing")
  p.add_argument("--main", default="main.py", help=argparse.SUPPRESS)  # the entry point (tests use a fake)
  p.add_argument("--results", default="", help=argparse.SUPPRESS)  # experiments/results/ (tests use another)
  a = p.parse_args(argv)
  plans = [x for x in a.plan.split(",") if x]
  unknown = [x for x in plans if x not in PLANS]
  if unknown or not plans:
    print(f"error: unknown plan(s) {unknown}; choose from {', '.join(PLANS)}.", file=sys.stderr)
    return 2
  if a.budget_s < RESERVE_S + GRACE_S + 10:
    print(f"error: --budget_s={a.budget_s:g} leaves no time to run; give at least {RESERVE_S + GRACE_S + 10:g}.",
          file=sys.stderr)
    return 2
  root = os.path.abspath(a.root)
  session = Session(root, a.data, a.budget_s, main=a.main, results=a.results)
  if a.status:
    try:
      show_status(session, plans)
    except sweep_lib.SweepError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    return 0

  def hurry(signum, frame):  # stopped from outside: runs get 10 s to save, then what finished is bundled
    session.deadline, session.end = time.time(), time.time() + 10
  previous = signal.signal(signal.SIGTERM, hurry)
  session.status["compile"] = campaign._read_json(session.path("status.json")).get("compile", {})  # noqa: SLF001
  if any("{data}" in s.args for s in steps_of(plans) if isinstance(s, SweepStep)):
    gpu_pack.unpack(os.path.join(REPO, a.data))  # the images brought as one zip (docs/GPU.md)
  failed = []
  try:
    for step in steps_of(plans):  # a step the deadline does not reach still lists its runs
      try:
        if isinstance(step, CommandStep):
          session.run_command(step)
        else:
          session.run_sweep(step, run=session.left() > 0)
      except sweep_lib.SweepError as e:  # a broken sweep file: the other steps still run
        failed.append(str(e))
        print(f"error: {e}", file=sys.stderr)
  finally:  # whatever happened, what finished is bundled
    signal.signal(signal.SIGTERM, previous)
    try:
      archive = finish(session, plans, os.path.abspath(a.out or session.path("out")))
    except campaign.RecordsError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  left = {k: v for k, v in session.status["unfinished"].items() if v}
  say(f"done in {time.time() - session.start:.0f} s; records {campaign.public(archive)}; "
      + ("unfinished: " + "; ".join(f"{k}: {len(v)}" for k, v in left.items()) + " (run the same command again)"
         if left else "nothing unfinished"))
  return 2 if failed else 0

if __name__ == "__main__":
  sys.exit(main())
