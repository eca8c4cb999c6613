"""VGG as trained in Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition" (ICLR 2015).

The paper's recipe (Sec. 3.1): SGD with momentum 0.9, batch 256, weight decay 5e-4,
dropout 0.5 in fc6 and fc7, learning rate 1e-2 divided by 10 when the validation
accuracy stopped improving (three times in all), training stopped after 370K
iterations (74 epochs); 224×224 random crops of rescaled images with horizontal
flips and AlexNet's RGB colour shift; net A initialised from N(0, 1e-2), deeper nets
from A's trained layers. Scale jittering (training side S drawn from [256, 512]) is
approximated here by a fixed S (`input.resize_size`, 256) with random crops — the
input pipeline has no per-image random rescale; `aug=inception` (random-resized
crops) is the closest multi-scale alternative. Conv layers use Kaiming init
(torchvision's), which trains D and E from scratch without the staged initialisation.

Reported (ILSVRC-2012 validation, error top-1 / top-5): single-scale test, Table 3:
A (VGG-11) 29.6 / 10.4, B (VGG-13) 28.7 / 9.9 (S = 256); D (VGG-16) 25.6 / 8.1 and
E (VGG-19) 25.5 / 8.0 (S jittered in [256, 512]); dense + multi-crop, Table 5: D
24.4 / 7.2, E 24.4 / 7.1. The D+E ensemble reached 6.8% top-5 on the test set.
BatchNorm variants (`bn=True`) are torchvision's, not the paper's.

Arguments (besides those in `configs/common.py`):
  depth=16       11 | 13 | 16 | 19 (configurations A, B, D, E)
  bn=False       BatchNorm after every conv (torchvision's vgg*_bn)
  dropout=0.5    dropout rate in fc6 and fc7
  width=1.0      channel multiplier (convs and FC layers)
  pool7=adaptive adaptive (torch's 7×7 adaptive average pool) | flatten (small images)
  norm=mean      input normalisation: mean (subtract the ImageNet mean, as the paper) |
                 torchvision (mean and std) | inception (scale to [-1, 1])
  sched=plateau  plateau | step | cosine
  lr=0.01        base learning rate

Examples:
  python main.py --config=configs/vgg.py:depth=16
  python main.py --config=configs/vgg.py:depth=11,bn=True,smoke
"""

import ml_collections

from alexnet_jax.configs import common

FAMILY_ARGS = {
    "depth": 16,
    "bn": False,
    "dropout": 0.5,
    "width": 1.0,
    "pool7": "adaptive",
    "norm": "mean",
    "sched": "plateau",
    "lr": 0.01,
}



def model_config(args) -> ml_collections.ConfigDict:
  if args.depth not in (11, 13, 16, 19):
    raise ValueError(f"depth must be 11, 13, 16 or 19 (VGG configurations A, B, D, E), got {args.depth}.")
  if args.pool7 not in ("adaptive", "flatten"):
    raise ValueError(f"pool7 must be 'adaptive' or 'flatten', got {args.pool7!r}.")
  m = ml_collections.ConfigDict()
  m.name = "vgg"
  m.depth = args.depth
  m.bn = args.bn
  m.width = args.width
  m.fc_dim = 4096
  m.dropout = args.dropout
  m.pool7 = args.pool7
  return m


# Quick mode trains with BatchNorm unless `bn=False` is given: plain VGG-16/19 learn slowly
# from scratch (the paper initialised them from a trained VGG-A), too slowly for minutes on a CPU.
SMOKE_ARGS = {"bn": True}


def smoke(c: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: eighth width, and fc6 reads the 2×2 map left after five pools."""
  c.model.width = 0.125 * c.model.width
  c.model.fc_dim = 2048  # 512 after the width multiplier
  c.model.pool7 = "flatten"
  c.schedule.base_lr = 0.05 if c.model.bn else 0.02


def get_config(arg=None) -> ml_collections.ConfigDict:
  args = common.parse_args(arg, FAMILY_ARGS, SMOKE_ARGS)
  c = common.base_config()
  c.name = common.run_name("vgg", arg)
  c.model = model_config(args)
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "random"
  c.input.pca_lighting = 0.1
  common.set_normalisation(c, args.norm)
  c.batch_size = 256
  c.num_epochs = 74.0
  c.optimizer.weight_decay = 5e-4
  c.schedule.name = args.sched
  c.schedule.base_lr = args.lr
  c.schedule.factor = 0.1
  c.schedule.max_reductions = 3
  common.apply_common_args(c, args, smoke=smoke)
  return common.finalize(c)
