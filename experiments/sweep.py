"""Runs a sweep: one training run per member, each in its own workdir.

  python -m experiments.sweep experiments/sweeps/alexnet_ablations.py [--dry_run]
      [--parallel=N] [--slurm=<out.sh>] [--workdir_root=runs/sweeps] [--args=data=<folder>,res=64]
      [--seeds=0,1,2]

A sweep definition (experiments/sweep_plan.py says what it holds) names a BASE config and its
MEMBERS, built with `member(...)` / `product(...)`, which definitions import from here.

`--seeds=0,1,2` runs every member once per seed, as members named `<member>-seed=<k>` (all
members of the first seed first, so a sweep cut short has whole seeds); experiments/aggregate.py
reports each member's mean and standard deviation over its seeds.

Each member runs `python main.py --config=<file>:<args> --workdir=<root>/<sweep>/<member>
[--config.x=y ...]` as a subprocess (experiments/sweep_run.py), or as one task of a SLURM job
array (`--slurm`, experiments/sweep_slurm.py). A member whose summary.json says "done" is
skipped; an interrupted one resumes from its latest checkpoint. The sweep's plan (members,
commands) is written to <root>/<sweep>/sweep.json, which experiments/aggregate.py reads.

This module is the command line; it also gives the sweep API its one import path
(`from experiments import sweep`: `sweep.load_sweep`, `sweep.expand`, `sweep.run_sweep`, ...).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Sequence

from alexnet_jax import atomic
from experiments.sweep_plan import (DEFAULT_MAIN, REPO, Job, Member, Sweep, SweepError, default_name, expand,
                                    join_config, load_sweep, member, member_group, product, split_config,
                                    with_seeds, write_plan)
from experiments.sweep_run import (cpu_shares, forward_stop, member_env, member_progress, member_state,
                                   progress_line, run_job, run_sweep)
from experiments.sweep_slurm import slurm_script

__all__ = ["DEFAULT_MAIN", "REPO", "Job", "Member", "Sweep", "SweepError", "cpu_shares", "default_name", "expand",
           "join_config", "load_sweep", "main", "member", "member_env", "member_group", "member_progress",
           "member_state", "product", "progress_line", "run_job", "run_sweep", "slurm_script", "split_config",
           "with_seeds", "write_plan"]


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
    atomic.write_text(flags.slurm, slurm_script(jobs, sweep.name, log_dir, flags.slurm_partition, flags.slurm_gpus,
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
  previous = {sig: signal.signal(sig, forward_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
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
