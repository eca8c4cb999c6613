"""Train-step throughput: the trainer's own step against PyTorch, on this machine's device.

  python -m experiments.benchmark                                   # every model, CPU sizes
  python -m experiments.benchmark --models=alexnet,resnet50 --rounds=7 --steps=2
  python -m experiments.benchmark --json=experiments/results/benchmarks/cpu_step.json

Each model is built from its config file (`alexnet_jax/configs/<family>.py` with the arguments in
SPECS) and trained by `alexnet_jax.runtime.Runtime`'s jitted train step, exactly what training
compiles (device augmentation aside: the batch is synthetic and already on the device), with
momentum 0.9 and weight decay 5e-4 on every parameter; the PyTorch twin (`experiments.torch_twins`)
applies the same update. The paper-size nets run at --batch; the three small nets the experiments
train on a CPU (the quick-mode AlexNet, Figure 1's CIFAR net, the quick-mode ResNet-18) at their
quick-mode batch with 10 classes.

Every row: at least 5 timed rounds after a warm-up, JAX and PyTorch interleaved within each round
(which goes first alternates), every round's raw time kept, the per-round ratio JAX/PyTorch with
its median, min and max, and whether the minimum is at least 1.0 (`experiments.timing`).
The record (machine, date, versions, command, load average, every round) goes to --json;
`experiments.bench_report.render_step` makes BENCHMARKS.md's table from it.

On CPU, glibc's malloc is left as it is, as PyTorch is usually run; --keep_host_memory applies
training's setting (`alexnet_jax.host_memory`) first, for both (it is process-wide).
To compare with an earlier version of the code, run this benchmark at both commits
(e.g. `git worktree add ../before <commit>`, then the same command in each) and compare records.
Store read rates (cold and warm page cache) and end-to-end training from a store are in
`experiments.store_bench`.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import os
import sys
import time
from typing import Any, Callable

from experiments import timing

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results", "benchmarks")
QUICK_CLASSES = 10
# The update rule both sides apply (alexnet_jax.optim's SGD; torch.optim.SGD with the same numbers).
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-4


@dataclasses.dataclass(frozen=True)
class Spec:
  """One benchmarked model: its config file and arguments, the PyTorch twin, the CPU input size."""
  family: str        # alexnet_jax/configs/<family>.py
  arg: str           # its config string
  twin: str          # experiments.torch_twins.model's name (a torchvision builder or a twin written there)
  cpu_res: int = 0   # input size on CPU by default (0: the config's, the paper's)
  quick: bool = False  # a quick-mode net: its own batch, 10 classes


SPECS: dict[str, Spec] = {
    "alexnet": Spec("alexnet", "", "alexnet_paper"),
    "alexnet_owt": Spec("alexnet", "variant=owt,geometry=224", "alexnet"),
    "zfnet": Spec("zfnet", "", "zfnet"),
    "vgg16": Spec("vgg", "depth=16", "vgg16", cpu_res=112),
    "googlenet": Spec("googlenet", "", "googlenet", cpu_res=112),
    "resnet50": Spec("resnet", "depth=50", "resnet50", cpu_res=112),
    "alexnet_quick": Spec("alexnet", "smoke", "alexnet_paper", quick=True),
    "cifar_cnn": Spec("cifar_cnn", "smoke", "cifar_cnn", quick=True),
    "resnet18_quick": Spec("resnet", "depth=18,smoke", "resnet18_quick", quick=True),
}


def bench_config(name: str, *, batch: int = 0, res: int = 0, dtype: str = "float32", quick_batch: int = 0):
  """The model's training config with the benchmark's batch, input size, dtype and update rule. `batch`
  is the paper-size nets'; a quick-mode net keeps its own unless `quick_batch` is given (tiny smoke runs)."""
  spec = SPECS[name]
  config = importlib.import_module(f"alexnet_jax.configs.{spec.family}").get_config(spec.arg)
  config.unlock()
  if batch and not spec.quick:
    config.batch_size = config.eval_batch_size = batch
  if quick_batch and spec.quick:
    config.batch_size = config.eval_batch_size = quick_batch
  if res:
    config.input.image_size = res
  config.dtype = dtype
  config.keep_host_memory = False  # process-wide: the benchmark decides it once, for both sides
  config.optimizer.update(name="sgd", momentum=MOMENTUM, nesterov=False, weight_decay=WEIGHT_DECAY,
                          decay_biases_and_norms=True, grad_clip_norm=0.0)
  config.lock()
  return config


