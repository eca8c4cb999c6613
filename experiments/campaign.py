"""The converged-results campaign: prepared stores, the sweeps side by side on one accelerator, a deadline.

  python -m experiments.campaign --data=<folder holding imagenette/ and cifar10/> --root=<runs>
      --parts=leaderboard,alexnet,figure1 --deadline_s=3600 [--bundle=<results.tar.gz>]

Each part is one sweep (experiments/sweeps/), run as `python -m experiments.sweep ...` with its
own `--parallel`; the parts run at the same time, so small models share one GPU. Before any
member starts, each part's store is prepared once (`main.py --mode=prepare`). At the deadline
every sweep is asked to stop (members save a checkpoint and exit; a member stopped early keeps
its logged curve). After the sweeps: 10-crop evaluation of the AlexNet baseline runs, their
conv1 kernels and one run's parameters exported (experiments/export_params.py), and, with
`--bundle`, a .tar.gz of every run folder without checkpoints. Every step's command is printed.

Parts:
  leaderboard  experiments/sweeps/imagenette_leaderboard.py, seeds 0-2 (configs/imagenette.py)
  alexnet      experiments/sweeps/alexnet_imagenette.py, seeds 0-2, 112² crops of the 128² images
  figure1      experiments/sweeps/figure1_lr.py on CIFAR-10 (50,000 training images)
"""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import subprocess
import sys
import tarfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PARTS = {
    # name: (sweep file, config for the store, config-string args, --set overrides, data subfolder)
    "leaderboard": ("experiments/sweeps/imagenette_leaderboard.py", "configs/imagenette.py",
                    "bf16", ("log_every_steps=25",), "imagenette"),
    "alexnet": ("experiments/sweeps/alexnet_imagenette.py", "configs/alexnet.py", "res=112,bf16",
                ("input.pipeline=store", "checkpoint_every_steps=2500", "keep_checkpoints=1"), "imagenette"),
    "figure1": ("experiments/sweeps/figure1_lr.py", "configs/cifar_cnn.py", "",
                ("input.pipeline=store", "eval_every_epochs=10", "keep_checkpoints=1"), "cifar10"),
}
SEEDS = {"leaderboard": "0,1,2", "alexnet": "0,1,2", "figure1": ""}


def say(*parts) -> None:
  print(time.strftime("%H:%M:%S"), *parts, flush=True)


def run(argv: list[str], timeout: float | None = None, log: str | None = None) -> int:
  say("$", shlex.join(argv))
  out = open(log, "a") if log else None
  try:
    return subprocess.run(argv, cwd=REPO, timeout=timeout, stdout=out, stderr=subprocess.STDOUT if out else None).returncode
  except subprocess.TimeoutExpired:
    say("timed out:", shlex.join(argv))
    return 124
  finally:
    if out:
      out.close()


def config_arg(part: str, data: str, extra: str = "") -> str:
  _, cfg, args, _, sub = PARTS[part]
  return f"{cfg}:" + ",".join(filter(None, [args, f"data={os.path.join(data, sub)}", extra]))


def sweep_argv(part: str, data: str, root: str, parallel: int, extra_args: str = "",
               extra_sets: tuple[str, ...] = ()) -> list[str]:
  sweep, _, args, sets, sub = PARTS[part]
  args = ",".join(filter(None, [args, "data=" + os.path.join(data, sub), extra_args]))
  argv = [sys.executable, "-m", "experiments.sweep", sweep, f"--workdir_root={root}", f"--parallel={parallel}",
          "--pin_cpus=no", f"--args={args}"]
  argv += [f"--set={s}" for s in (*sets, *extra_sets)]
  if SEEDS[part]:
    argv.append(f"--seeds={SEEDS[part]}")
  return argv


def run_sweeps(parts: list[str], data: str, root: str, parallel: dict[str, int], deadline: float,
               extra_args: str = "", extra_sets: tuple[str, ...] = ()) -> None:
  procs = {}
  for part in parts:
    log = os.path.join(root, f"{part}.log")
    argv = sweep_argv(part, data, root, parallel.get(part, 4), extra_args, extra_sets)
    say("$", shlex.join(argv), ">", log)
    procs[part] = subprocess.Popen(argv, cwd=REPO, stdout=open(log, "a"), stderr=subprocess.STDOUT,
                                   start_new_session=True)
  while any(p.poll() is None for p in procs.values()) and time.time() < deadline:
    time.sleep(5)
  for part, p in procs.items():
    if p.poll() is None:
      say(f"deadline: stopping {part}")
      p.send_signal(signal.SIGTERM)
  grace = time.time() + 60
  while any(p.poll() is None for p in procs.values()) and time.time() < grace:
    time.sleep(1)
  for part, p in procs.items():
    if p.poll() is None:
      os.killpg(p.pid, signal.SIGKILL)
    say(f"{part}: sweep exit {p.wait()}")


