"""GPU benchmark: the trainer's step against a tuned PyTorch, compile time, and training from a store.

  python -m experiments.gpu_bench --budget_s=660       # one GPU: batch 256, bf16, the papers' sizes
  python -m experiments.gpu_bench --tiny               # CPU at tiny sizes (CI): every part, seconds per model

1. Train steps (`experiments.benchmark.bench_row`: the config's model and `Runtime`'s step) for the paper
   AlexNet (two towers, LRN), AlexNet OWT, ZFNet, VGG-16, GoogLeNet and ResNet-50 at the papers' input
   sizes, batch 256, bf16 on both sides. PyTorch at its best: `cudnn.benchmark`, channels_last, bf16
   autocast, `torch.compile`, fused SGD; the same update (momentum 0.9, weight decay 5e-4 on every
   parameter). At least 5 rounds of --steps steps each, the peers interleaved; per row img/s of each,
   the per-round ratio (median, min, max), model FLOP utilisation (XLA's cost analysis of the step
   against PEAK_TFLOPS, a measured dense-bf16 peak), peak device memory of each side.
2. Compile time of the first step, in a child process with a fresh persistent compilation cache
   (cold), then again with the cache that child filled (warm).
3. End to end (`experiments.store_bench.end_to_end`): paper AlexNet and ResNet-50 trained from a
   synthetic 256² uint8 store (augmentation on the device) against the same step fed from device
   memory; the host cores the process kept busy, the store's cold read rate, and a 90-epoch ImageNet
   projection with the disk bandwidth and host cores that rate needs.
Parts that would end after --budget_s are recorded as not run; the record is written after every
part, and --resume adds the missing parts to it in a later run. The record goes to --json;
`experiments.bench_report.render_gpu` renders it. Needs JAX, PyTorch, ml_collections and clu (the
last two pure Python), not TensorFlow.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from experiments import benchmark, store_bench, timing

MODELS = ("alexnet", "alexnet_owt", "zfnet", "vgg16", "googlenet", "resnet50")
# Measured dense bf16 matrix-multiply peak, FLOP/s, by device-kind substring (the datasheet says 989).
PEAK_TFLOPS = {"H200": 790.0}
IMAGENET_TRAIN = 1_281_167
IMAGENET_STORE_BYTES = 252e9   # the 256² store of ImageNet's train split
EPOCHS = 90
# --tiny: input sizes small enough for a CPU (the paper AlexNet's pools need at least 99).
TINY_RES = {"alexnet": 99, "alexnet_owt": 64, "zfnet": 64, "vgg16": 32, "googlenet": 64, "resnet50": 32}
TINY_E2E = {"alexnet": "alexnet_quick", "resnet50": "resnet18_quick"}


def parse(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(prog="python -m experiments.gpu_bench", description=__doc__.split("\n")[0])
  p.add_argument("--models", default=",".join(MODELS), help="train-step rows (any of experiments.benchmark's)")
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--rounds", type=int, default=timing.MIN_ROUNDS, help=f"at least {timing.MIN_ROUNDS}")
  p.add_argument("--steps", type=int, default=10, help="steps of each peer per round")
  p.add_argument("--compile_models", default="alexnet,resnet50", help="first-step compile rows ('' for none)")
  p.add_argument("--e2e_models", default="alexnet,resnet50", help="end-to-end rows ('' for none)")
  p.add_argument("--e2e_steps", type=int, default=10, help="steps of each peer per end-to-end round")
  p.add_argument("--store_images", type=int, default=4096, help="images in each end-to-end store")
  p.add_argument("--read_seconds", type=float, default=3.0, help="least time of the store's cold read passes")
  p.add_argument("--budget_s", type=float, default=660.0, help="start no part that would end after this")
  p.add_argument("--resume", action="store_true", help="add to the record at --json: run only the parts it "
                 "lacks (one device command may be too short for all)")
  p.add_argument("--tiny", action="store_true", help="CPU smoke run: batch 2 (the quick-mode nets too), 1 step "
                 "per round, tiny sizes, the fewest store read passes")
  p.add_argument("--skip_torch", action="store_true")
  p.add_argument("--json", default=os.path.join(benchmark.RESULTS, "gpu_step.json"))
  p.add_argument("--compile_child", default="", help=argparse.SUPPRESS)
  p.add_argument("--cache_dir", default="", help=argparse.SUPPRESS)
  args = p.parse_args(argv)
  pick = lambda s: [m for m in s.split(",") if m]  # noqa: E731
  args.models, args.compile_models, args.e2e_models = pick(args.models), pick(args.compile_models), pick(args.e2e_models)
  bad = [m for m in args.models + args.compile_models if m not in benchmark.SPECS]
  bad += [m for m in args.e2e_models if m not in TINY_E2E]
  if bad:
    p.error(f"unknown model(s) {bad}; rows from {', '.join(benchmark.SPECS)}, end to end from {', '.join(TINY_E2E)}")
  if args.rounds < timing.MIN_ROUNDS or min(args.steps, args.e2e_steps, args.batch, args.store_images) < 1:
    p.error(f"--rounds must be at least {timing.MIN_ROUNDS}; --steps, --e2e_steps, --batch, --store_images positive")
  if args.tiny:
    args.batch, args.steps, args.e2e_steps, args.store_images, args.read_seconds = 2, 1, 1, 64, 0.0
  return args


def _require_libraries() -> None:
  import importlib.util
  missing = [m for m in ("jax", "ml_collections", "clu") if importlib.util.find_spec(m) is None]
  if missing:
    sys.stderr.write(f"gpu_bench needs {', '.join(missing)} (ml_collections and clu are pure Python: "
                     "pip install --no-deps --target=<dir> ml_collections clu, then PYTHONPATH=<dir>).\n")
    sys.exit(2)


def peak_flops(device_kind: str) -> float | None:
  return next((v * 1e12 for k, v in PEAK_TFLOPS.items() if k in device_kind), None)


def _device_peak_bytes() -> int | None:
  import jax
  try:
    return (jax.devices()[0].memory_stats() or {}).get("peak_bytes_in_use")
  except (NotImplementedError, RuntimeError):
    return None


def _quick_batch(args) -> int:
  """--tiny runs the quick-mode nets at --batch too (0: at their own batch, as their quick modes train)."""
  return args.batch if args.tiny else 0


def step_row(name: str, args, on_gpu: bool, peak: float | None) -> dict[str, Any]:
  from experiments import torch_twins
  torch_twins.peak_memory(reset=True)
  ns = argparse.Namespace(batch=args.batch, res=TINY_RES.get(name, 0) if args.tiny else 0, rounds=args.rounds,
                          steps=args.steps, warmup=1, dtype="bfloat16" if on_gpu else "float32",
                          skip_torch=args.skip_torch, quick_batch=_quick_batch(args))
  row = benchmark.bench_row(name, ns, on_gpu=on_gpu, tuned_torch=on_gpu)
  step_s = args.steps * row["batch"] / row["jax"]["median"]
  row["jax_tflop_s"] = row["gflop_per_step"] * 1e9 / step_s / 1e12
  row["mfu"] = row["jax_tflop_s"] * 1e12 / peak if peak else None
  # The process's peak so far (rows run in the order given); the step's own is in xla_memory_bytes.
  row["jax_device_peak_bytes"] = _device_peak_bytes()
  row["torch_peak_bytes"] = torch_twins.peak_memory()
  return row


def compile_child(args) -> None:
  """In a fresh process: the first train step of one model, timed, with the persistent cache at --cache_dir."""
  import jax
  jax.config.update("jax_compilation_cache_dir", args.cache_dir)
  jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
  jax.config.update("jax_persistent_cache_min_entry_size_bytes", -1)
  on_gpu = jax.default_backend() == "gpu"
  name = args.compile_child
  batch, res = (args.batch, TINY_RES.get(name, 0)) if args.tiny else (args.batch, 0)
  ns = argparse.Namespace(batch=batch, res=res, quick_batch=_quick_batch(args))
  batch, res = benchmark.row_sizes(name, ns, on_gpu)
  config = benchmark.bench_config(name, batch=batch, res=res, dtype="bfloat16" if on_gpu else "float32",
                                  quick_batch=ns.quick_batch)
  t = time.perf_counter()
  step = benchmark.jax_step(config, benchmark.num_classes(name))
  step.run(1)
  print(json.dumps({"compile_s": step.compile_s, "first_step_s": time.perf_counter() - t}))


def compile_row(name: str, args) -> dict[str, Any]:
  """First-step compile time with an empty persistent cache, then with the cache that run filled."""
  out: dict[str, Any] = {"model": name}
  with tempfile.TemporaryDirectory(prefix="alexnet_jax_cache_") as cache:
    for kind in ("cold", "warm"):
      cmd = [sys.executable, "-m", "experiments.gpu_bench", f"--compile_child={name}", f"--cache_dir={cache}",
             f"--batch={args.batch}"] + (["--tiny"] if args.tiny else [])
      t = time.perf_counter()
      proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                            cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
      if proc.returncode:
        out[kind] = {"error": proc.stderr.strip().splitlines()[-1:] or ["exit %d" % proc.returncode]}
        continue
      out[kind] = {**json.loads(proc.stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - t}
    out["cache_entries"] = len(os.listdir(cache))
  return out


def e2e_row(name: str, args, on_gpu: bool, store_root: str) -> dict[str, Any]:
  model = TINY_E2E[name] if args.tiny else name
  ns = argparse.Namespace(batch=args.batch, res=0, quick_batch=_quick_batch(args))
  batch, res = benchmark.row_sizes(model, ns, on_gpu)
  config = store_bench.store_config(model, os.path.join(store_root, model), batch=batch, res=res,
                                    dtype="bfloat16" if on_gpu else "float32", quick_batch=ns.quick_batch)
  row = store_bench.end_to_end(config, benchmark.num_classes(model), args.rounds, args.e2e_steps,
                               num_train=max(args.store_images, 4 * batch))
  path = row.pop("store_path")
  row["model"], row["as"] = name, model
  row["store_read"] = store_bench.read_rate(path, config.train_split, batch, args.read_seconds)
  row["projection"] = projection(row)
  return row


def projection(row: dict[str, Any]) -> dict[str, Any]:
  """90 ImageNet epochs at the measured end-to-end rate (median and slowest round), and what feeds it."""
  image_bytes = IMAGENET_STORE_BYTES / IMAGENET_TRAIN
  rate, slow = row["end_to_end"]["median"], row["end_to_end"]["min"]
  cold = row["store_read"]["cold"]
  busy = sorted(cold["cores_busy"])[len(cold["cores_busy"]) // 2] or 1e-9
  per_core = cold["median"] / busy  # cold reads per second of one busy core
  host = sorted(row["end_to_end"]["host_cores_busy"])
  return {"epochs": EPOCHS, "images_per_epoch": IMAGENET_TRAIN, "store_bytes": IMAGENET_STORE_BYTES,
          "hours_at_median": EPOCHS * IMAGENET_TRAIN / rate / 3600,
          "hours_at_slowest_round": EPOCHS * IMAGENET_TRAIN / slow / 3600,
          "disk_mb_s_needed": rate * image_bytes / 1e6,
          "reading_cores_needed": rate / per_core,
          "host_cores_busy_measured": host[len(host) // 2],
          "store_cold_mb_s_measured": sorted(cold["mb_s"])[len(cold["mb_s"]) // 2]}


def resume(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], set]:
  """`old` with `new`'s run added: the parts it holds are kept (and not run again), its not-run list
  is dropped (this run tries them), and this run's machine block joins the earlier ones."""
  if old.get("kind") != "gpu_bench" or old["machine"]["device_kind"] != new["machine"]["device_kind"] or (
      old.get("tiny") != new["tiny"]):
    sys.stderr.write(f"--resume: the record holds another kind of run ({old['machine']['device_kind']}, "
                     f"tiny={old.get('tiny')}); give another --json.\n")
    sys.exit(2)
  done = {(part, row["model"]) for part in ("rows", "compile", "end_to_end") for row in old[part]}
  merged = {**old, "not_run": [], "earlier_runs": old.get("earlier_runs", []) + [old["machine"]],
            "machine": new["machine"], "settings": new["settings"]}
  return merged, done


