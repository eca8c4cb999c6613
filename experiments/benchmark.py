"""Throughput benchmark: JAX train step vs PyTorch on the same device, and the input pipeline.

  python -m experiments.benchmark                              # every model, defaults for this device
  python -m experiments.benchmark --models=alexnet,resnet50 --batch=16 --steps=5
  python -m experiments.benchmark --pipeline_dir=<image folder> --json=bench.json
  python -m experiments.benchmark --models=resnet50,cifar_cnn --steps=7 --before

The models are the paper-size nets (AlexNet paper and OWT, VGG-16, GoogLeNet, ResNet-50) at
batch --batch, and the three small nets the experiments train on a CPU (the quick-mode AlexNet
at 64 px, Figure 1's CIFAR net at 32 px, the quick-mode ResNet-18 at 64 px), each at the
quick-mode batch of 64 with 10 classes. For each model it measures:
  * the jitted JAX train step (forward, backward, SGD-momentum update with weight decay, the
    non-finite guard: the same math as `alexnet_jax.runtime.train_step`, rebuilt here from
    `alexnet_jax.models` + optax so that this file imports neither TensorFlow, clu nor
    ml_collections and runs where only JAX and PyTorch are installed) on device-resident
    synthetic batches, in images/s; the FLOPs of one step from XLA's cost analysis, the
    achieved FLOP/s and, where the device's peak is known, the utilisation;
  * the same model trained by PyTorch (torchvision's model; the paper AlexNet, which
    torchvision lacks, written here with groups=2 and LRN): on GPU `torch.compile`, bf16
    autocast and channels_last; on CPU eager float32;
  * JAX and PyTorch steps take turns, one of each per round in an order that rotates from
    round to round, and each rate is the median over rounds, so all see the same background load;
  * on CPU the JAX step is compiled as training compiles it, with oneDNN for what YNNPACK
    does not take (`alexnet_jax.xla_cpu`, `config.cpu_onednn`);
  * with --before, also the JAX step as it was formulated before the CPU work (JAX's own
    convolutions and derivatives of max pooling, no stored residual-block outputs, the
    non-finite guard as an elementwise select, no oneDNN), compiled in the same process and
    timed in the same rounds.

On CPU, glibc's malloc is left as it is, as PyTorch is usually run. --keep_host_memory makes
it keep freed memory first (`alexnet_jax.host_memory`, what training does with
`config.keep_host_memory`); that setting is process-wide, so PyTorch's allocations share it
(and --before does not cover it: compare two runs).

With --store_steps=N it times the quick-mode AlexNet trained from a synthetic prepared store,
end to end (store → staging thread → device augmentation → step) against the step alone.

With --pipeline_dir it also measures decoding plus the paper's augmentation (resize to
256, random 224 crop, flip, PCA lighting, normalisation) on the folder's JPEGs: our tf.data
pipeline (`alexnet_jax.data`, needs TensorFlow) against torchvision's ImageFolder +
DataLoader with PIL doing the same work with as many worker processes as cores, and says
whether each would keep the measured train step fed; and a prepared store made from the same
images (`alexnet_jax.data.store`: uint8 256² squares read with one thread, augmentation on the
device), in images/s per core.

CPU defaults are small (batch 8, 112 px for VGG/GoogLeNet/ResNet-50) so that a 2-core
machine finishes in minutes; the output says which sizes were used.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime
import functools
import json
import os
import platform
import statistics
import sys
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from alexnet_jax import host_memory, models, optim, xla_cpu
from alexnet_jax.models import cpu_gradients

# Dense bf16 tensor-core peaks (FLOP/s) by device-kind substring; utilisation is only
# reported for these (and only for --dtype=bfloat16).
PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


class Cfg(dict):
  """The attribute view of `config.model` the model registry reads (no ml_collections needed)."""

  def __getattr__(self, name: str) -> Any:
    try:
      return self[name]
    except KeyError:
      raise AttributeError(name) from None


NUM_CLASSES = 1000
AUX_WEIGHT = 0.3
QUICK_BATCH = 64  # the batch of every quick mode (configs/common.py)

_ALEXNET = dict(name="alexnet", variant="paper", towers=2, width=1.0, fc_dim=4096, lrn=True, lrn_size=5,
                lrn_k=2.0, lrn_alpha=1e-4, lrn_beta=0.75, pool_window=3, pool_stride=2, dropout=0.5,
                act="relu", init_scheme="paper", init_std=0.01, conv1_kernel=11, conv1_stride=4,
                conv1_padding=0, remove_conv=0)


@dataclasses.dataclass(frozen=True)
class Spec:
  """One benchmarked model: its config.model fields, input size and the PyTorch twin."""
  model_cfg: dict
  res: int          # the paper's input size
  cpu_res: int      # the size used on CPU by default (smaller for the heavy nets)
  torch_name: str   # torchvision builder, or the name of a twin defined below
  batch: int = 0    # fixed batch (the quick-mode nets); 0: --batch
  classes: int = NUM_CLASSES


SPECS: dict[str, Spec] = {
    "alexnet": Spec(_ALEXNET, 227, 227, "alexnet_paper"),
    "alexnet_owt": Spec({**_ALEXNET, "variant": "owt", "towers": 1, "lrn": False, "conv1_padding": 2}, 224, 224, "alexnet"),
    "vgg16": Spec(dict(name="vgg", depth=16, bn=False, width=1.0, fc_dim=4096, dropout=0.5, pool7="adaptive"),
                  224, 112, "vgg16"),
    "googlenet": Spec(dict(name="googlenet", width=1.0, bn=True, branch3_kernel=3, lrn=False, aux_logits=True,
                           dropout=0.2, aux_dropout=0.7, init_scheme="torchvision", conv1_stride=2),
                      224, 112, "googlenet"),
    "resnet50": Spec(dict(name="resnet", depth=50), 224, 112, "resnet50"),
    # The small nets the experiments train on a CPU, as their quick modes build them (the test
    # suite checks these fields against `get_config("smoke")`), at the quick-mode batch.
    "alexnet_quick": Spec({**_ALEXNET, "width": 0.5, "fc_dim": 1024, "conv1_kernel": 5, "conv1_stride": 2,
                           "init_scheme": "he_in", "lrn_alpha": 0.331776, "tower_lrn": False},
                          64, 64, "alexnet_quick", batch=QUICK_BATCH, classes=10),
    "cifar_cnn": Spec(dict(name="cifar_cnn", channels=(32, 32, 64), kernel=5, pool_window=3, pool_stride=2,
                           act="relu", init_scheme="lecun"), 32, 32, "cifar_cnn", batch=QUICK_BATCH, classes=10),
    "resnet18_quick": Spec(dict(name="resnet", depth=18, width=0.125, stem="small", stem_stride=2),
                           64, 64, "resnet18_quick", batch=QUICK_BATCH, classes=10),
}


# ----------------------------------------------------------------------------- JAX


def make_optimizer(momentum: float = 0.9, weight_decay: float = 5e-4) -> optax.GradientTransformation:
  """The paper's SGD (as alexnet_jax.optim builds it): decay inside the update, momentum, injected lr."""
  def factory(learning_rate):
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.scale_by_learning_rate(learning_rate),
                       optax.trace(decay=momentum))
  return optax.inject_hyperparams(factory)(learning_rate=0.01)


