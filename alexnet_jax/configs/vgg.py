"""VGG as trained in Simonyan & Zisserman, "Very Deep Convolutional Networks for
Large-Scale Image Recognition" (ICLR 2015).

The paper's recipe (Sec. 3.1): SGD with momentum 0.9, batch 256, weight decay 5e-4,
dropout 0.5 in fc6 and fc7, learning rate 1e-2 divided by 10 when the validation
accuracy stopped improving (three times in all), training stopped after 370K
iterations (74 epochs); 224×224 random crops of rescaled images with horizontal
flips and AlexNet's RGB colour shift; net A initialised from N(0, 1e-2), deeper nets
from A's trained layers. Training here is at a fixed S (`input.resize_size`, 256): random
224 crops inside the central S×S square (`input.crop_region='center_square'`; `full`
lets them lie anywhere in the short-side-resized image). Scale jittering (S drawn from
[256, 512]) needs a per-image random rescale the input pipeline lacks; `aug=inception`
(random-resized crops) is the closest multi-scale alternative. Multi-scale testing
(`config.eval.scales`) follows the paper (Sec. 4.2): Q = {S−32, S, S+32} for a model
trained at fixed S, (256, 384, 512) for a scale-jittered one (`aug=inception` here). Conv layers use Kaiming init
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
  sched=plateau  plateau | step | cosine | constant | poly
  lr=0.01        base learning rate at the recipe's batch (scaled with `batch`)

Quick mode (`smoke`) trains with BatchNorm unless `bn=False` is given (plain VGG-16/19
learn too slowly from scratch for minutes on a CPU), at eighth width, lr 0.05 (0.02 without BN).

Examples:
  python main.py --config=configs/vgg.py:depth=16
  python main.py --config=configs/vgg.py:depth=11,bn=True,smoke
"""

import ml_collections

from alexnet_jax import model_choices
from alexnet_jax.configs import common

SMOKE_WIDTH = 0.125

FAMILY_ARGS = {
    "depth": common.Arg(int, 16, "model.depth", choices=model_choices.DEPTHS["vgg"]),
    "bn": common.Arg(bool, None, "model.bn"),
    "dropout": common.rate(0.5, "model.dropout"),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    "pool7": common.Arg(str, "adaptive", "model.pool7", choices=model_choices.FIELDS["pool7"]),
    "norm": common.norm_arg("mean"),
    "sched": common.Arg(str, "plateau", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.01, "schedule.base_lr"),
}


def recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Simonyan & Zisserman's recipe at fixed S; `config.model` holds the fields of `models.vgg.VGG`."""
  m = c.model
  m.name = "vgg"
  m.depth = 16
  m.bn = False
  m.width = 1.0
  m.fc_dim = 4096
  m.dropout = 0.5
  m.pool7 = "adaptive"
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "random"
  c.input.crop_region = "center_square"
  c.input.pca_lighting = 0.1
  c.batch_size = 256
  c.num_epochs = 74.0
  c.optimizer.weight_decay = 5e-4
  c.schedule.factor = 0.1
  c.schedule.max_reductions = 3


def smoke(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: BatchNorm, eighth width, and fc6 reads the 2×2 map left after five pools."""
  c.model.bn = True
  c.model.fc_dim = 2048  # 512 after the width multiplier
  c.model.pool7 = "flatten"
  c.schedule.base_lr = 0.05 if (args.bn is None or args.bn) else 0.02


def get_config(arg=None) -> ml_collections.ConfigDict:
  c = common.make("vgg", arg, FAMILY_ARGS, recipe, smoke)
  c.eval.scales = test_scales(c)
  return c


def test_scales(c: ml_collections.ConfigDict) -> tuple[int, ...]:
  """Multi-scale test scales Q for a 224 crop, from how the model is trained (Sec. 4.2).

  Fixed S (random crops of the short-side-S image): Q = {S−32, S, S+32}, S in units of a
  224 crop. Scale-jittered training (here the random-resized crop): Q = {256, 384, 512}.
  """
  if c.input.train_crop == "inception":
    return (256, 384, 512)
  s = int(round(c.input.resize_size * 224 / c.input.image_size))
  return (max(224, s - 32), s, s + 32)  # the evaluation needs scales >= the 224 crop
