"""Raw run records in one archive in the records layout (a GPU run's, or any), and its import into the checkout.

  python -m experiments.campaign bundle <runs root> --out=<records.tar.gz> [--study=<sweep>=<study>]
  python -m experiments.campaign import <records.tar.gz>                  # back in the checkout

experiments/gpu_session.py bundles its runs itself; `bundle` is the same for runs made elsewhere
(a sweep's root, or a folder of single runs with --study=.=<study>).

Every archive holds only the files the project publishes from (see experiments/results/README.md):

  experiments/results/<study>/runs/<run>/config.json, metrics.jsonl (.gz when large), summary.json,
                                         eval*.json, machine.json
  experiments/results/<study>/runs/sweep.json         the sweep's plan (members, commands)
  experiments/results/benchmarks/<name>.json          benchmark records

No checkpoint, store, cache or TensorBoard file is ever added: the bundle lists the files it
keeps rather than the ones it drops. Commands and paths in the records are written relative to
the repository (`python main.py ...`), so a record names no folder of the machine that made it.

`import` extracts an archive into the checkout's experiments/results/ (or --dest), after checking
every member: a member outside experiments/results/, an absolute path, a `..`, a link or a
device makes it refuse the whole archive with one line and write nothing.
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import importlib.metadata
import io
import json
import os
import platform
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zlib

from alexnet_jax import atomic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFIX = "experiments/results/"
RUN_FILES = ("config.json", "summary.json", "metrics.jsonl")
GZIP_ABOVE = 1 << 20          # metrics.jsonl larger than this goes in gzipped
ARCHIVE_LIMIT = 16 << 20      # what one returned file may weigh
_COMPILED = re.compile(r"Finished XLA compilation of jit\(([\w.<>-]+)\) in ([0-9.]+) sec")
VERSIONS = ("jax", "jaxlib", "jax-cuda13-plugin", "jax-cuda12-plugin", "flax", "optax", "orbax-checkpoint",
            "numpy", "torch", "torchvision", "ml-collections", "clu")


class RecordsError(Exception):
  """An archive or runs folder the user has to fix; main() prints it as one line."""


def say(*parts) -> None:
  print(time.strftime("%H:%M:%S"), *parts, flush=True)


def public(text: str) -> str:
  """`text` with this machine's interpreter and repository folder written as `python` and relative paths."""
  for exe in {sys.executable, os.path.realpath(sys.executable)}:
    text = text.replace(exe + " ", "python ").replace(exe + '"', 'python"')
  return text.replace(REPO + os.sep, "").replace(REPO, ".")


def _gpu() -> dict[str, str]:
  """The GPU's name, driver and memory from nvidia-smi (without starting JAX), or 'none'."""
  try:
    out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, timeout=20, check=True).stdout.strip().splitlines()
  except (OSError, subprocess.SubprocessError):
    return {"gpu": "none"}
  name, driver, memory = (x.strip() for x in (out[0].split(",") + ["", "", ""])[:3])
  return {"gpu": name, "gpu_count": len(out), "driver": driver, "gpu_memory": memory}


def _cpu() -> str:
  try:
    with open("/proc/cpuinfo") as f:
      return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    return platform.processor() or "unknown"


def _memory_gib() -> float | None:
  try:
    with open("/proc/meminfo") as f:
      kib = next(int(line.split()[1]) for line in f if line.startswith("MemTotal"))
    return round(kib / 2**20, 1)
  except (OSError, StopIteration, ValueError):
    return None