def after_alexnet(data: str, root: str, out: str, deadline: float, extra_args: str = "") -> None:
  """10-crop evaluation and kernel export of the AlexNet baseline seeds, one run's parameters."""
  from experiments import sweep
  base_args = sweep.load_sweep(os.path.join(REPO, PARTS["alexnet"][0])).base.partition(":")[2]
  folder = os.path.join(root, "alexnet_imagenette")
  if not os.path.isdir(folder):
    return
  os.makedirs(out, exist_ok=True)
  for name in sorted(os.listdir(folder)):
    workdir = os.path.join(folder, name)
    if not os.path.isdir(os.path.join(workdir, "checkpoints")):
      continue
    if time.time() < deadline:
      run([sys.executable, "-m", "experiments.export_params", workdir, "--match=conv1",
           f"--out={os.path.join(out, 'conv1', name + '.npz')}"], timeout=120)
  for name in ("baseline-seed=0", "baseline-seed=1", "baseline-seed=2"):
    workdir = os.path.join(folder, name)
    if os.path.isdir(workdir) and time.time() < deadline:
      seed = name.rsplit("=", 1)[1]
      run([sys.executable, "main.py", "--mode=eval", f"--config={config_arg('alexnet', data, ','.join(filter(None, [base_args, 'seed=' + seed, extra_args])))}",
           f"--workdir={workdir}", "--protocols=center,10crop", "--config.input.pipeline=store"],
          timeout=max(10, deadline - time.time()), log=os.path.join(root, "alexnet_eval.log"))
  workdir = os.path.join(folder, "baseline-seed=0")
  if os.path.isdir(os.path.join(workdir, "checkpoints")) and time.time() < deadline:
    run([sys.executable, "-m", "experiments.export_params", workdir, "--dtype=float16",
         f"--out={os.path.join(out, 'alexnet_baseline_seed0_params.npz')}"], timeout=120)


def bundle(root: str, path: str) -> None:
  """root's run folders as a .tar.gz, without checkpoints, stores or TensorBoard event files."""
  def keep(info: tarfile.TarInfo):
    parts = info.name.split("/")
    if "checkpoints" in parts or "checkpoints_unreadable" in parts or ".lock" in parts[-1:]:
      return None
    if ".tfevents." in parts[-1] or parts[-1].endswith(".npy") or info.size > 8 << 20:
      return None  # event files, feature caches, whole-network parameter exports
    return info
  with tarfile.open(path, "w:gz") as tar:
    tar.add(root, arcname=os.path.basename(os.path.normpath(root)), filter=keep)
  say(f"bundle {path}: {os.path.getsize(path) / 1e6:.1f} MB")


def main(argv=None) -> int:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--data", required=True, help="folder holding imagenette/ and/or cifar10/")
  p.add_argument("--root", required=True, help="where the sweeps' run folders go")
  p.add_argument("--parts", default="leaderboard,alexnet,figure1")
  p.add_argument("--parallel", default="leaderboard=4,alexnet=8,figure1=4")
  p.add_argument("--deadline_s", type=float, default=3600.0, help="stop the sweeps this long after the start")
  p.add_argument("--after_s", type=float, default=60.0, help="time kept after the sweeps for evaluation and export")
  p.add_argument("--exports", default="", help="folder for exported kernels/parameters (default <root>/exports)")
  p.add_argument("--args", default="", help="config-string arguments added to every member (e.g. epochs=1 for a trial)")
  p.add_argument("--set", action="append", default=[], help="a --config.<field>=<value> for every member")
  p.add_argument("--bundle", default="", help="write the run folders (no checkpoints) to this .tar.gz")
  a = p.parse_args(argv)
  start = time.time()
  parts = [x for x in a.parts.split(",") if x]
  unknown = sorted(set(parts) - set(PARTS))
  if unknown:
    p.error(f"unknown part(s) {unknown}; choose from {', '.join(PARTS)}")
  parallel = {k: int(v) for k, v in (x.split("=") for x in a.parallel.split(",") if x)}
  os.makedirs(a.root, exist_ok=True)
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # several runs share one GPU
  os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(a.root, "jax_cache"))
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  prepared = set()
  for part in parts:
    key = (PARTS[part][4], PARTS[part][1])
    if key not in prepared:
      prepared.add(key)
      run([sys.executable, "main.py", "--mode=prepare", f"--config={config_arg(part, a.data)}"],
          log=os.path.join(a.root, "prepare.log"))
  sweep_deadline = start + a.deadline_s - (a.after_s if "alexnet" in parts else 0)
  run_sweeps(parts, a.data, a.root, parallel, sweep_deadline, a.args, tuple(a.set))
  if "alexnet" in parts:
    after_alexnet(a.data, a.root, a.exports or os.path.join(a.root, "exports"), start + a.deadline_s, a.args)
  if a.bundle:
    bundle(a.root, a.bundle)
  say(f"campaign done in {time.time() - start:.0f} s")
  return 0


if __name__ == "__main__":
  sys.exit(main())
