"""What a block of GPU time brings in the working tree: the images, and the packages the GPU machine lacks.

  python -m experiments.gpu_pack --imagenette=<imagenette-128 .tar or folder> [--quality=70]
  python -m experiments.gpu_pack --check        # sizes only

Writes two git-ignored folders, which a device call carries beside the tree (docs/GPU.md):
  .data/imagenette.zip                         every image re-encoded as JPEG at --quality, same pixel
                                               size (128²), the official imagenette2 split as given,
                                               in one uncompressed zip: {train,val}/<wnid>/<image>
  .pydeps/                                     ml_collections, clu and wrapt, copied from this Python
                                               (experiments.gpu_session uses them only where missing;
                                               clu's TensorBoard writer without TensorFlow is None)
and prints what the tree, .data and .pydeps weigh: together they must stay within the 64 MiB a
device call carries. At quality 85 (the shared copy's) the 13,394 images are about 73 MB; quality
70 brings them to about 50 MB.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from concurrent import futures

from alexnet_jax import atomic
from experiments import campaign

REPO = campaign.REPO
DATA = os.path.join(REPO, ".data")
PYDEPS = os.path.join(REPO, ".pydeps")
PACKAGES = ("ml_collections", "clu", "wrapt")
CARRY_LIMIT = 64 << 20
IMAGE_EXT = (".jpeg", ".jpg", ".png")


# clu's TensorBoard writer imports TensorFlow, which the GPU machine lacks; `from clu import
# metric_writers` imports it. In the copy, a missing TensorFlow leaves SummaryWriter None (clu's
# default writer then fails and the trainer falls back to the console and metrics.jsonl).
SUMMARY_WRITER = '''"""clu's TensorBoard writer where TensorFlow can be imported; None where it cannot (gpu_pack)."""
try:
  from .tf.summary_writer import SummaryWriter
except ImportError:
  SummaryWriter = None