def num_classes(name: str) -> int:
  return QUICK_CLASSES if SPECS[name].quick else 1000


@dataclasses.dataclass
class JaxStep:
  run: Callable[[int], Any]   # run(n): n train steps, blocking at the end
  flops: float                # per step, XLA's cost analysis
  params: int
  compile_s: float
  memory: dict[str, int]      # XLA's memory analysis of the compiled step (bytes)


def jax_step(config, classes: int) -> JaxStep:
  """`Runtime(config).train_step`, compiled ahead of time, on one resident synthetic batch."""
  import jax
  import numpy as np

  from alexnet_jax import parallel, runtime
  from alexnet_jax.data import store
  info = store.DatasetInfo(name="synthetic", num_classes=classes, num_train=config.batch_size * 1000,
                           num_eval=config.eval_batch_size, class_names=tuple(f"c{i}" for i in range(classes)))
  trainer = runtime.Runtime(config, info=info)
  state = trainer.init_state()
  rng = np.random.default_rng(0)
  size, batch = config.input.image_size, config.batch_size
  host = {"image": rng.normal(size=(batch, size, size, 3)).astype(np.float32),
          "label": rng.integers(0, classes, batch).astype(np.int32)}
  data = parallel.to_global(host, trainer.data_sharding)
  t = time.perf_counter()
  compiled = trainer.train_step.lower(state, data, trainer.base_key).compile()
  compile_s = time.perf_counter() - t
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  mem = compiled.memory_analysis()
  memory = {k: int(getattr(mem, f"{k}_size_in_bytes", 0)) for k in ("argument", "output", "temp", "generated_code")}
  holder = {"state": state}

  def run(n: int):
    finite = None
    for _ in range(n):
      holder["state"], _, finite = compiled(holder["state"], data, trainer.base_key)
    return jax.block_until_ready(finite)

  n_params = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state.params))
  return JaxStep(run, float((cost or {}).get("flops", float("nan"))), n_params, compile_s, memory)


def row_sizes(name: str, args, on_gpu: bool) -> tuple[int, int]:
  spec = SPECS[name]
  config = bench_config(name, quick_batch=getattr(args, "quick_batch", 0))
  if spec.quick:  # the quick-mode nets as their quick modes train them (or at args.quick_batch)
    return config.batch_size, config.input.image_size
  return args.batch, args.res or (0 if on_gpu else spec.cpu_res) or config.input.image_size


def bench_row(name: str, args, *, on_gpu: bool, tuned_torch: bool) -> dict[str, Any]:
  """One model: JAX and PyTorch steps in interleaved rounds; every round kept."""
  from experiments import torch_twins
  batch, res = row_sizes(name, args, on_gpu)
  config = bench_config(name, batch=batch, res=res, dtype=args.dtype, quick_batch=getattr(args, "quick_batch", 0))
  classes = num_classes(name)
  jx = jax_step(config, classes)
  peers = {"jax": jx.run}
  if not args.skip_torch:
    peers["torch"] = torch_twins.train_step(SPECS[name].twin, config, classes, batch, res, on_gpu=on_gpu,
                                            tuned=tuned_torch)
  times = timing.interleaved_rounds(peers, args.rounds, args.steps, warmup=args.warmup)
  images = batch * args.steps
  row = {"model": name, "config": f"{SPECS[name].family}.py:{SPECS[name].arg}", "batch": batch, "res": res,
         "dtype": args.dtype, "classes": classes, "params": jx.params, "steps_per_round": args.steps,
         "rounds": args.rounds, "gflop_per_step": jx.flops / 1e9, "jax_compile_s": jx.compile_s,
         "xla_memory_bytes": jx.memory, "jax": timing.rate_stats(times["jax"], images)}
  if "torch" in times:
    row["torch"] = timing.rate_stats(times["torch"], images)
    row["ratio"] = timing.ratio_stats(times["jax"], times["torch"])
  return row


