"""GoogLeNet (Inception-v1) as trained in Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015).

The paper's recipe (Sec. 6): asynchronous SGD with momentum 0.9, a fixed schedule
decreasing the learning rate by 4% every 8 epochs (here `schedule.name='step'`,
factor 0.96 at every multiple of 8 epochs), Polyak averaging for the final model
(not done here); auxiliary classifiers weighted 0.3; random crops covering 8%–100%
of the image with aspect ratio 3/4–4/3 (`train_crop='inception'`) plus photometric
distortions (not modelled). The paper gives neither the initial rate, the batch
size nor the epoch count: lr 0.01 and weight decay 2e-4 follow the reference Caffe
re-implementation (bvlc_googlenet), whose batch is 32 (`variant=paper`; torchvision's
variant uses 128); 90 epochs is a choice.
Reported (ILSVRC-2014, top-5 error, Table 5): 10.07% for one model and one crop on
validation, 9.15% with 10 crops, 7.89% with 144 crops; 6.67% on the test set for the
ensemble of 7 models with 144 crops each.

`variant=torchvision` (default) is torchvision's network (BatchNorm, 3×3 third
branch, no LRN, dropout 0.2); `variant=paper` is the 2014 one (no BatchNorm, 5×5
third branch, LRN in the stem, dropout 0.4, Xavier init as the Caffe model; auxiliary
heads average-pool 5×5 with stride 3, and the max-pool after inception 4e is 3×3/2).

Arguments (besides those in `configs/common.py`):
  variant=torchvision  torchvision | paper
  branch3_kernel=0     3 or 5 overrides the variant's third-branch kernel
  dropout=-1           dropout before the classifier (-1: the variant's, 0.2 or 0.4)
  aux=True             auxiliary classifiers on inception 4a and 4d
  width=1.0            channel multiplier
  norm=                mean | torchvision | inception (default: torchvision's mean/std for
                       variant=torchvision, mean subtraction for the paper); use inception
                       for torchvision's released weights (trained with transform_input)
  sched=step           step | poly | cosine | plateau | constant
  lr=0.01              base learning rate at the recipe's batch (scaled with `batch`)

Examples:
  python main.py --config=configs/googlenet.py
  python main.py --config=configs/googlenet.py:variant=paper,smoke
"""

import ml_collections

from alexnet_jax import model_choices
from alexnet_jax.configs import common

SMOKE_WIDTH = 0.25

FAMILY_ARGS = {
    "variant": common.Arg(str, "torchvision", choices=("torchvision", "paper")),
    "branch3_kernel": common.Arg(int, None, "model.branch3_kernel", choices=model_choices.FIELDS["branch3_kernel"]),
    "dropout": common.rate(None, "model.dropout"),
    "aux": common.Arg(bool, True, "model.aux_logits"),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    "norm": common.norm_arg(None),
    "sched": common.Arg(str, "step", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.01, "schedule.base_lr"),
}

# What each variant sets; the arguments above override single fields.
VARIANTS = {
    "torchvision": dict(model=dict(bn=True, branch3_kernel=3, lrn=False, dropout=0.2, init_scheme="torchvision",
                                   aux_pool="adaptive", pool4_window=2),
                        norm="torchvision", batch=128),
    "paper": dict(model=dict(bn=False, branch3_kernel=5, lrn=True, dropout=0.4, init_scheme="xavier",
                             aux_pool="avg5s3", pool4_window=3),
                  norm="mean", batch=32),
}


def recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """The variant's recipe; `config.model` holds exactly the fields of `models.googlenet.GoogLeNet`."""
  v = VARIANTS[args.variant]
  m = c.model
  m.name = "googlenet"
  m.width = 1.0
  m.aux_logits = True
  m.aux_dropout = 0.7
  m.conv1_stride = 2
  m.update(v["model"])
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "inception"
  c.input.inception_min_area = 0.08
  c.input.pca_lighting = 0.0
  common.set_normalisation(c, v["norm"])
  c.batch_size = v["batch"]
  c.num_epochs = 90.0
  c.optimizer.weight_decay = 2e-4
  c.aux_loss_weight = 0.3
  c.schedule.factor = 0.96
  c.schedule.step_epochs = tuple(float(e) for e in range(8, 90, 8))
  c.schedule.poly_power = 0.5


def smoke(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: quarter width and a stride-1 stem so the last maps stay 4×4."""
  c.model.conv1_stride = 1
  c.schedule.base_lr = 0.05 if c.model.bn else 0.01


def get_config(arg=None) -> ml_collections.ConfigDict:
  return common.make("googlenet", arg, FAMILY_ARGS, recipe, smoke)