def machine_record(command: str = "") -> dict:
  """Host, CPU, cores, memory, GPU and driver, date (UTC), Python and package versions, the command."""
  versions = {"python": platform.python_version()}
  for name in VERSIONS:
    try:
      versions[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      continue
  gpu = _gpu()
  device = ({"device_kind": gpu["gpu"], "device_count": gpu["gpu_count"]} if gpu["gpu"] != "none"
            else {"device_kind": "cpu", "device_count": 1})  # the keys experiments.aggregate reads
  return {"host": platform.node(), "cpu": _cpu(), "cores": os.cpu_count(), "memory_gib": _memory_gib(), **gpu, **device,
          "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
          "versions": versions, "command": public(command)}


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
  info = tarfile.TarInfo(name)
  info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
  tar.addfile(info, io.BytesIO(data))


def _run_files(workdir: str) -> list[str]:
  names = [n for n in RUN_FILES if os.path.isfile(os.path.join(workdir, n))]
  return names + sorted(n for n in os.listdir(workdir) if n.startswith("eval") and n.endswith(".json"))


def bundle(root: str, out: str, machine: dict | None = None, studies: dict[str, str] | None = None,
           extra: dict[str, str] | None = None, limit: int = ARCHIVE_LIMIT) -> dict[str, int]:
  """Writes the run records under `root` to the archive `out`: sweeps (<root>/<sweep>/sweep.json and
  <root>/<sweep>/<run>/) and runs that belong to no sweep (<root>/<run>/config.json).

  `studies` maps a sweep folder to its study name under experiments/results/ (default: the same
  name; "." names the study of runs that belong to no sweep, default: root's own name); `machine`
  is written as every run's machine.json (a run's own machine.json, if it has one, completes it:
  its command and process times stay); `extra` maps archive paths under experiments/results/ to
  files (benchmark JSONs). Returns the number of files per study.
  """
  machine = machine or machine_record()
  studies = studies or {}
  counts: dict[str, int] = {}
  with atomic.write(out, "wb") as archive:
    with tarfile.open(out, "w:gz", fileobj=archive) as tar:  # `out` names it in the gzip header
      for entry in sorted(os.listdir(root)) if os.path.isdir(root) else []:
        folder = os.path.join(root, entry)
        if os.path.isfile(os.path.join(folder, "sweep.json")):
          study = studies.get(entry, entry)
          with open(os.path.join(folder, "sweep.json"), "rb") as f:
            _add_bytes(tar, f"{PREFIX}{study}/runs/sweep.json", public(f.read().decode()).encode())
          counts[study] = counts.get(study, 0) + 1
          runs = [(run, os.path.join(folder, run)) for run in sorted(os.listdir(folder))]
        elif os.path.isfile(os.path.join(folder, "config.json")):
          study, runs = studies.get(".", os.path.basename(os.path.normpath(root))), [(entry, folder)]
        else:
          continue
        base = f"{PREFIX}{study}/runs/"
        for run, workdir in runs:
          if not os.path.isdir(workdir) or not os.path.exists(os.path.join(workdir, "config.json")):
            continue
          for name in _run_files(workdir):
            with open(os.path.join(workdir, name), "rb") as f:
              data = f.read()
            if name == "metrics.jsonl" and len(data) > GZIP_ABOVE:
              _add_bytes(tar, base + f"{run}/metrics.jsonl.gz", gzip.compress(data, mtime=0))
            else:
              _add_bytes(tar, base + f"{run}/{name}", public(data.decode()).encode())
            counts[study] = counts.get(study, 0) + 1
          own = _read_json(os.path.join(workdir, "machine.json"))
          _add_bytes(tar, base + f"{run}/machine.json", json.dumps({**machine, **own}, indent=2).encode() + b"\n")
          counts[study] += 1
      for arcname, path in (extra or {}).items():
        if os.path.isfile(path):
          with open(path, "rb") as f:
            _add_bytes(tar, PREFIX + arcname, public(f.read().decode()).encode())
          study = arcname.split("/")[0]
          counts[study] = counts.get(study, 0) + 1
    size = archive.tell()
    if size > limit:  # atomic.write removes the partial archive
      raise RecordsError(f"the records archive would be {size / 2**20:.1f} MiB, over the {limit / 2**20:.0f} MiB "
                         f"a returned file may weigh; bundle fewer runs per archive.")
  say(f"records {out}: {size / 1e6:.2f} MB, " + ", ".join(f"{k}: {v} files" for k, v in sorted(counts.items())))
  return counts


def _read_json(path: str) -> dict:
  try:
    with open(path) as f:
      value = json.load(f)
    return value if isinstance(value, dict) else {}
  except (OSError, ValueError):
    return {}


def _checked_members(tar: tarfile.TarFile, archive: str) -> list[tarfile.TarInfo]:
  """Every member, renamed to its path under experiments/results/; RecordsError for any unsafe one."""
  members = []
  for m in tar.getmembers():
    name = m.name
    norm = posixpath.normpath(name)
    if name.startswith(("/", "\\")) or ".." in name.split("/") or ":" in name.split("/")[0] or "\\" in name:
      raise RecordsError(f"{archive}: member {name!r} points outside experiments/results/; nothing was imported.")
    if not (m.isfile() or m.isdir()):
      raise RecordsError(f"{archive}: member {name!r} is a link or special file; nothing was imported.")
    if not (norm + "/").startswith(PREFIX):
      raise RecordsError(f"{archive}: member {name!r} is not under {PREFIX}; nothing was imported.")
    rel = norm[len(PREFIX):]
    if not rel or rel == ".":
      continue
    m.name = rel
    members.append(m)
  if not any(m.isfile() for m in members):
    raise RecordsError(f"{archive}: holds no records under {PREFIX}; nothing was imported.")
  return members


def import_records(archive: str, dest: str | None = None) -> list[str]:
  """Extracts a records archive into `dest` (default: this checkout's experiments/results/).

  The archive is extracted into a scratch folder beside `dest` first and moved into place only
  when all of it was read, so a truncated or corrupt archive leaves `dest` as it was.
  """
  dest = os.path.abspath(dest or os.path.join(REPO, PREFIX))
  if not os.path.isfile(archive):
    raise RecordsError(f"{archive}: no such file; pass the records archive a GPU run wrote (records-<plan>.tar.gz).")
  os.makedirs(dest, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix=".import-", dir=os.path.dirname(dest))
  try:
    try:
      with tarfile.open(archive, "r:*") as tar:
        members = _checked_members(tar, archive)
        tar.extractall(scratch, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
      raise RecordsError(f"{archive}: not a readable records archive ({type(e).__name__}: {e}).") from e
    files = sorted(m.name for m in members if m.isfile())
    for name in files:
      target = os.path.join(dest, name)
      os.makedirs(os.path.dirname(target), exist_ok=True)
      os.replace(os.path.join(scratch, name), target)
  except OSError as e:
    raise RecordsError(f"cannot write the records into {dest}: {e.strerror or e}") from e
  finally:
    shutil.rmtree(scratch, ignore_errors=True)
  return files


def render_compile_cache(record: dict) -> str:
  """A compile_cache_<plan>.json record (experiments/gpu_session.py) as a markdown table: per program
  compiled alone, on a cold and on a warm cache, the seconds to the first step and the first
  evaluation, and XLA's compile (cold) or cache-load (warm) seconds per jitted program."""
  lines = ["| sweep | member | cache | first step (s) | first evaluation (s) | XLA seconds per program |",
           "|---|---|---|---:|---:|---|"]
  for sweep_name, groups in sorted(record.get("programs", {}).items()):
    for group, kinds in sorted(groups.items()):
      for kind in ("cold", "warm"):
        r = kinds.get(kind)
        if r is not None:
          per = ", ".join(f"{k} {v:.1f}" for k, v in sorted(r.get("compile_s", {}).items(), key=lambda kv: -kv[1]))
          lines.append(f"| {sweep_name} | {group} | {kind} | {r.get('first_step_s', 'not reached')} | "
                       f"{r.get('first_eval_s', 'not reached')} | {per} |")
  m = record.get("machine", {})
  versions = ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
  return "\n".join(lines) + f"\n\n{m.get('gpu', '?')} (driver {m.get('driver', '?')}), {m.get('cores', '?')} cores, " \
      f"{m.get('date', '?')}; {versions}\n"


def render_imported(files: list[str]) -> str:
  """One line per study: how many runs and files an import added."""
  studies: dict[str, set[str]] = {}
  for name in files:
    parts = name.split("/")
    runs = studies.setdefault(parts[0], set())
    if len(parts) >= 4 and parts[1] == "runs":
      runs.add(parts[2])
  return "\n".join(f"{study}: {len(runs)} run(s), {sum(f.startswith(study + '/') for f in files)} file(s)"
                   for study, runs in sorted(studies.items()))


def compile_seconds(log: str) -> dict[str, float]:
  """XLA's compile (or cache load) seconds per jitted program, from a JAX_LOG_COMPILES log; ≥ 0.5 s only."""
  totals: dict[str, float] = {}
  try:
    with open(log, errors="replace") as f:
      for name, secs in _COMPILED.findall(f.read()):
        totals[name] = round(totals.get(name, 0.0) + float(secs), 2)
  except OSError:
    pass
  return {k: v for k, v in totals.items() if v >= 0.5}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.campaign", description=__doc__.split("\n")[0])
  sub = p.add_subparsers(dest="command", required=True)
  b = sub.add_parser("bundle", help="pack the run records under a runs root into one archive")
  b.add_argument("root", help="the runs root: <root>/<sweep>/<run>/")
  b.add_argument("--out", required=True, help="the archive to write (.tar.gz)")
  b.add_argument("--study", action="append", default=[], metavar="SWEEP=STUDY",
                 help="put a sweep's runs under experiments/results/<STUDY>/runs/ (default: its own name; "
                 "'.=STUDY' for runs that belong to no sweep, default: the root's name)")
  i = sub.add_parser("import", help="extract a records archive into the checkout's experiments/results/")
  i.add_argument("archive")
  i.add_argument("--dest", default="", help="where experiments/results/ is (default: this checkout's)")
  a = p.parse_args(argv)
  try:
    if a.command == "bundle":
      if not os.path.isdir(a.root):
        raise RecordsError(f"{a.root}: no such folder; pass the runs root of experiments.gpu_session (--root).")
      studies = dict(s.split("=", 1) for s in a.study if "=" in s)
      bundle(a.root, a.out, machine_record(shlex.join(["python", "-m", "experiments.campaign", *sys.argv[1:]])),
             studies)
    else:
      files = import_records(a.archive, a.dest or None)
      print(f"imported {len(files)} file(s) into {a.dest or PREFIX}")
      print(render_imported(files))
  except RecordsError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