def select_guarded_update(tx: optax.GradientTransformation, grads, opt_state, params, loss: jax.Array):
  """`optim.guarded_update` as it was first written, for `--before`: the new state is computed
  and stored, then chosen elementwise against the old one."""
  updates, new_opt_state = tx.update(grads, opt_state, params)
  new_params = optax.apply_updates(params, updates)
  grad_norm = optax.tree.norm(grads)
  params_ok = jax.tree.reduce(jnp.logical_and, jax.tree.map(lambda p: jnp.isfinite(p).all(), new_params),
                              jnp.array(True))
  finite = jnp.isfinite(loss) & jnp.isfinite(grad_norm) & params_ok
  pick = lambda new, old: jax.tree.map(lambda n, o: jnp.where(finite, n, o), new, old)  # noqa: E731
  return pick(new_params, params), pick(new_opt_state, opt_state), finite, grad_norm


def train_step(state: dict, images: jax.Array, labels: jax.Array, key: jax.Array, *, apply_fn: Callable,
               tx: optax.GradientTransformation, guard: Callable = optim.guarded_update) -> tuple[dict, jax.Array]:
  """One step with runtime.train_step's math: CE (+0.3 × aux CE), SGD update, `optim.guarded_update`."""
  step_key = jax.random.fold_in(key, state["step"])
  has_bn = bool(state["batch_stats"])

  def loss_fn(params):
    variables = {"params": params, **({"batch_stats": state["batch_stats"]} if has_bn else {})}
    logits, mutated = apply_fn(variables, images, train=True, rngs={"dropout": step_key},
                               mutable=["batch_stats", "aux"])
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    for aux in jax.tree.leaves(mutated.get("aux", {})):
      loss = loss + AUX_WEIGHT * optax.softmax_cross_entropy_with_integer_labels(
          aux.astype(jnp.float32), labels).mean()
    return loss, mutated.get("batch_stats", state["batch_stats"])

  (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(state["params"])
  params, opt_state, finite, _ = guard(tx, grads, state["opt_state"], state["params"], loss)
  stats = jax.tree.map(lambda n, o: jnp.where(finite, n, o), stats, state["batch_stats"])
  return {"params": params, "opt_state": opt_state, "batch_stats": stats, "step": state["step"] + 1}, loss


@dataclasses.dataclass
class JaxBench:
  step: Callable[[], Any]
  flops: float
  num_params: int


def build_jax(name: str, batch: int, res: int, dtype: Any, before: bool = False) -> JaxBench:
  """Jitted, donated train step on device-resident synthetic data; XLA's FLOP count per step.
  `before`: the step as formulated before the CPU work (see `--before`)."""
  spec = SPECS[name]
  model = models.build_model(Cfg(spec.model_cfg), spec.classes, dtype)
  tx = make_optimizer()
  key = jax.random.key(0)

  @jax.jit
  def init(key):
    variables = model.init({"params": key, "dropout": key}, jnp.zeros((1, res, res, 3)), train=False)
    params = variables["params"]
    return {"params": params, "opt_state": tx.init(params), "batch_stats": variables.get("batch_stats", {}),
            "step": jnp.zeros((), jnp.int32)}

  state = init(key)
  rng = np.random.default_rng(0)
  images = jax.device_put(rng.normal(size=(batch, res, res, 3)).astype(np.float32) * 50)
  labels = jax.device_put(rng.integers(0, spec.classes, batch).astype(np.int32))
  fn = jax.jit(functools.partial(train_step, apply_fn=model.apply, tx=tx,
                                 guard=select_guarded_update if before else optim.guarded_update), donate_argnums=0,
               compiler_options=xla_cpu.compiler_options(not before))
  with cpu_gradients.xla_gradients() if before else contextlib.nullcontext():
    compiled = fn.lower(state, images, labels, key).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  flops = float((cost or {}).get("flops", float("nan")))
  holder = {"state": state}

  def step():
    holder["state"], loss = compiled(holder["state"], images, labels, key)
    return jax.block_until_ready(loss)

  n = sum(int(np.prod(p.shape)) for p in jax.tree.leaves(state["params"]))
  return JaxBench(step, flops, n)


# ----------------------------------------------------------------------------- PyTorch


def _torch_alexnet_paper(num_classes: int, width: float = 1.0, fc_dim: int = 4096, conv1: tuple = (11, 4),
                         lrn_alpha: float = 1e-4):
  """The 2012 net in PyTorch: two towers as groups=2, LRN (torch's alpha is n × the paper's)."""
  from torch import nn
  c1, c2, c3, c4, c5 = (int(round(c * width)) for c in (96, 256, 384, 384, 256))
  fc = int(round(fc_dim * width))
  lrn = lambda: nn.LocalResponseNorm(5, alpha=5 * lrn_alpha, beta=0.75, k=2.0)  # noqa: E731
  features = nn.Sequential(
      nn.Conv2d(3, c1, conv1[0], conv1[1]), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
      nn.Conv2d(c1, c2, 5, padding=2, groups=2), nn.ReLU(inplace=True), lrn(), nn.MaxPool2d(3, 2),
      nn.Conv2d(c2, c3, 3, padding=1), nn.ReLU(inplace=True),
      nn.Conv2d(c3, c4, 3, padding=1, groups=2), nn.ReLU(inplace=True),
      nn.Conv2d(c4, c5, 3, padding=1, groups=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2), nn.Flatten())
  return nn.Sequential(
      features, nn.LazyLinear(fc), nn.ReLU(inplace=True), nn.Dropout(0.5),
      nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(fc, num_classes))


def _torch_cifar_cnn(num_classes: int):
  """Figure 1's four-layer net (alexnet_jax.models.cifar_cnn): three conv5-ReLU-pool, one linear."""
  from torch import nn
  blocks, cin = [], 3
  for c in (32, 32, 64):
    blocks += [nn.Conv2d(cin, c, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin = c
  return nn.Sequential(*blocks, nn.Flatten(), nn.LazyLinear(num_classes))


def _torch_resnet18_quick(num_classes: int, width: float = 0.125):
  """Quick-mode ResNet-18: a 3×3/2 stem without max-pool, basic blocks at `width` × (64..512)."""
  from torch import nn

  def conv_bn(cin, cout, stride, act=True):
    mods = [nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout)]
    return nn.Sequential(*mods, *([nn.ReLU(inplace=True)] if act else []))

  class Block(nn.Module):
    def __init__(self, cin, cout, stride):
      super().__init__()
      self.body = nn.Sequential(conv_bn(cin, cout, stride), conv_bn(cout, cout, 1, act=False))
      self.short = (nn.Identity() if stride == 1 and cin == cout else
                    nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x):
      return (self.body(x) + self.short(x)).relu_()

  planes = [int(round(p * width)) for p in (64, 128, 256, 512)]
  layers, cin = [conv_bn(3, planes[0], 2)], planes[0]
  for stage, p in enumerate(planes):
    layers += [Block(cin, p, 2 if stage else 1), Block(p, p, 1)]
    cin = p
  return nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(cin, num_classes))


def torch_model(name: str, res: int, device: Any = "cpu"):
  """The PyTorch twin of SPECS[name], on `device`, in training mode, its lazy layers sized for `res`."""
  import torch
  import torchvision
  spec = SPECS[name]
  m = spec.model_cfg
  if spec.torch_name in ("alexnet_paper", "alexnet_quick"):
    model = _torch_alexnet_paper(spec.classes, m["width"], m["fc_dim"], (m["conv1_kernel"], m["conv1_stride"]),
                                 m["lrn_alpha"])
  elif spec.torch_name == "cifar_cnn":
    model = _torch_cifar_cnn(spec.classes)
  elif spec.torch_name == "resnet18_quick":
    model = _torch_resnet18_quick(spec.classes, m["width"])
  elif spec.torch_name == "googlenet":
    model = torchvision.models.googlenet(num_classes=spec.classes, aux_logits=True, init_weights=False)
  else:
    model = getattr(torchvision.models, spec.torch_name)(num_classes=spec.classes)
  model = model.to(device).eval()
  if any(isinstance(mod, torch.nn.modules.lazy.LazyModuleMixin) for mod in model.modules()):
    with torch.no_grad():  # give the lazy linear layers their input size
      model(torch.zeros(1, 3, res, res, device=device))
  return model.train()


def build_torch(name: str, batch: int, res: int, on_gpu: bool) -> Callable[[], Any]:
  """PyTorch train step: eager fp32 on CPU; torch.compile + bf16 autocast + channels_last on GPU."""
  import torch
  spec = SPECS[name]
  device = torch.device("cuda" if on_gpu else "cpu")
  model = torch_model(name, res, device)
  if on_gpu:
    model = model.to(memory_format=torch.channels_last)
  opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
  x = torch.randn(batch, 3, res, res, device=device) * 50
  if on_gpu:
    x = x.contiguous(memory_format=torch.channels_last)
  y = torch.randint(0, spec.classes, (batch,), device=device)
  ce = torch.nn.CrossEntropyLoss()

  def loss_fn(x, y):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=on_gpu):
      out = model(x)
      if isinstance(out, tuple):  # GoogLeNetOutputs(logits, aux2, aux1)
        return ce(out[0], y) + AUX_WEIGHT * (ce(out[1], y) + ce(out[2], y))
      return ce(out, y)

  compute = torch.compile(loss_fn) if on_gpu else loss_fn

  def step():
    opt.zero_grad(set_to_none=True)
    loss = compute(x, y)
    loss.backward()
    opt.step()
    if on_gpu:
      torch.cuda.synchronize()
    return loss

  return step


