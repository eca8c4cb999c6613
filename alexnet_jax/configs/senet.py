"""SE-ResNet (Hu, Shen & Sun, "Squeeze-and-Excitation Networks", CVPR 2018 / TPAMI 2019).

A ResNet with a squeeze-and-excitation gate on every residual branch (after its last
BN, before the addition): global average pool → FC C/16 → ReLU → FC C → sigmoid →
channel-wise scale. An SENet ensemble won ILSVRC 2017 (2.251% top-5 error on test).

The paper's recipe: synchronous SGD, momentum 0.9, batch 1024, learning rate 0.6
divided by 10 every 30 epochs, 100 epochs from scratch, random-size cropping to 224
and flips; weight decay 1e-4 is assumed (the usual ResNet value). Here the batch is
256 and the rate is scaled linearly to 0.6 · 256/1024 = 0.15. The released SE-ResNet
models are built on the Caffe ResNets, which stride the first 1×1 conv, so `v1=True`
is the default here (use v1=False for the torchvision placement).
Reported (Table 2, ILSVRC-2012 val, single 224 crop): SE-ResNet-50 23.29% top-1 /
6.62% top-5 error vs 24.80 / 7.48 for their re-implemented ResNet-50; 28.1M parameters
(28,088,024 with biased SE FCs, which this model reproduces exactly).

Arguments: those of configs/resnet.py with defaults depth=50, se=True, se_reduction=16,
v1=True, sched=step, lr=0.15.

Examples:
  python main.py --config=configs/senet.py                  # SE-ResNet-50 on imagenet2012
  python main.py --config=configs/senet.py:depth=101        # SE-ResNet-101
  python main.py --config=configs/senet.py:smoke            # minutes on a CPU
"""

import ml_collections

from alexnet_jax.configs import resnet

DEFAULTS = {"depth": 50, "se": True, "v1": True, "sched": "step", "lr": 0.15}


def recipe(c: ml_collections.ConfigDict) -> None:
  c.num_epochs = 100.0
  c.schedule.step_epochs = (30.0, 60.0, 90.0)
  c.input.inception_min_area = 0.08


def get_config(arg=None):
  return resnet.make_config("senet", arg, DEFAULTS, recipe)
