"""The prepared store: its read rate from a cold and from a warm page cache, and training from it end to end.

  python -m experiments.store_bench                         # read rate of a 256² synthetic store, both caches
  python -m experiments.store_bench --images=8192 --seconds=5 --e2e_model=alexnet_quick

Read rate: a synthetic store of --images random uint8 squares at --size² is written once, then
read in the trainer's order (`store.batch_rows`, `Store.gather`, one reading thread) in rounds.
Each round reads the whole store twice: once cold, after its files' pages were evicted from the
page cache (`os.posix_fadvise(..., POSIX_FADV_DONTNEED)` after an fsync; no root needed, and
untimed), and once warm; which goes first alternates. Rounds continue until the cold passes add up
to --seconds (at least 5 rounds). The record keeps every pass, in images/s and MB/s, and the CPU
time the reading took, per core.

End to end (--e2e_model): that model's training step (`alexnet_jax.runtime.Runtime`, store
pipeline: uint8 batches staged by a thread, augmentation on the device) reading every batch from a
synthetic store, against the same step repeating one batch already on the device, in interleaved
rounds; with the host CPU time the process used per second of end-to-end training.

Decode and augment (--pipeline_dir, an image folder <split>/<class>/<image>, needs TensorFlow):
JPEG decode plus the paper's augmentation (short side 256, random 224 crop, flip, PCA lighting,
mean subtraction), our tf.data pipeline against torchvision's ImageFolder + DataLoader doing the
same with PIL and one worker per core, --pipeline_batches batches of 64 each per round, interleaved.
Both keep filling their bounded prefetch buffers while the other runs, so a round's first batches
may come from a buffer: rounds many times longer than the buffers (the default 16 batches) keep
that small, and the record says so.
`experiments.bench_report.render_store_read` renders the record.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import sys
import tempfile
from typing import Any

from experiments import timing

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "benchmarks")


def _cpu_s() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def evict(path: str) -> int:
  """Drops the page-cache pages of every file under `path` (written back first); returns the bytes."""
  total = 0
  for root, _, files in os.walk(path):
    for name in files:
      fd = os.open(os.path.join(root, name), os.O_RDONLY)
      try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        total += os.fstat(fd).st_size
      finally:
        os.close(fd)
  return total


def resident_fraction(path: str) -> float | None:
  """The share of the pages of the files under `path` that sit in the page cache (mincore(2)), or None."""
  import ctypes
  import mmap
  libc = ctypes.CDLL(None, use_errno=True)
  libc.mmap.restype = ctypes.c_void_p
  libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
  libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
  libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p]
  page, total, resident = os.sysconf("SC_PAGE_SIZE"), 0, 0
  for root, _, files in os.walk(path):
    for name in files:
      fd = os.open(os.path.join(root, name), os.O_RDONLY)
      try:
        size = os.fstat(fd).st_size
        if not size:
          continue
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        if addr is None or addr == ctypes.c_void_p(-1).value:
          return None
        vec = (ctypes.c_ubyte * (-(-size // page)))()
        ok = libc.mincore(addr, size, vec) == 0
        libc.munmap(addr, size)
        if not ok:
          return None
        resident += sum(v & 1 for v in vec)
        total += len(vec)
      finally:
        os.close(fd)
  return resident / total if total else None


def filesystem(path: str) -> str:
  """The type of the filesystem holding `path` (tmpfs keeps every page in memory: no cold read there)."""
  path, best = os.path.realpath(path), ("", "unknown")
  try:
    with open("/proc/mounts") as f:
      for line in f:
        mount, kind = line.split()[1:3]
        if (path == mount or path.startswith(mount.rstrip("/") + "/")) and len(mount) >= len(best[0]):
          best = (mount, kind)
  except OSError:
    pass
  return best[1]


def synthetic_store(config, num_train: int, classes: int, chunk: int = 2048) -> str:
  """A prepared store for `config` of `num_train` random uint8 images (and one eval batch)."""
  import numpy as np

  from alexnet_jax.data import prepare, store
  size = store.stored_size(config)
  rng = np.random.default_rng(0)
  images = np.empty((num_train, size, size, 3), np.uint8)
  for lo in range(0, num_train, chunk):
    images[lo:lo + chunk] = rng.integers(0, 256, images[lo:lo + chunk].shape, dtype=np.uint8)
  labels = rng.integers(0, classes, num_train).astype(np.int32)
  n_eval = min(num_train, config.eval_batch_size)
  return prepare.write_arrays(config, {config.train_split: (images, labels),
                                       config.eval_split: (images[:n_eval], labels[:n_eval])},
                              [f"class{i}" for i in range(classes)])


def read_rate(path: str, split: str, batch: int, seconds: float, min_rounds: int = timing.MIN_ROUNDS) -> dict:
  """Whole-store passes in the trainer's order, cold (pages evicted first) and warm, in alternating rounds."""
  from alexnet_jax.data import store
  opened = {}
  cpu = {"cold": [], "warm": []}
  passes = {"cold": 0, "warm": 0}

  def reopen():  # fresh memory maps: pages mapped by an open store are not dropped
    opened.pop("store", None)
    gc.collect()

  def read_all(kind):
    def run(_):
      st = opened.setdefault("store", store.Store(path))
      n = st.count(split)
      steps = n // batch
      c = _cpu_s()
      for i in range(steps):
        st.gather(split, store.batch_rows(0, passes[kind] * steps + i, n, batch))
      cpu[kind].append(_cpu_s() - c)
      passes[kind] += 1
    return run

  resident = {"cold": [], "warm": []}
  read_dir = os.path.join(path, store.Store(path).manifest["splits"][split]["dir"])  # the files a pass reads

  def evicted():
    reopen()
    evict(path)
    resident["cold"].append(resident_fraction(read_dir))

  peers = {"cold": read_all("cold"), "warm": read_all("warm")}
  before = {"cold": evicted, "warm": lambda: resident["warm"].append(resident_fraction(read_dir))}
  st = store.Store(path)
  n, size = st.count(split), st.size
  del st
  per_pass = (n // batch) * batch
  probe = timing.interleaved_rounds(peers, 1, warmup=1, before=before)
  rounds = max(min_rounds, int(seconds / max(probe["cold"][0], 1e-6)) + 1)
  times = timing.interleaved_rounds(peers, rounds, before=before, warmup=0)
  cpu = {k: v[-rounds:] for k, v in cpu.items()}
  image_bytes = size * size * 3
  out = {"images_per_pass": per_pass, "stored_size": size, "image_bytes": image_bytes, "batch": batch,
         "reading_threads": 1, "store_bytes": n * image_bytes, "rounds": rounds, "filesystem": filesystem(path)}
  for kind in ("cold", "warm"):
    stats = timing.rate_stats(times[kind], per_pass)
    stats["mb_s"] = [r * image_bytes / 1e6 for r in stats["rate"]]
    stats["cpu_s"] = cpu[kind]
    stats["cores_busy"] = [c / t for c, t in zip(cpu[kind], times[kind])]
    stats["total_s"] = sum(times[kind])
    stats["resident_at_start"] = resident[kind][-rounds:]  # share of the store in the page cache (mincore)
    out[kind] = stats
  out["cold"]["page_cache"] = "evicted before each pass (posix_fadvise DONTNEED after fsync)"
  out["warm"]["page_cache"] = "the store was read just before"
  return out


def end_to_end(config, classes: int, rounds: int, steps: int, num_train: int = 0) -> dict[str, Any]:
  """Training from a synthetic store through the trainer, end to end vs the step alone (interleaved)."""
  import jax

  from alexnet_jax import runtime
  from alexnet_jax.data import store
  path = synthetic_store(config, num_train or config.batch_size * 8, classes)
  trainer = runtime.Runtime(config)
  holder = {"state": trainer.init_state()}
  batches = trainer.device_batches(store.train_batches(config), config.input.prefetch)
  first = next(batches)
  e2e_cpu: list[float] = []

  def step_only(n):
    for _ in range(n):
      holder["state"], _, finite = trainer.train_step(holder["state"], first, trainer.base_key)
    jax.block_until_ready(finite)

  def from_store(n):
    c = _cpu_s()
    for _ in range(n):
      holder["state"], _, finite = trainer.train_step(holder["state"], next(batches), trainer.base_key)
    jax.block_until_ready(finite)
    e2e_cpu.append(_cpu_s() - c)

  times = timing.interleaved_rounds({"step_only": step_only, "end_to_end": from_store}, rounds, steps)
  batches.close()
  size = store.stored_size(config)
  images = steps * config.batch_size
  out = {"config": config.model.name, "batch": config.batch_size, "stored_size": size,
         "image_size": config.input.image_size, "dtype": config.dtype, "steps_per_round": steps, "rounds": rounds,
         "store_bytes": sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs),
         "step_only": timing.rate_stats(times["step_only"], images),
         "end_to_end": timing.rate_stats(times["end_to_end"], images),
         "ratio": timing.ratio_stats(times["end_to_end"], times["step_only"])}
  # end-to-end rate / step-only rate per round (1.0: the input path costs nothing)
  out["ratio"]["meaning"] = "end-to-end img/s over step-only img/s, per round"
  out["store_path"] = path  # for a read-rate pass over the same store; not part of a record
  cpu = e2e_cpu[-rounds:]
  out["end_to_end"]["host_cores_busy"] = [c / t for c, t in zip(cpu, times["end_to_end"])]
  out["end_to_end"]["store_read_mb_s"] = [r * size * size * 3 / 1e6 for r in out["end_to_end"]["rate"]]
  return out


