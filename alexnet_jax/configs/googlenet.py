"""GoogLeNet (Inception-v1) as trained in Szegedy et al., "Going Deeper with Convolutions" (CVPR 2015).

The paper's recipe (Sec. 6): asynchronous SGD with momentum 0.9, a fixed schedule
decreasing the learning rate by 4% every 8 epochs (here `schedule.name='step'`,
factor 0.96 at every multiple of 8 epochs), Polyak averaging for the final model
(not done here); auxiliary classifiers weighted 0.3; random crops covering 8%–100%
of the image with aspect ratio 3/4–4/3 (`train_crop='inception'`) plus photometric
distortions (not modelled). The paper gives neither the initial rate, the batch
size nor the epoch count: lr 0.01, weight decay 2e-4 and batch 128 follow the
reference Caffe re-implementation; 90 epochs is a choice.
Reported (ILSVRC-2014, top-5 error, Table 5): 10.07% for one model and one crop on
validation, 9.15% with 10 crops, 7.89% with 144 crops; 6.67% on the test set for the
ensemble of 7 models with 144 crops each.

`variant=torchvision` (default) is torchvision's network (BatchNorm, 3×3 third
branch, no LRN, dropout 0.2); `variant=paper` is the 2014 one (no BatchNorm, 5×5
third branch, LRN in the stem, dropout 0.4, Xavier init as the Caffe model).

Arguments (besides those in `configs/common.py`):
  variant=torchvision  torchvision | paper
  branch3_kernel=0     3 or 5 overrides the variant's third-branch kernel
  dropout=-1           dropout before the classifier (-1: the variant's, 0.2 or 0.4)
  aux=True             auxiliary classifiers on inception 4a and 4d
  width=1.0            channel multiplier
  norm=                mean | torchvision | inception (default: torchvision's mean/std for
                       variant=torchvision, mean subtraction for the paper); use inception
                       for torchvision's released weights (trained with transform_input)
  sched=step           step | poly | cosine | plateau
  lr=0.01              base learning rate

Examples:
  python main.py --config=configs/googlenet.py
  python main.py --config=configs/googlenet.py:variant=paper,smoke
"""

import ml_collections

from alexnet_jax.configs import common

FAMILY_ARGS = {
    "variant": "torchvision",
    "branch3_kernel": 0,
    "dropout": -1.0,
    "aux": True,
    "width": 1.0,
    "norm": "",
    "sched": "step",
    "lr": 0.01,
}

VARIANTS = {
    "torchvision": dict(bn=True, branch3_kernel=3, lrn=False, dropout=0.2, init="torchvision", norm="torchvision"),
    "paper": dict(bn=False, branch3_kernel=5, lrn=True, dropout=0.4, init="xavier", norm="mean"),
}


def model_config(args) -> ml_collections.ConfigDict:
  if args.variant not in VARIANTS:
    raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, got {args.variant!r}.")
  if args.branch3_kernel not in (0, 3, 5):
    raise ValueError(f"branch3_kernel must be 3 (torchvision) or 5 (paper), got {args.branch3_kernel}.")
  v = VARIANTS[args.variant]
  m = ml_collections.ConfigDict()
  m.name = "googlenet"
  m.width = args.width
  m.bn = v["bn"]
  m.branch3_kernel = args.branch3_kernel or v["branch3_kernel"]
  m.lrn = v["lrn"]
  m.aux_logits = args.aux
  m.dropout = args.dropout if args.dropout >= 0 else v["dropout"]
  m.aux_dropout = 0.7
  m.init = v["init"]
  m.conv1_stride = 2
  return m


def smoke(c: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: quarter width and a stride-1 stem so the last maps stay 4×4."""
  c.model.width = 0.25 * c.model.width
  c.model.conv1_stride = 1
  c.schedule.base_lr = 0.05 if c.model.bn else 0.01


def get_config(arg=None) -> ml_collections.ConfigDict:
  args = common.parse_args(arg, FAMILY_ARGS)
  c = common.base_config()
  c.name = common.run_name("googlenet", arg)
  c.model = model_config(args)
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "inception"
  c.input.inception_min_area = 0.08
  c.input.pca_lighting = 0.0
  common.set_normalisation(c, args.norm or VARIANTS[args.variant]["norm"])
  c.batch_size = 128
  c.num_epochs = 90.0
  c.optimizer.weight_decay = 2e-4
  c.aux_loss_weight = 0.3
  c.schedule.name = args.sched
  c.schedule.base_lr = args.lr
  c.schedule.factor = 0.96
  c.schedule.step_epochs = tuple(float(e) for e in range(8, 90, 8))
  c.schedule.poly_power = 0.5
  common.apply_common_args(c, args, smoke=smoke)
  return common.finalize(c)