# ----------------------------------------------------------------------------- pipeline


def _split_dir(root: str) -> str:
  for split in ("train", "val", "validation"):
    if os.path.isdir(os.path.join(root, split)):
      return split
  raise SystemExit(f"--pipeline_dir={root!r} must hold <split>/<class>/<image> (a train or val folder).")


def pipeline_ours(root: str, batch: int, batches: int) -> float:
  """Images/s of alexnet_jax.data's train pipeline with the paper's augmentation."""
  from alexnet_jax.configs import alexnet as alexnet_config
  from alexnet_jax.data import input_pipeline
  split = _split_dir(root)
  config = alexnet_config.get_config(f"data={root},res=224")
  config.unlock()
  config.train_split = config.eval_split = split
  config.batch_size = batch
  it = input_pipeline.train_batches(config)
  next(it)  # start-up (listing, the first decode) is not timed
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch / (time.perf_counter() - t)


def pipeline_torch(root: str, batch: int, batches: int, workers: int) -> float:
  """Images/s of torchvision ImageFolder + DataLoader doing the same work with PIL."""
  import torch
  from torchvision import datasets, transforms
  eigval = torch.tensor([0.2175, 0.0188, 0.0045])
  eigvec = torch.tensor([[-0.5675, 0.7192, 0.4009], [-0.5808, -0.0045, -0.8140], [-0.5836, -0.6948, 0.4203]])
  mean = torch.tensor([123.68, 116.779, 103.939]).view(3, 1, 1)

  def lighting_and_mean(img: torch.Tensor) -> torch.Tensor:
    alpha = torch.randn(3) * 0.1
    shift = (eigvec @ (alpha * eigval)) * 255.0
    return img.float() + shift.view(3, 1, 1) - mean

  tf = transforms.Compose([transforms.Resize(256), transforms.RandomCrop(224), transforms.RandomHorizontalFlip(),
                           transforms.PILToTensor(), transforms.Lambda(lighting_and_mean)])
  ds = datasets.ImageFolder(os.path.join(root, _split_dir(root)), transform=tf)
  loader = torch.utils.data.DataLoader(ds, batch_size=batch, shuffle=True, num_workers=workers, drop_last=True)
  it = iter(loader)
  next(it)  # worker start-up is not timed
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch / (time.perf_counter() - t)