def parse(argv=None, prog: str = "experiments.benchmark", specs=None) -> argparse.Namespace:
  specs = specs or SPECS
  p = argparse.ArgumentParser(prog=f"python -m {prog}", description=__doc__.split("\n")[0])
  p.add_argument("--models", default=",".join(specs), help=f"comma-separated, from {', '.join(specs)}")
  p.add_argument("--batch", type=int, default=0, help="per step for the paper-size nets (default 256 on GPU, "
                 "8 on CPU; the quick-mode nets use their own)")
  p.add_argument("--rounds", type=int, default=timing.MIN_ROUNDS,
                 help=f"timed rounds per model (at least {timing.MIN_ROUNDS})")
  p.add_argument("--steps", type=int, default=0, help="steps of each peer per round (default 10 on GPU, 1 on CPU)")
  p.add_argument("--warmup", type=int, default=1, help="untimed turns of each peer before the rounds")
  p.add_argument("--res", type=int, default=0, help="input size for every model (default: per model)")
  p.add_argument("--dtype", default="", choices=["", "float32", "bfloat16"],
                 help="JAX compute dtype (default bfloat16 on GPU, float32 on CPU)")
  p.add_argument("--skip_torch", action="store_true", help="JAX only")
  p.add_argument("--keep_host_memory", action="store_true",
                 help="CPU: make glibc's malloc keep freed memory first, as training does, for JAX and PyTorch alike")
  p.add_argument("--json", default=os.path.join(RESULTS, "cpu_step.json"), help="where the record goes")
  args = p.parse_args(argv)
  names = [m for m in args.models.split(",") if m]
  unknown = [m for m in names if m not in specs]
  if unknown or not names:
    p.error(f"unknown model(s) {unknown}; choose from {', '.join(specs)}")
  if args.rounds < timing.MIN_ROUNDS:
    p.error(f"--rounds must be at least {timing.MIN_ROUNDS} (got {args.rounds})")
  if min(args.batch, args.steps, args.res, args.warmup) < 0:
    p.error("--batch, --steps, --res and --warmup must not be negative")
  args.models = names
  return args


def fill_defaults(args, on_gpu: bool) -> None:
  args.batch = args.batch or (256 if on_gpu else 8)
  args.steps = args.steps or (10 if on_gpu else 1)
  args.dtype = args.dtype or ("bfloat16" if on_gpu else "float32")


def _line(r: dict[str, Any]) -> str:
  ratio = r.get("ratio")
  tail = (f"{r['torch']['median']:9.1f} {ratio['median']:6.2f} {ratio['min']:6.2f} {ratio['max']:6.2f} "
          f"{'yes' if ratio['at_least_1'] else 'no':>4s}") if ratio else "(JAX only)"
  return f"{r['model']:14s} {r['res']:4d} {r['batch']:5d} {r['jax']['median']:9.1f} " + tail


def main(argv=None) -> dict[str, Any]:
  args = parse(argv)
  from alexnet_jax import host_memory
  # Before the backend starts, or XLA's threads miss the setting (alexnet_jax.host_memory).
  kept = bool(args.keep_host_memory and host_memory.keep_freed_memory_on_cpu())
  import jax
  on_gpu = jax.default_backend() == "gpu"
  fill_defaults(args, on_gpu)
  if not on_gpu and not args.skip_torch:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
  record: dict[str, Any] = {"kind": "train_step", "machine": timing.machine("experiments.benchmark", argv),
                            "settings": {k: v for k, v in vars(args).items() if k != "json"},
                            "host_memory_kept": kept,
                            "torch_setup": ("torch.compile + bf16 autocast + channels_last + fused SGD + "
                                            "cudnn.benchmark" if on_gpu else "eager float32"),
                            "rows": []}
  m = record["machine"]
  print(f"# {m['date']}  {m['cpu']} ({m['cores']} cores)  device {m['device']}  load {m['load_average_at_start']}")
  print(f"# {args.rounds} rounds of {args.steps} step(s) each, JAX {args.dtype}, PyTorch {record['torch_setup']}")
  print(f"{'model':14s} {'res':>4s} {'batch':>5s} {'JAX img/s':>9s} {'torch':>9s} {'ratio':>6s} {'min':>6s} "
        f"{'max':>6s} {'≥1.0':>4s}")
  for name in args.models:
    row = bench_row(name, args, on_gpu=on_gpu, tuned_torch=on_gpu)
    record["rows"].append(row)
    print(_line(row), flush=True)
  timing.write_record(args.json, record)
  print(f"# record: {os.path.relpath(args.json)}")
  return record


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  sys.exit(0 if main() else 1)
