"""GPU benchmark: JAX vs PyTorch train steps, and training from a prepared store end to end.

  python -m experiments.gpu_bench                    # one GPU: batch 256, paper input sizes, bf16
  python -m experiments.gpu_bench --json=gpu.json
  python -m experiments.gpu_bench --tiny             # CPU at tiny sizes (what CI runs)

1. Train steps, JAX bf16 against PyTorch `torch.compile` + bf16 autocast + channels_last, for
   AlexNet (the 2012 two-tower net and the one-weird-trick variant), VGG-16, GoogLeNet and
   ResNet-50 at their paper input sizes and batch 256; JAX and PyTorch steps alternate in this
   one process so both see the same machine (experiments.benchmark.bench_model).
2. The paper AlexNet trained through the real trainer from a synthetic prepared store (random
   uint8 256² squares, random 227 crops, flip, PCA lighting and normalisation on the device):
   end-to-end images/s against the step alone on a batch already on the device.

Imports no TensorFlow: a GPU host needs only JAX (and PyTorch for the comparison rows). The
output names the card and the date; on CPU it runs at tiny sizes and says so.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import tempfile
from typing import Any

import jax

from experiments import benchmark

MODELS = ("alexnet", "alexnet_owt", "vgg16", "googlenet", "resnet50")
# --tiny: input sizes small enough for a CPU (per model; AlexNet's fixed FC input needs 227).
TINY_RES = {"alexnet": 227, "alexnet_owt": 64, "vgg16": 32, "googlenet": 112, "resnet50": 64}


def parse(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, from {', '.join(MODELS)}")
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--steps", type=int, default=20, help="timed rounds per model (median)")
  p.add_argument("--e2e_steps", type=int, default=50, help="timed steps of the end-to-end run")
  p.add_argument("--tiny", action="store_true", help="CPU smoke run: batch 2, 1 round, tiny sizes")
  p.add_argument("--skip_torch", action="store_true")
  p.add_argument("--json", default="")
  args = p.parse_args(argv)
  unknown = [m for m in args.models.split(",") if m and m not in MODELS]
  if unknown:
    p.error(f"unknown model(s) {unknown}; choose from {', '.join(MODELS)}")
  if args.tiny:
    args.batch, args.steps, args.e2e_steps = 2, 1, 2
  return args


def end_to_end(args, store_dir: str) -> dict[str, float]:
  """The paper AlexNet (bf16 on GPU) from a synthetic store through `alexnet_jax.runtime.Runtime`."""
  from alexnet_jax.configs import alexnet as alexnet_config
  config = alexnet_config.get_config("smoke" if args.tiny else "bf16")
  config.unlock()
  config.dataset, config.input.pipeline, config.input.store_dir = "synthetic", "store", store_dir
  config.batch_size = config.eval_batch_size = (8 if args.tiny else args.batch)
  config.lock()
  return benchmark.store_end_to_end(config, args.e2e_steps, num_train=config.batch_size * (args.e2e_steps + 4))


def main(argv=None) -> dict[str, Any]:
  args = parse(argv)
  on_gpu = jax.default_backend() == "gpu"
  info = benchmark.machine()
  card = jax.devices()[0].device_kind
  date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
  print(f"# {date}  device: {card} ({info['device']}) × {info['device_count']}  "
        f"{'' if on_gpu else '(no GPU: tiny CPU run, not a measurement)'}")
  print("# versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
  rows = []
  for name in filter(None, args.models.split(",")):
    spec = benchmark.SPECS[name]
    bench_args = argparse.Namespace(batch=args.batch, steps=args.steps, dtype="bfloat16" if on_gpu else "float32",
                                    res=TINY_RES[name] if args.tiny else spec.res, skip_torch=args.skip_torch,
                                    before=False)
    r = benchmark.bench_model(name, bench_args, on_gpu, info)
    rows.append(r)
    print(f"{name:12s} res {r['res']:3d} batch {r['batch']:3d}: JAX {r['jax_img_s']:9.1f} img/s, PyTorch "
          f"{r.get('torch_img_s', float('nan')):9.1f} img/s, JAX/PyTorch {r.get('jax_over_torch', float('nan')):.2f}",
          flush=True)
  with tempfile.TemporaryDirectory(prefix="alexnet_jax_gpu_bench_") as store_dir:
    e2e = end_to_end(args, store_dir)
  print(f"end to end from a {e2e['stored_size']}² store, batch {e2e['batch']}, crop {e2e['image_size']}: "
        f"{e2e['end_to_end_img_s']:.1f} img/s vs step only {e2e['step_only_img_s']:.1f} img/s "
        f"({100 * e2e['ratio']:.0f}%)")
  out = {"card": card, "date": date, "on_gpu": on_gpu, "machine": info, "train_step": rows, "end_to_end": e2e}
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=2)
  return out


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  main()