# ----------------------------------------------------------------------------- report


def pipeline_store(root: str, batch: int, batches: int, store_dir: str) -> float:
  """Host rate of a prepared store (prepared from the same folder first, not timed): uint8 batches
  in images/s, one reading thread; crop, flip, lighting and normalisation happen on the device."""
  from alexnet_jax.configs import alexnet as alexnet_config
  from alexnet_jax.data import prepare, store
  config = alexnet_config.get_config(f"data={root},res=224")
  config.unlock()
  config.train_split, config.eval_split = _split_dir(root), _split_dir(root)
  config.batch_size, config.input.pipeline, config.input.store_dir = batch, "store", store_dir
  config.lock()
  prepare.prepare(config)
  it = store.train_batches(config)
  next(it)
  t = time.perf_counter()
  for _ in range(batches):
    next(it)
  return batches * batch / (time.perf_counter() - t)


def store_end_to_end(config, steps: int, num_train: int, num_classes: int = 1000) -> dict[str, float]:
  """Training from a synthetic prepared store through the real trainer: end-to-end vs step-only img/s.

  `config` must select the store pipeline; a store of `num_train` random uint8 images (and one
  eval batch) is written at its stored size first. Step-only repeats one batch already on the
  devices; end-to-end reads every batch from the store through the staging thread.
  """
  from alexnet_jax import runtime
  from alexnet_jax.data import prepare, store
  size = store.stored_size(config)
  rng = np.random.default_rng(0)
  classes = [f"class{i}" for i in range(num_classes)]
  images = rng.integers(0, 256, (num_train, size, size, 3), dtype=np.uint8)
  labels = rng.integers(0, len(classes), num_train).astype(np.int32)
  n_eval = config.eval_batch_size
  prepare.write_arrays(config, {config.train_split: (images, labels),
                                config.eval_split: (images[:n_eval], labels[:n_eval])}, classes)
  del images
  trainer = runtime.Runtime(config)
  state = trainer.init_state()
  batches = trainer.device_batches(store.train_batches(config), config.input.prefetch)
  first = next(batches)
  for _ in range(2):  # compile and warm up
    state, _, finite = trainer.train_step(state, first, trainer.base_key)
  jax.block_until_ready(finite)
  t = time.perf_counter()
  for _ in range(steps):
    state, _, finite = trainer.train_step(state, first, trainer.base_key)
  jax.block_until_ready((state.params, finite))
  step_only = steps * config.batch_size / (time.perf_counter() - t)
  t = time.perf_counter()
  for _ in range(steps):
    state, _, finite = trainer.train_step(state, next(batches), trainer.base_key)
  jax.block_until_ready((state.params, finite))
  end_to_end = steps * config.batch_size / (time.perf_counter() - t)
  batches.close()
  return {"step_only_img_s": step_only, "end_to_end_img_s": end_to_end, "ratio": end_to_end / step_only,
          "batch": config.batch_size, "stored_size": size, "image_size": config.input.image_size}


