"""Where a CPU train step spends its time: XLA's ops by kind, next to PyTorch's profiler.

  python -m experiments.profile_step --model=resnet50
  python -m experiments.profile_step --model=cifar_cnn --torch

Builds the benchmark's train step (`experiments.benchmark.jax_step`: the model's config and the
trainer's own step, at the benchmark's batch and size), runs it under `jax.profiler` with XLA:CPU's per-operation trace events turned on
(`--xla_cpu_enable_xprof_traceme`), and prints the time of each compiled operation summed by
kind (`ynn_fusion` are XNNPACK/YNNPACK convolutions, dots and reductions, `transpose_copy_fusion`
layout changes, `wrapped_reduce-window` and `wrapped_iota` JAX's max-pool gradient, ...), then
the most expensive single operations; their names are those of the compiled HLO (dump it with
`XLA_FLAGS=--xla_dump_to=<dir>` to see what each one computes). Operations on the two cores
overlap, so the per-kind times add up to more than the step. With `--torch`, PyTorch's own
profiler table for the same network follows. BENCHMARKS.md has what these showed per model.
"""

from __future__ import annotations

import os

# XLA reads its flags when the backend starts: before anything imports jax.
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_enable_xprof_traceme=true").strip()

import argparse  # noqa: E402
import collections  # noqa: E402
import glob  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import re  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import jax  # noqa: E402

from alexnet_jax import host_memory  # noqa: E402
from experiments import benchmark  # noqa: E402

_NOT_OPS = ("$", "end: ", "PjitFunction", "Thunk", "SlinkyThreadPool", "CommonPjRt", "Handle input",
            "ParseArguments", "AllocateOutputBuffers", "Execute")


def op_times(trace_dir: str, steps: int) -> collections.Counter:
  """{compiled operation: ms per step} from the trace `jax.profiler` wrote."""
  path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
  with gzip.open(path) as f:
    events = json.load(f)["traceEvents"]
  times: collections.Counter = collections.Counter()
  for e in events:
    if e.get("ph") == "X" and not e["name"].startswith(_NOT_OPS) and "::" not in e["name"]:
      times[e["name"]] += e["dur"] / 1e3 / steps
  return times


def by_kind(times: collections.Counter) -> collections.Counter:
  kinds: collections.Counter = collections.Counter()
  for name, ms in times.items():
    kinds[re.sub(r"[.\d]+$", "", name)] += ms
  return kinds


def main(argv=None) -> dict:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--model", default="resnet50", choices=list(benchmark.SPECS))
  p.add_argument("--batch", type=int, default=8, help="for the paper-size nets (the small nets use theirs)")
  p.add_argument("--res", type=int, default=0, help="input size (default: the benchmark's CPU size)")
  p.add_argument("--steps", type=int, default=3, help="profiled steps")
  p.add_argument("--top", type=int, default=12, help="how many kinds and single operations to print")
  p.add_argument("--torch", action="store_true", help="also PyTorch eager's profile of the same network")
  p.add_argument("--keep_host_memory", action="store_true",
                 help="make glibc's malloc keep freed memory first, as training does (alexnet_jax.host_memory)")
  args = p.parse_args(argv)
  if args.keep_host_memory:
    host_memory.keep_freed_memory_on_cpu()
  batch, res = benchmark.row_sizes(args.model, args, on_gpu=False)
  config = benchmark.bench_config(args.model, batch=batch, res=res)
  bench = benchmark.jax_step(config, benchmark.num_classes(args.model))
  bench.run(2)
  t = time.perf_counter()
  bench.run(args.steps)
  step_ms = (time.perf_counter() - t) / args.steps * 1e3
  with tempfile.TemporaryDirectory(prefix="alexnet_jax_profile_") as d:
    with jax.profiler.trace(d):
      bench.run(args.steps)
    times = op_times(d, args.steps)
  kinds = by_kind(times)
  total = sum(kinds.values())
  print(f"# {args.model}, batch {batch}, {res} px, current formulation: "
        f"{step_ms:.1f} ms per step (untraced), {total:.1f} ms of operations per step")
  print(f"{'ms/step':>9s} {'share':>6s}  kind")
  for kind, ms in kinds.most_common(args.top):
    print(f"{ms:9.1f} {100 * ms / total:5.1f}%  {kind}")
  print(f"{'ms/step':>9s}  single operation")
  for name, ms in times.most_common(args.top):
    print(f"{ms:9.1f}  {name}")
  out = {"model": args.model, "batch": batch, "res": res, "step_ms": step_ms, "kinds_ms": dict(kinds)}
  if args.torch:
    import torch
    from torch.profiler import ProfilerActivity, profile
    torch.set_num_threads(os.cpu_count() or 1)
    from experiments import torch_twins
    step = torch_twins.train_step(benchmark.SPECS[args.model].twin, config, benchmark.num_classes(args.model),
                                  batch, res, on_gpu=False, tuned=False)
    step(2)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
      step(args.steps)
    print(f"# PyTorch eager, the same network ({args.steps} steps)")
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=args.top))
  return out


if __name__ == "__main__":
  main()
