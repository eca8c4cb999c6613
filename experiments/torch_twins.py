"""The PyTorch peers of the benchmarked networks and their train step, set up as PyTorch runs best.

torchvision has AlexNet OWT, VGG-16, GoogLeNet and ResNet-50; the paper AlexNet (two towers as
groups=2, LRN), ZFNet and the quick-mode nets are written here from `config.model`'s fields.
The step: cross-entropy (+ the auxiliary heads' loss × the config's weight), then SGD with
momentum and weight decay added to the gradient, which with a constant rate is the update of
`alexnet_jax.optim` (v ← μ·v + (g + λ·w); w ← w − ε·v, every parameter decayed).
On a GPU: `cudnn.benchmark`, channels_last, bf16 autocast, `torch.compile` of the model and a
fused SGD step; on a CPU (`tuned=False`) eager float32, as PyTorch is usually run there.
"""

from __future__ import annotations

from typing import Any, Callable


def alexnet_paper(num_classes: int, width: float = 1.0, fc_dim: int = 4096, conv1: tuple = (11, 4),
                  lrn_alpha: float = 1e-4):
  """The 2012 net: two towers as groups=2, LRN across all channels (torch's alpha is n × the paper's)."""
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
  return nn.Sequential(features, nn.LazyLinear(fc), nn.ReLU(inplace=True), nn.Dropout(0.5),
                       nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(0.5), nn.Linear(fc, num_classes))


def zfnet(num_classes: int, m: Any):
  """ZFNet as `alexnet_jax.models.zfnet` builds it: ceil-mode pools, LRN after pools 1 and 2."""
  from torch import nn
  ch = lambda c: max(1, int(round(c * m.width)))  # noqa: E731
  lrn = lambda: nn.LocalResponseNorm(m.lrn_size, alpha=m.lrn_size * m.lrn_alpha, beta=m.lrn_beta,  # noqa: E731
                                     k=m.lrn_k)
  geometry = [(96, m.conv1_kernel, m.conv1_stride, m.conv1_padding), (256, 5, m.conv2_stride, 0),
              (384, 3, 1, 1), (384, 3, 1, 1), (256, 3, 1, 1)]
  mods, cin = [], 3
  for i, (c, k, s, p) in enumerate(geometry, start=1):
    mods += [nn.Conv2d(cin, ch(c), k, s, p), nn.ReLU(inplace=True)]
    mods += [nn.MaxPool2d(3, 2, ceil_mode=True)] if i in (1, 2, 5) else []
    mods += [lrn()] if m.lrn and i in (1, 2) else []
    cin = ch(c)
  fc = ch(m.fc_dim)
  return nn.Sequential(*mods, nn.Flatten(), nn.LazyLinear(fc), nn.ReLU(inplace=True), nn.Dropout(m.dropout),
                       nn.Linear(fc, fc), nn.ReLU(inplace=True), nn.Dropout(m.dropout), nn.Linear(fc, num_classes))


def cifar_cnn(num_classes: int):
  """Figure 1's four-layer net: three conv5-ReLU-pool, one linear."""
  from torch import nn
  blocks, cin = [], 3
  for c in (32, 32, 64):
    blocks += [nn.Conv2d(cin, c, 5, padding=2), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin = c
  return nn.Sequential(*blocks, nn.Flatten(), nn.LazyLinear(num_classes))


def resnet18_quick(num_classes: int, width: float = 0.125):
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


def model(twin: str, config, num_classes: int, res: int, device: Any = "cpu"):
  """The PyTorch twin named `twin` of `config.model`, on `device`, in training mode, lazy layers sized."""
  import torch
  import torchvision
  m = config.model
  if twin == "alexnet_paper":
    net = alexnet_paper(num_classes, m.width, m.fc_dim, (m.conv1_kernel, m.conv1_stride), m.lrn_alpha)
  elif twin == "zfnet":
    net = zfnet(num_classes, m)
  elif twin == "cifar_cnn":
    net = cifar_cnn(num_classes)
  elif twin == "resnet18_quick":
    net = resnet18_quick(num_classes, m.width)
  elif twin == "googlenet":
    net = torchvision.models.googlenet(num_classes=num_classes, aux_logits=True, init_weights=False)
  else:
    net = getattr(torchvision.models, twin)(num_classes=num_classes)
  net = net.to(device).eval()
  if any(isinstance(mod, torch.nn.modules.lazy.LazyModuleMixin) for mod in net.modules()):
    with torch.no_grad():
      net(torch.zeros(1, 3, res, res, device=device))
  return net.train()


def train_step(twin: str, config, num_classes: int, batch: int, res: int, *, on_gpu: bool,
               tuned: bool) -> Callable[[int], Any]:
  """`run(n)`: n PyTorch train steps on one resident synthetic batch, synchronised at the end."""
  import torch
  device = torch.device("cuda" if on_gpu else "cpu")
  if tuned:
    torch.backends.cudnn.benchmark = True
  net = model(twin, config, num_classes, res, device)
  fmt = torch.channels_last if tuned else torch.contiguous_format
  net = net.to(memory_format=fmt)
  opt_cfg = config.optimizer
  fused = {"fused": True} if tuned and on_gpu else {}
  opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=opt_cfg.momentum, weight_decay=opt_cfg.weight_decay,
                        nesterov=bool(opt_cfg.nesterov), **fused)
  gen = torch.Generator(device="cpu").manual_seed(0)
  x = (torch.randn(batch, 3, res, res, generator=gen) * 50).to(device).contiguous(memory_format=fmt)
  y = torch.randint(0, num_classes, (batch,), generator=gen).to(device)
  ce = torch.nn.CrossEntropyLoss()
  aux_weight = float(config.aux_loss_weight)

  def loss_fn(x, y):
    with torch.autocast(device.type, dtype=torch.bfloat16, enabled=tuned):
      out = net(x)
      if isinstance(out, tuple):  # GoogLeNetOutputs(logits, aux2, aux1)
        return ce(out[0], y) + aux_weight * (ce(out[1], y) + ce(out[2], y))
      return ce(out, y)

  compute = torch.compile(loss_fn) if tuned else loss_fn

  def run(n: int):
    for _ in range(n):
      opt.zero_grad(set_to_none=True)
      loss = compute(x, y)
      loss.backward()
      opt.step()
    if on_gpu:
      torch.cuda.synchronize()
    return loss

  return run


def peak_memory(reset: bool = False) -> int | None:
  """torch.cuda.max_memory_allocated (bytes) since the last reset; None off a GPU."""
  import torch
  if not torch.cuda.is_available():
    return None
  torch.cuda.init()
  if reset:
    torch.cuda.reset_peak_memory_stats()
    return None
  return int(torch.cuda.max_memory_allocated())