def quick_store_end_to_end(steps: int, store_dir: str) -> dict[str, float]:
  """The quick-mode AlexNet (the README's first command) from a synthetic 72² store."""
  from alexnet_jax.configs import alexnet as alexnet_config
  config = alexnet_config.get_config("smoke")
  config.unlock()
  config.dataset, config.input.store_dir = "synthetic", store_dir
  config.lock()
  return store_end_to_end(config, steps, num_train=config.batch_size * (steps + 4), num_classes=10)


def machine() -> dict[str, Any]:
  cpu = platform.processor() or "unknown CPU"
  try:
    with open("/proc/cpuinfo") as f:
      cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
  except (OSError, StopIteration):
    pass
  dev = jax.devices()[0]
  versions = {"python": platform.python_version(), "jax": jax.__version__}
  for mod in ("flax", "optax", "torch", "torchvision"):
    try:
      versions[mod] = __import__(mod).__version__
    except ImportError:
      versions[mod] = "not installed"
  return {"cpu": cpu, "cores": os.cpu_count(), "device": f"{dev.platform}:{dev.device_kind}",
          "device_count": jax.device_count(), "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
          "versions": versions, "command": "python -m experiments.benchmark " + " ".join(sys.argv[1:])}


def peak_flops(device_kind: str, dtype: str) -> float | None:
  if dtype != "bfloat16":
    return None
  return next((v for k, v in PEAK_BF16.items() if k in device_kind), None)


