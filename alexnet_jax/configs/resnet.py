"""ResNet as trained in He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition" (CVPR 2016).

The paper's ImageNet recipe (Sec. 3.4): SGD, batch 256, momentum 0.9, weight decay 1e-4,
no dropout, BatchNorm after every conv, learning rate 0.1 divided by 10 when the
error plateaus, up to 60×10^4 iterations (≈120 epochs of ILSVRC-2012 at batch 256).
Augmentation: the shorter side resized to a random length in [256, 480] ("scale
augmentation"), a random 224×224 crop or its mirror, per-pixel mean subtraction and
the AlexNet PCA colour augmentation; 10-crop or multi-scale testing.

Reported ILSVRC-2012 validation errors (top-1 / top-5, %):
  Table 3 (10-crop):  ResNet-34 (B) 24.52 / 7.46,  ResNet-50 22.85 / 6.71,
                      ResNet-101 21.75 / 6.05,  ResNet-152 21.43 / 5.71
  Table 4 (one model, multi-scale fully-convolutional testing, not 10-crop):
                      ResNet-50 20.74 / 5.25,  ResNet-101 19.87 / 4.60,  ResNet-152 19.38 / 4.49
  Table 2 (10-crop, top-1 only): ResNet-18 27.88, ResNet-34 25.03.
The ILSVRC 2015 winning entry was an ensemble at 3.57% top-5 on the test set.

Approximations, stated:
  * Scale augmentation. Our pipeline has no random-short-side resize, so the train
    crop is the random-resized ("inception") crop with its smallest area fraction set
    to (224/480)² ≈ 0.22, the area a 224 crop covers when the short side is 480; its
    largest is the whole image rather than (224/256)² ≈ 0.77, and it also jitters the
    aspect ratio (3/4..4/3), so it is a somewhat stronger augmentation than the paper's.
  * Normalisation divides by the ImageNet per-channel std as well as subtracting the
    mean (torchvision convention, needed for converted weights); the paper subtracts a
    per-pixel mean only. BN makes the two nearly equivalent.
  * Stride placement defaults to torchvision's "v1.5" (stride on the 3×3 conv); `v1`
    restores the paper's stride on the first 1×1 conv of a bottleneck.

Arguments (besides those in `configs/common.py`):
  depth=18              18 | 34 | 50 | 101 | 152
  groups=1              cardinality (ResNeXt); >1 needs depth >= 50
  width_per_group=64    channels per group at 64 planes (ResNeXt's "d")
  se=False              squeeze-and-excitation blocks (SE-ResNet)
  se_reduction=16       SE bottleneck ratio r
  v1=False              stride on the first 1×1 conv (paper) instead of the 3×3 (torchvision)
  zero_init=False       zero-init the last BN gamma of each block (Goyal et al. 2017)
  width=1.0             channel multiplier
  stem=imagenet         imagenet (7×7/2 conv + 3×3/2 max-pool) | deep (three 3×3 convs + max-pool,
                        ResNet-C) | small (3×3 conv, no pool)
  d=False               ResNet-D (He et al. 2019, "Bag of Tricks"): the deep stem and average-pool
                        downsampling shortcuts
  tricks=False          the training refinements of "Bag of Tricks": cosine schedule, 5 warm-up
                        epochs, label smoothing 0.1, zero-init of each block's last BN gamma, no
                        weight decay on biases and BN parameters
  sched=plateau         plateau (the paper) | step (30/60/90 epochs, fb.resnet.torch) | cosine |
                        constant | poly
  lr=0.1                base learning rate at the recipe's batch (256; quick mode 64), scaled
                        linearly with `batch` (configs/common.py)

Examples:
  python main.py --config=configs/resnet.py:depth=50            # the paper on imagenet2012
  python main.py --config=configs/resnet.py:smoke,depth=18      # minutes on a laptop CPU
  python main.py --config=configs/resnet.py:depth=50,v1         # the paper's stride placement
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping

import ml_collections

from alexnet_jax import model_choices
from alexnet_jax.configs import common

SMOKE_WIDTH = 0.125
PAPER_BATCH = 256


FAMILY_ARGS: dict[str, common.Arg] = {
    "depth": common.Arg(int, 18, "model.depth", choices=model_choices.DEPTHS["resnet"]),
    "groups": common.positive(int, 1, "model.groups"),
    "width_per_group": common.positive(int, 64, "model.width_per_group"),
    "se": common.Arg(bool, False, "model.se"),
    "se_reduction": common.positive(int, 16, "model.se_reduction"),
    "v1": common.Arg(bool, False, "model.stride_on_3x3", to=lambda v, a: not v),
    "zero_init": common.Arg(bool, False, "model.zero_init_residual"),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    "stem": common.Arg(str, "imagenet", "model.stem", choices=model_choices.FIELDS["stem"]),
    "sched": common.Arg(str, "plateau", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.1, "schedule.base_lr"),
    # Last: they set fields (stem, schedule, zero-init) that the arguments above also set.
    "d": common.Arg(bool, False, apply=lambda c, v, a: _resnet_d(c) if v else None),
    "tricks": common.Arg(bool, False, apply=lambda c, v, a: _tricks(c) if v else None),
}


def _resnet_d(c: ml_collections.ConfigDict) -> None:
  c.model.stem = "deep"
  c.model.avg_down = True


def _tricks(c: ml_collections.ConfigDict) -> None:
  """He et al. 2019, Sec. 5 (all but mixup and distillation)."""
  c.schedule.name = "cosine"
  c.schedule.warmup_epochs = 5.0
  c.label_smoothing = 0.1
  c.model.zero_init_residual = True
  c.optimizer.decay_biases_and_norms = False


def recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """He et al.'s recipe; `config.model` holds exactly the fields of `models.resnet.ResNet`."""
  m = c.model
  m.name = "resnet"
  m.depth = 18
  m.groups = 1
  m.width_per_group = 64
  m.width = 1.0
  m.se = False
  m.se_reduction = 16
  m.stride_on_3x3 = True
  m.zero_init_residual = False
  m.stem = "imagenet"
  m.stem_stride = 1
  m.avg_down = False
  c.batch_size = PAPER_BATCH
  c.eval_batch_size = 250
  c.num_epochs = 120.0  # 60×10^4 iterations at batch 256
  c.optimizer.name = "sgd"
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 1e-4
  c.optimizer.decay_biases_and_norms = True  # the original Caffe/Torch code decays every weight
  c.schedule.factor = 0.1
  c.schedule.patience = 5
  c.schedule.max_reductions = 3
  c.schedule.step_epochs = (30.0, 60.0, 90.0)
  c.input.train_crop = "inception"
  c.input.inception_min_area = (224 / 480) ** 2
  c.input.flip = True
  c.input.pca_lighting = 0.1
  common.set_normalisation(c, "torchvision")