def _split_dir(root: str) -> str:
  return next((s for s in ("train", "val", "validation") if os.path.isdir(os.path.join(root, s))), "")


def _ours(root: str, batch: int):
  from alexnet_jax.configs import alexnet as alexnet_config
  from alexnet_jax.data import input_pipeline
  config = alexnet_config.get_config(f"data={root},res=224")
  config.unlock()
  config.train_split = config.eval_split = _split_dir(root)
  config.batch_size = batch
  return input_pipeline.train_batches(config)


def _torch(root: str, batch: int, workers: int):
  import torch
  from torchvision import datasets, transforms
  eigval = torch.tensor([0.2175, 0.0188, 0.0045])
  eigvec = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
  mean = torch.tensor([123.68, 116.779, 103.939]).view(3, 1, 1)

  def lighting_and_mean(img):
    shift = (eigvec @ (torch.randn(3) * 0.1 * eigval)) * 255.0
    return img.float() + shift.view(3, 1, 1) - mean

  tf = transforms.Compose([transforms.Resize(256), transforms.RandomCrop(224), transforms.RandomHorizontalFlip(),
                           transforms.PILToTensor(), transforms.Lambda(lighting_and_mean)])
  ds = datasets.ImageFolder(os.path.join(root, _split_dir(root)), transform=tf)
  loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                                       persistent_workers=True)

  def forever():
    while True:
      yield from loader
  return forever()


