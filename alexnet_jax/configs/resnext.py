"""ResNeXt (Xie, Girshick, Dollár, Tu & He, "Aggregated Residual Transformations", CVPR 2017).

A ResNet whose bottleneck 3×3 conv is split into `groups` parallel paths ("cardinality")
of `width_per_group` channels each at 64 planes; the default is ResNeXt-50 32×4d, which
has about the FLOPs and parameters of ResNet-50 (25.0M vs 25.6M).

The paper's recipe (Sec. 4) follows fb.resnet.torch: SGD, batch 256, momentum 0.9,
weight decay 1e-4, learning rate 0.1 divided by 10 three times (here at epochs 30, 60
and 90 of 100; the exact epochs are that code's schedule, not stated in the paper),
scale and aspect-ratio augmentation (the random-resized crop), flip; evaluated on a
single 224 centre crop of the image resized to 256.
Reported (Table 3, ILSVRC-2012 val, 224 single crop): ResNeXt-50 32×4d 22.2% top-1
error vs 23.9% for their ResNet-50 baseline trained the same way.

Arguments: those of configs/resnet.py (depth, groups, width_per_group, se, v1, width,
stem, sched, lr, ...) with defaults depth=50, groups=32, width_per_group=4, sched=step.

Examples:
  python main.py --config=configs/resnext.py                    # ResNeXt-50 32×4d on imagenet2012
  python main.py --config=configs/resnext.py:depth=101          # ResNeXt-101 32×4d
  python main.py --config=configs/resnext.py:smoke              # minutes on a CPU (cardinality 4)
"""

import ml_collections

from alexnet_jax.configs import resnet

DEFAULTS = {"depth": 50, "groups": 32, "width_per_group": 4, "sched": "step"}


def recipe(c: ml_collections.ConfigDict) -> None:
  c.num_epochs = 100.0
  c.schedule.step_epochs = (30.0, 60.0, 90.0)
  c.input.inception_min_area = 0.08


def get_config(arg=None):
  return resnet.make_config("resnext", arg, DEFAULTS, recipe)