def bench_model(name: str, args, on_gpu: bool, info: dict) -> dict[str, Any]:
  spec = SPECS[name]
  res = args.res or (spec.res if on_gpu else spec.cpu_res)
  dtype = jnp.bfloat16 if args.dtype == "bfloat16" else jnp.float32
  batch = spec.batch or args.batch
  jx = build_jax(name, batch, res, dtype)
  jx.step()  # first call after compile: allocation, warm caches
  base = None
  if args.before:
    base = build_jax(name, batch, res, dtype, before=True)
    base.step()
  th = None
  if not args.skip_torch:
    th = build_torch(name, batch, res, on_gpu)
    for _ in range(3 if on_gpu else 1):  # compile / warm up
      th()
  steps = {"jax": jx.step, **({"before": base.step} if base else {}), **({"torch": th} if th else {})}
  times: dict[str, list[float]] = {k: [] for k in steps}
  order = list(steps)
  for r in range(args.steps):
    # One step of each per round, the order rotated every round, so that all see the same
    # background load and none always runs right after the same other one.
    for k in order[r % len(order):] + order[:r % len(order)]:
      t = time.perf_counter()
      steps[k]()
      times[k].append(time.perf_counter() - t)
  jt, bt, tt = times["jax"], times.get("before", []), times.get("torch", [])
  j_step = statistics.median(jt)
  row = {"model": name, "batch": batch, "res": res, "dtype": args.dtype, "params": jx.num_params,
         "jax_img_s": batch / j_step, "jax_step_ms": 1e3 * j_step, "gflop_per_step": jx.flops / 1e9,
         "achieved_tflop_s": jx.flops / j_step / 1e12}
  peak = peak_flops(info["device"], args.dtype)
  row["utilisation"] = row["achieved_tflop_s"] * 1e12 / peak if peak else None
  if bt:
    b_step = statistics.median(bt)
    row.update(before_img_s=batch / b_step, after_over_before=b_step / j_step)
  if tt:
    t_step = statistics.median(tt)
    row.update(torch_img_s=batch / t_step, torch_step_ms=1e3 * t_step, jax_over_torch=t_step / j_step)
  return row