def smoke(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Quick mode: 64×64 embedded data on a laptop CPU in a few minutes.

  Depth 18/34: a 3×3/2 'small' stem without max-pool (stage 1 at 32×32 instead of the
  4×-downsampled 16×16 an ImageNet stem gives at 64 px), width ×1/8. Bottleneck depths
  are ~3× slower per step on CPU, so they keep the ImageNet stem, train on half the
  embedded set for fewer epochs. Grouped convolutions are very slow on XLA:CPU, so a
  ResNeXt's cardinality is cut to 4 (16 channels per group at 64 planes).
  """
  m = c.model
  if m.depth <= 34:
    m.stem = "small"
    m.stem_stride = 2
  else:
    c.embedded_train_size = 3000
    c.num_epochs = 6.0
    # Fifty narrow layers trained for a few hundred steps only learn when every block
    # starts as the identity (Goyal et al. 2017): without it SE-ResNet-50 stays at chance.
    m.zero_init_residual = True
  if m.groups > 1:
    m.groups = min(m.groups, 4)
    m.width_per_group = 16
    c.embedded_train_size = 2000
  c.schedule.base_lr = 0.05


def make_config(family: str, arg: str | None, defaults: Mapping[str, Any] | None = None,
                family_recipe: Callable[[ml_collections.ConfigDict], None] | None = None) -> ml_collections.ConfigDict:
  """Builds a ResNet-family config; `defaults` changes argument defaults and `family_recipe`
  edits the recipe (configs/resnext.py, configs/senet.py, configs/imagenette.py), in
  `common.make`'s order; `lr` is the rate at the recipe's batch."""
  spec = {k: dataclasses.replace(a, default=(defaults or {}).get(k, a.default)) for k, a in FAMILY_ARGS.items()}

  def full_recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
    recipe(c, args)
    if family_recipe is not None:
      family_recipe(c)

  return common.make(family, arg, spec, full_recipe, smoke)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return make_config("resnet", arg)
