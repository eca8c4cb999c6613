"""`experiments.profile_step`: XLA's operations of a train step, by kind, from a profiler trace."""

import subprocess
import sys

from tests.conftest import REPO, subprocess_env


def test_profile_step_prints_the_steps_operations_by_kind():
  # A child process: XLA reads the per-operation trace flag the module sets when its backend starts.
  out = subprocess.run([sys.executable, "-m", "experiments.profile_step", "--model=cifar_cnn", "--steps=1",
                        "--top=40"], cwd=REPO, env=subprocess_env(), capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stderr[-2000:]
  lines = out.stdout.splitlines()
  assert lines[0].startswith("# cifar_cnn, batch 64, 32 px, current formulation:")
  kinds = lines[2:lines.index(next(l for l in lines if l.endswith("single operation")))]
  assert kinds and all(float(l.split()[0]) >= 0 for l in kinds)
  shares = sum(float(l.split()[1].rstrip("%")) for l in kinds)
  assert 95 < shares <= 100.5  # --top=40 lists every kind of this small step
  assert any("fusion" in l.split()[-1] for l in kinds)  # compiled operations, by their HLO names
