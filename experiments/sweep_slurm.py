"""A SLURM job array for a sweep: array task k runs member k, with the command a local run uses."""

from __future__ import annotations

import shlex
from typing import Iterable, Sequence

from experiments.sweep_plan import REPO, Job


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
