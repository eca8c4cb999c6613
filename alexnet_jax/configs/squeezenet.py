"""SqueezeNet as trained in Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer
parameters and <0.5MB model size" (2016), with the solver of the authors' released model.

Recipe (the SqueezeNet repository's solver for v1.0 and v1.1): SGD with momentum 0.9,
batch 512, weight decay 2e-4, learning rate 0.04 decayed linearly to zero (poly
schedule, power 1) over 170K iterations (about 68 epochs); 227×227 random crops with
horizontal flips, mean subtraction; dropout 0.5 before the final conv.
Reported: 57.5% top-1 / 80.3% top-5 accuracy on ILSVRC-2012 validation (single
crop), AlexNet's level, with 1.25M parameters (4.8 MB in float32); v1.1 matches it
with 2.4× less compute.

Arguments (besides those in `configs/common.py`):
  version=1_0   1_0 | 1_1
  dropout=0.5   dropout before the final 1×1 conv
  width=1.0     channel multiplier
  norm=mean     mean | torchvision | inception (torchvision for its released weights)
  sched=poly    poly | cosine | step | plateau | constant
  lr=0.04       base learning rate at the recipe's batch (scaled with `batch`)

Examples:
  python main.py --config=configs/squeezenet.py:version=1_1
  python main.py --config=configs/squeezenet.py:smoke
"""

import ml_collections

from alexnet_jax import model_choices
from alexnet_jax.configs import common

SMOKE_WIDTH = 0.5

FAMILY_ARGS = {
    "version": common.Arg(str, "1_0", "model.version", choices=model_choices.FIELDS["version"]),
    "dropout": common.rate(0.5, "model.dropout"),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    "norm": common.norm_arg("mean"),
    "sched": common.Arg(str, "poly", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.04, "schedule.base_lr"),
}


def recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """The released solver; `config.model` holds exactly the fields of `models.squeezenet.SqueezeNet`."""
  m = c.model
  m.name = "squeezenet"
  m.version = "1_0"
  m.width = 1.0
  m.dropout = 0.5
  m.conv1_stride = 2
  c.input.image_size = 227
  c.input.resize_size = 256
  c.input.train_crop = "random"
  c.input.pca_lighting = 0.0
  c.batch_size = 512
  c.num_epochs = 68.0
  c.optimizer.weight_decay = 2e-4
  c.schedule.poly_power = 1.0


def smoke(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: half width; a stride-1 conv1 keeps the last fire module's map at 7×7.

  With the usual stride 2 (a 3×3 last map) the final conv+ReLU died at once in our runs.
  Three epochs, since the stride-1 net costs several times more per step than the others.
  """
  c.model.conv1_stride = 1
  c.num_epochs = 3.0
  # With SGD, SqueezeNet's final conv+ReLU classifier sits on a long plateau at chance (at
  # batch 64, 0.02 kills it and 0.005 had not moved after an epoch), longer than a quick run.
  # Quick mode therefore uses AdamW; the full recipe keeps the paper's SGD.
  c.optimizer.name = "adamw"
  c.optimizer.weight_decay = 1e-4
  c.schedule.base_lr = 2e-3


def get_config(arg=None) -> ml_collections.ConfigDict:
  return common.make("squeezenet", arg, FAMILY_ARGS, recipe, smoke)