'''


class PackError(Exception):
  """Input the user has to fix; printed as one line."""


def missing_modules(names=PACKAGES) -> list[str]:
  return [n for n in names if importlib.util.find_spec(n) is None]


def child_env(root: str) -> dict[str, str]:
  """Runs share one GPU, one compilation cache and one store folder; packages brought in .pydeps
  (docs/GPU.md) are used only when the machine lacks them."""
  env = dict(os.environ)
  env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.abspath(os.path.join(root, "jax_cache")))
  env.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.5")
  env.setdefault("ALEXNET_JAX_DATA", os.path.abspath(os.path.join(root, "stores")))
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  env.setdefault("JAX_LOG_COMPILES", "1")  # each program's compile or cache-load seconds, in the run's log
  if os.path.isdir(PYDEPS) and missing_modules():
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [env.get("PYTHONPATH", ""), PYDEPS]))
  return env


def _reencode(data: bytes, quality: int) -> bytes:
  from PIL import Image
  with Image.open(io.BytesIO(data)) as im:
    im = im.convert("RGB") if im.mode not in ("RGB", "L") else im
    out = io.BytesIO()
    im.save(out, "JPEG", quality=quality, optimize=True)
  return out.getvalue()


def _sources(src: str):
  """(path under imagenette/, bytes) of every image of a .tar or a folder (<root>/{train,val}/<class>/<file>)."""
  if os.path.isfile(src):
    with tarfile.open(src) as tar:
      for m in tar:
        parts = m.name.split("/")
        if m.isfile() and m.name.lower().endswith(IMAGE_EXT) and len(parts) >= 3 and parts[-3] in ("train", "val"):
          yield "/".join(parts[-3:]), tar.extractfile(m).read()
    return
  for split in ("train", "val"):
    for dirpath, _, files in os.walk(os.path.join(src, split)):
      for name in sorted(files):
        if name.lower().endswith(IMAGE_EXT):
          with open(os.path.join(dirpath, name), "rb") as f:
            yield f"{split}/{os.path.basename(dirpath)}/{name}", f.read()


def pack_images(src: str, quality: int, dest: str = os.path.join(DATA, "imagenette.zip")) -> dict[str, int]:
  """Every image of `src` re-encoded at `quality` into one uncompressed zip (train/<class>/<image>, ...):
  one file carries without the per-file overhead of 13,394 small ones; `unpack` opens it there."""
  if not os.path.exists(src):
    raise PackError(f"{src}: no such file or folder; pass the imagenette-128 archive or its unpacked folder.")
  if not 1 <= quality <= 95:
    raise PackError(f"--quality must be 1..95, got {quality}.")
  os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
  counts = {"train": 0, "val": 0}
  with atomic.write(dest, "wb") as f:  # an error or a refusal below leaves no partial zip
    with futures.ProcessPoolExecutor(max_workers=os.cpu_count()) as pool, \
         zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
      pending = [(rel, pool.submit(_reencode, data, quality)) for rel, data in _sources(src)]
      for rel, fut in pending:
        z.writestr(rel, fut.result())
        counts[rel.split("/")[0]] += 1
    if not counts["train"] or not counts["val"]:
      raise PackError(f"{src}: found {counts['train']} train and {counts['val']} val images; expected "
                      f"<root>/train/<class>/<image> and <root>/val/<class>/<image>.")
  return counts


def unpack(data: str) -> str | None:
  """On the GPU machine: <data>/imagenette.zip unpacked once into <data>/imagenette/ (its folder)."""
  archive, folder = os.path.join(data, "imagenette.zip"), os.path.join(data, "imagenette")
  if os.path.isfile(archive) and not os.path.isdir(folder):
    shutil.rmtree(folder + ".tmp", ignore_errors=True)
    with zipfile.ZipFile(archive) as z:
      z.extractall(folder + ".tmp")  # zipfile drops absolute paths and '..' from member names
    os.replace(folder + ".tmp", folder)
  return folder if os.path.isdir(folder) else None


def pack_packages(dest: str = PYDEPS) -> list[str]:
  """Copies the packages' folders from this Python (no caches, no tests) into `dest`."""
  shutil.rmtree(dest, ignore_errors=True)
  os.makedirs(dest)
  copied = []
  for name in PACKAGES:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
      raise PackError(f"{name} is not installed here; install requirements.txt first.")
    folder = list(spec.submodule_search_locations)[0]
    shutil.copytree(folder, os.path.join(dest, name),
                    ignore=shutil.ignore_patterns("__pycache__", "tests", "*_test.py"))
    copied.append(name)
  with open(os.path.join(dest, "clu", "metric_writers", "summary_writer.py"), "w") as f:
    f.write(SUMMARY_WRITER)
  return copied


def folder_bytes(path: str) -> int:
  return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def tree_bytes() -> int:
  """Tracked and untracked-but-not-ignored files: what a device call copies without being told."""
  out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=REPO, capture_output=True,
                       check=True).stdout.decode().split("\0")
  return sum(os.path.getsize(os.path.join(REPO, f)) for f in out if f and os.path.isfile(os.path.join(REPO, f)))


def sizes() -> dict[str, float]:
  mib = {"tree": tree_bytes(), ".data": folder_bytes(DATA), ".pydeps": folder_bytes(PYDEPS)}
  mib["total"] = sum(mib.values())
  return {k: round(v / 2**20, 1) for k, v in mib.items()}


def main(argv=None) -> int:
  p = argparse.ArgumentParser(prog="python -m experiments.gpu_pack", description=__doc__.split("\n")[0])
  p.add_argument("--imagenette", default="", help="the imagenette-128 archive (.tar) or its unpacked folder")
  p.add_argument("--quality", type=int, default=70, help="JPEG quality of the re-encoded images")
  p.add_argument("--check", action="store_true", help="print the sizes only")
  a = p.parse_args(argv)
  try:
    if not a.check:
      if a.imagenette:
        counts = pack_images(a.imagenette, a.quality)
        shutil.rmtree(os.path.join(DATA, "imagenette"), ignore_errors=True)  # an unpacked copy would travel too
        print(f".data/imagenette.zip: {counts['train']} train, {counts['val']} val images at JPEG quality {a.quality}")
      print(".pydeps: " + ", ".join(pack_packages()))
    s = sizes()
  except PackError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  print("MiB: " + ", ".join(f"{k} {v}" for k, v in s.items()) + f" (a device call carries at most {CARRY_LIMIT >> 20})")
  if s["total"] * 2**20 > CARRY_LIMIT:
    print(f"error: {s['total']} MiB is over the {CARRY_LIMIT >> 20} MiB a device call carries; lower --quality.",
          file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