def decode_pipelines(root: str, batches: int, rounds: int, batch: int = 64) -> dict[str, Any]:
  """Images/s of tf.data and of torchvision's DataLoader decoding and augmenting the same folder."""
  cores = os.cpu_count() or 1
  its = {"tf_data": _ours(root, batch), "torch_dataloader": _torch(root, batch, cores)}
  peers = {k: (lambda n, it=it: [next(it) for _ in range(n)]) for k, it in its.items()}
  times = timing.interleaved_rounds(peers, rounds, batches)
  out = {k: timing.rate_stats(v, batches * batch) for k, v in times.items()}
  return {"folder": os.path.basename(os.path.normpath(root)), "cores": cores, "batch": batch, **out,
          "note": "both pipelines prefetch in the background during the other's turn (bounded buffers)",
          "ratio": timing.ratio_stats(times["tf_data"], times["torch_dataloader"])}


def parse(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m experiments.store_bench", description=__doc__.split("\n")[0])
  p.add_argument("--images", type=int, default=4096, help="images in the synthetic store")
  p.add_argument("--size", type=int, default=256, help="stored size (pixels per side)")
  p.add_argument("--batch", type=int, default=256, help="images per read (the train batch)")
  p.add_argument("--seconds", type=float, default=5.0, help="least total time of the cold passes")
  p.add_argument("--e2e_model", default="", help="also train this benchmark model from a store (e.g. alexnet_quick)")
  p.add_argument("--e2e_rounds", type=int, default=timing.MIN_ROUNDS)
  p.add_argument("--e2e_steps", type=int, default=2, help="steps of each peer per round")
  p.add_argument("--pipeline_dir", default="", help="also time decode + augmentation of this image folder")
  p.add_argument("--pipeline_batches", type=int, default=16, help="batches of 64 per peer per round")
  p.add_argument("--store_dir", default="", help="where the stores go (default: a temporary folder, removed)")
  p.add_argument("--json", default=os.path.join(RESULTS, "store_read.json"))
  args = p.parse_args(argv)
  if min(args.images, args.size, args.batch) <= 0 or args.batch > args.images:
    p.error("--images, --size and --batch must be positive, and --batch at most --images")
  if args.e2e_rounds < timing.MIN_ROUNDS or args.e2e_steps < 1:
    p.error(f"--e2e_rounds must be at least {timing.MIN_ROUNDS} and --e2e_steps at least 1")
  if args.pipeline_dir and not _split_dir(args.pipeline_dir):
    p.error(f"--pipeline_dir={args.pipeline_dir!r} must hold <split>/<class>/<image> (a train or val folder)")
  from experiments import benchmark
  if args.e2e_model and args.e2e_model not in benchmark.SPECS:
    p.error(f"--e2e_model={args.e2e_model!r}: choose from {', '.join(benchmark.SPECS)}")
  return args


def store_config(name: str, store_dir: str, *, batch: int = 0, res: int = 0, dtype: str = "float32",
                 stored: int = 0, quick_batch: int = 0):
  """A benchmark model's config reading a synthetic store in `store_dir`."""
  from experiments import benchmark
  config = benchmark.bench_config(name, batch=batch, res=res, dtype=dtype, quick_batch=quick_batch)
  config.unlock()
  config.dataset, config.input.pipeline, config.input.store_dir = "synthetic", "store", store_dir
  if stored:
    config.input.store_size = stored
  config.lock()
  return config


def main(argv=None) -> dict[str, Any]:
  args = parse(argv)
  record: dict[str, Any] = {"kind": "store_read", "machine": timing.machine("experiments.store_bench", argv),
                            "settings": {k: v for k, v in vars(args).items() if k != "json"}}
  with tempfile.TemporaryDirectory(prefix="alexnet_jax_store_bench_") as scratch:
    root = args.store_dir or scratch
    config = store_config("alexnet", root, batch=args.batch, res=min(args.size, 224), stored=args.size)
    path = synthetic_store(config, args.images, 10)
    record["read"] = read_rate(path, config.train_split, args.batch, args.seconds)
    for kind in ("cold", "warm"):
      r = record["read"][kind]
      print(f"# {kind}: {r['median']:.0f} img/s median ({min(r['rate']):.0f}-{max(r['rate']):.0f}), "
            f"{statistics_mb(r):.0f} MB/s, {len(r['rate'])} passes of {record['read']['images_per_pass']} images")
    if args.e2e_model:
      from experiments import benchmark
      e2e_config = store_config(args.e2e_model, os.path.join(root, "e2e"))
      record["end_to_end"] = end_to_end(e2e_config, benchmark.num_classes(args.e2e_model), args.e2e_rounds,
                                        args.e2e_steps)
      record["end_to_end"].pop("store_path")
      r = record["end_to_end"]["ratio"]
      print(f"# {args.e2e_model} end to end / step only: median {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})")
  if args.pipeline_dir:
    record["decode"] = decode_pipelines(args.pipeline_dir, args.pipeline_batches, args.e2e_rounds)
    r = record["decode"]["ratio"]
    print(f"# decode + augment, tf.data / DataLoader: median {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})")
  timing.write_record(args.json, record)
  return record


def statistics_mb(r: dict) -> float:
  import statistics
  return statistics.median(r["mb_s"])


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(0 if main() else 1)