def parse(argv=None) -> argparse.Namespace:
  p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  p.add_argument("--models", default=",".join(SPECS), help=f"comma-separated, from {', '.join(SPECS)}")
  p.add_argument("--batch", type=int, default=0, help="per step (default 256 on GPU, 8 on CPU)")
  p.add_argument("--steps", type=int, default=0, help="timed rounds (default 20 on GPU, 3 on CPU)")
  p.add_argument("--res", type=int, default=0, help="input size for every model (default: per model)")
  p.add_argument("--dtype", default="", choices=["", "float32", "bfloat16"],
                 help="JAX compute dtype (default bfloat16 on GPU, float32 on CPU)")
  p.add_argument("--skip_torch", action="store_true", help="JAX only")
  p.add_argument("--before", action="store_true",
                 help="also time the JAX step as formulated before the CPU work (JAX's own convolutions and "
                 "derivatives of max pooling, `cpu_gradients.xla_gradients`; the non-finite guard as an elementwise "
                 "select; no oneDNN), in turn with the others, in the same process")
  p.add_argument("--keep_host_memory", action="store_true",
                 help="CPU: make glibc's malloc keep freed memory for reuse, as training does "
                 "(alexnet_jax.host_memory), for JAX and PyTorch alike (default: malloc as it is)")
  p.add_argument("--pipeline_dir", default="", help="image folder <split>/<class>/<image> for the pipeline test")
  p.add_argument("--pipeline_batches", type=int, default=8)
  p.add_argument("--store_dir", default="", help="where the store benchmarks prepare their stores "
                 "(default: a temporary folder, removed afterwards)")
  p.add_argument("--store_steps", type=int, default=0,
                 help="> 0: also time the quick-mode AlexNet from a prepared store, end to end vs step only")
  p.add_argument("--json", default="", help="also write the results here")
  args = p.parse_args(argv)
  unknown = [m for m in args.models.split(",") if m and m not in SPECS]
  if unknown:
    p.error(f"unknown model(s) {unknown}; choose from {', '.join(SPECS)}")
  return args