def main(argv=None) -> dict[str, Any]:
  args = parse(argv)
  _require_libraries()
  # JAX and PyTorch share the device: JAX allocates as it goes instead of taking 75% up front.
  os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
  if args.compile_child:
    compile_child(args)
    return {}
  import jax
  start = time.perf_counter()
  on_gpu = jax.default_backend() == "gpu"
  machine = timing.machine("experiments.gpu_bench", argv)
  peak = peak_flops(machine["device_kind"]) if on_gpu else None
  record: dict[str, Any] = {
      "kind": "gpu_bench", "machine": machine, "tiny": args.tiny, "on_gpu": on_gpu,
      "settings": {k: v for k, v in vars(args).items() if k not in ("json", "compile_child", "cache_dir")},
      "peak_flops": peak, "peak_note": f"measured dense bf16 peak {PEAK_TFLOPS} TFLOP/s by device kind",
      "torch_setup": ("torch.compile + bf16 autocast + channels_last + fused SGD + cudnn.benchmark" if on_gpu
                      else "eager float32 (CPU)"),
      "rows": [], "compile": [], "end_to_end": [], "not_run": []}
  done: set = set()
  if args.resume and os.path.exists(args.json):
    record, done = resume(timing.read_record(args.json), record)
  print(f"# {machine['date']}  {machine['device']} × {machine['device_count']}  {machine['cpu']} "
        f"({machine['cores']} cores)" + ("" if on_gpu else "  (no GPU: tiny CPU run, not a measurement)"))
  longest = 0.0
  store_root = tempfile.mkdtemp(prefix="alexnet_jax_gpu_bench_")
  parts = ([("rows", m) for m in args.models] + [("compile", m) for m in args.compile_models]
           + [("end_to_end", m) for m in args.e2e_models])
  for part, name in parts:
    if (part, name) in done:
      continue
    elapsed = time.perf_counter() - start
    if elapsed + longest > args.budget_s:
      record["not_run"].append({"part": part, "model": name, "reason": f"budget {args.budget_s:.0f} s: "
                                f"{elapsed:.0f} s spent, the longest part so far took {longest:.0f} s"})
      print(f"# not run ({part}, {name}): over the budget", flush=True)
      continue
    t = time.perf_counter()
    if part == "rows":
      row = step_row(name, args, on_gpu, peak)
      r = row.get("ratio")
      print(f"{name:12s} JAX {row['jax']['median']:9.1f} img/s" + (
          f"  PyTorch {row['torch']['median']:9.1f}  ratio {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f})"
          if r else ""), flush=True)
    elif part == "compile":
      row = compile_row(name, args)
      print(f"{name:12s} first step: cold {row['cold'].get('first_step_s', float('nan')):.1f} s, from the cache "
            f"{row['warm'].get('first_step_s', float('nan')):.1f} s", flush=True)
    else:
      row = e2e_row(name, args, on_gpu, store_root)
      r = row["ratio"]
      print(f"{name:12s} end to end / step only {r['median']:.2f} ({r['min']:.2f}-{r['max']:.2f}); 90 epochs "
            f"{row['projection']['hours_at_median']:.1f} h", flush=True)
    row["wall_s"] = time.perf_counter() - t
    longest = max(longest, row["wall_s"])
    record[part].append(row)
    timing.write_record(args.json, record)  # after every part: a run stopped later keeps what it measured
  import shutil
  shutil.rmtree(store_root, ignore_errors=True)
  record["elapsed_s"] = record.get("elapsed_s", 0.0) + time.perf_counter() - start
  timing.write_record(args.json, record)
  print(f"# {record['elapsed_s']:.0f} s; record: {os.path.relpath(args.json)}")
  return record


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