def main(argv=None) -> dict[str, Any]:
  args = parse(argv)
  # Before the backend starts, or XLA's threads miss the setting (alexnet_jax.host_memory).
  kept = args.keep_host_memory and host_memory.keep_freed_memory_on_cpu()
  on_gpu = jax.default_backend() == "gpu"
  args.batch = args.batch or (256 if on_gpu else 8)
  args.steps = args.steps or (20 if on_gpu else 3)
  args.dtype = args.dtype or ("bfloat16" if on_gpu else "float32")
  if not on_gpu and not args.skip_torch:
    import torch
    torch.set_num_threads(os.cpu_count() or 1)
  info = machine()
  print(f"# {info['date']}  CPU: {info['cpu']} ({info['cores']} cores)  device: {info['device']} "
        f"× {info['device_count']}")
  print("# versions: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
  print(f"# command: {info['command']}")
  print(f"# batch {args.batch} (the quick-mode nets: {QUICK_BATCH}), {args.steps} timed rounds (median), JAX dtype {args.dtype}; PyTorch "
        + ("torch.compile + bf16 autocast + channels_last" if on_gpu else "eager float32"))
  if not on_gpu:
    print("# host memory: " + ("freed memory kept for reuse (--keep_host_memory), for both" if kept
                               else "glibc malloc as it is, for both (--keep_host_memory: as training keeps it)"))
  rows = []
  hdr = f"{'model':14s} {'res':>4s} {'batch':>5s} {'params':>8s} {'JAX img/s':>10s} {'torch img/s':>11s} {'JAX/torch':>9s} " \
        f"{'GFLOP/step':>10s} {'TFLOP/s':>8s} {'util':>6s}"
  print(hdr)
  for name in filter(None, args.models.split(",")):
    r = bench_model(name, args, on_gpu, info)
    rows.append(r)
    util = f"{100 * r['utilisation']:.1f}%" if r["utilisation"] else "n/a"
    print(f"{name:14s} {r['res']:4d} {r['batch']:5d} {r['params'] / 1e6:7.1f}M {r['jax_img_s']:10.1f} "
          f"{r.get('torch_img_s', float('nan')):11.1f} {r.get('jax_over_torch', float('nan')):9.2f} "
          f"{r['gflop_per_step']:10.1f} {r['achieved_tflop_s']:8.3f} {util:>6s}"
          + (f"  (before: {r['before_img_s']:.1f} img/s; after/before {r['after_over_before']:.2f}×)"
             if "before_img_s" in r else ""), flush=True)
  out: dict[str, Any] = {"machine": info, "args": vars(args), "host_memory_kept": kept, "train_step": rows}
  import tempfile
  scratch = tempfile.TemporaryDirectory(prefix="alexnet_jax_bench_")
  store_dir = args.store_dir or scratch.name
  if args.pipeline_dir:
    cores = os.cpu_count() or 1
    ours = pipeline_ours(args.pipeline_dir, 64, args.pipeline_batches)
    theirs = pipeline_torch(args.pipeline_dir, 64, args.pipeline_batches, cores)
    stored = pipeline_store(args.pipeline_dir, 64, args.pipeline_batches, store_dir)
    out["pipeline"] = {"dir": os.path.basename(os.path.normpath(args.pipeline_dir)), "cores": cores,
                       "ours_img_s": ours, "torch_img_s": theirs, "ours_per_core": ours / cores,
                       "torch_per_core": theirs / cores, "ratio": ours / theirs,
                       "store_img_s": stored, "store_per_core": stored, "store_over_torch_per_core":
                       stored / (theirs / cores)}
    print(f"# input pipeline (decode + resize 256 + random 224 crop + flip + PCA lighting, batch 64, "
          f"{cores} cores): tf.data {ours:.1f} img/s ({ours / cores:.1f}/core), torchvision DataLoader "
          f"({cores} workers) {theirs:.1f} img/s ({theirs / cores:.1f}/core); ratio {ours / theirs:.2f}")
    print(f"# prepared store at 256² (one reading thread; augmentation on the device): {stored:.1f} img/s "
          f"per core, {stored / (theirs / cores):.1f}× the DataLoader per core")
    for r in rows:
      fed = "yes" if ours >= r["jax_img_s"] else f"no (needs {r['jax_img_s'] / ours:.1f}× more input throughput)"
      print(f"#   keeps {r['model']} fed ({r['jax_img_s']:.1f} img/s at res {r['res']}): {fed}")
  if args.store_steps:
    e2e = quick_store_end_to_end(args.store_steps, store_dir)
    out["store_end_to_end"] = e2e
    print(f"# quick-mode AlexNet from a 72² store: end to end {e2e['end_to_end_img_s']:.1f} img/s, step only "
          f"{e2e['step_only_img_s']:.1f} img/s ({100 * e2e['ratio']:.0f}%)")
  scratch.cleanup()
  if args.json:
    with open(args.json, "w") as f:
      json.dump(out, f, indent=2)
  return out


if __name__ == "__main__":
  main()
