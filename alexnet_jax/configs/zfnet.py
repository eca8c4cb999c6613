"""ZFNet as trained in Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014).

The paper's recipe (Sec. 3): images resized to 256 on the short side, centre 256×256,
per-pixel mean subtracted (here: the per-channel ImageNet mean, which this input
pipeline uses for every family), random 224×224 sub-crops with horizontal flips
(`input.crop_region='center_square'`, the paper's geometry; `full` is the alternative); SGD with
mini-batches of 128, learning rate 1e-2, momentum 0.9, "annealed manually when the
validation error plateaus" (here: reduce-on-plateau, ÷10); dropout 0.5 in fc6 and
fc7; weights initialised to 1e-2 (N(0, 0.01) here) and biases to 0; 70 epochs (about
12 days on one GTX 580). The paper states no weight decay; AlexNet's 5e-4 is used.
Not modelled: renormalising conv filters whose RMS exceeds 0.1.
Reported (Table 2, ILSVRC-2012 validation, 10-crop): one model 38.4% top-1 / 16.5%
top-5 error (the authors' AlexNet replication: 40.5% / 18.1%); five models 15.3%
top-5 on val and test.

Arguments (besides those in `configs/common.py`):
  lrn=True      contrast normalisation after the first two pooling layers
  dropout=0.5   dropout rate in fc6 and fc7
  act=relu      relu | tanh
  init=paper    paper (N(0, 0.01), zero biases) | he | he_in | lecun | xavier
  width=1.0     channel multiplier (convs and FC layers)
  sched=plateau plateau | step | cosine | constant | poly
  lr=0.01       base learning rate at the recipe's batch (scaled with `batch`)

Quick mode (`smoke`): 64 px, conv1 5×5/2, stride-1 conv2, quarter width, He init, cosine
at 0.02; unit-scale inputs, with LRN's α multiplied by the squared pixel scale so that LRN
normalises as it would on the 0..255 scale (see configs/alexnet.py).

Examples:
  python main.py --config=configs/zfnet.py
  python main.py --config=configs/zfnet.py:smoke
"""

import ml_collections

from alexnet_jax.configs import common

SMOKE_WIDTH = 0.25

FAMILY_ARGS = {
    "lrn": common.Arg(bool, True, "model.lrn"),
    "dropout": common.rate(0.5, "model.dropout"),
    "act": common.Arg(str, "relu", "model.act", choices=common.ACTIVATIONS),
    "init": common.Arg(str, "paper", "model.init_scheme", choices=common.INIT_SCHEMES),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    "sched": common.Arg(str, "plateau", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.01, "schedule.base_lr"),
}


def recipe(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Zeiler & Fergus's recipe; `config.model` holds exactly the fields of `models.zfnet.ZFNet`."""
  m = c.model
  m.name = "zfnet"
  m.width = 1.0
  m.fc_dim = 4096
  m.lrn = True
  m.lrn_size = 5       # the paper gives no constants; AlexNet's
  m.lrn_k = 2.0
  m.lrn_alpha = 1e-4
  m.lrn_beta = 0.75
  m.dropout = 0.5
  m.act = "relu"
  m.init_scheme = "paper"
  m.init_std = 0.01
  m.conv1_kernel = 7
  m.conv1_stride = 2
  m.conv1_padding = 1  # 224 → 110, as Fig. 3
  m.conv2_stride = 2
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "random"
  c.input.crop_region = "center_square"
  c.input.pca_lighting = 0.0     # ZF do not mention AlexNet's colour augmentation
  c.batch_size = 128
  c.num_epochs = 70.0
  c.optimizer.weight_decay = 5e-4
  c.schedule.factor = 0.1


def smoke(c: ml_collections.ConfigDict, args: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: conv1 5×5/2 and a stride-1 conv2 keep every map larger than its kernel
  (64 → 30 → 15 → 11 → 5 → 2); He init, since N(0, 0.01) stalls for many epochs at this scale."""
  c.model.fc_dim = 2048          # 512 after the width multiplier
  c.model.conv1_kernel = 5
  c.model.conv1_stride = 2
  c.model.conv1_padding = 0
  c.model.conv2_stride = 1
  c.model.init_scheme = "he_in"
  c.schedule.base_lr = 0.02
  # Inputs are divided by the ImageNet std (unit scale, for He init); α grows by the same
  # factor squared, so α·Σa² is the size it has on the paper's 0..255 pixel scale.
  c.model.lrn_alpha = c.model.lrn_alpha * common.PIXEL_SCALE ** 2


def get_config(arg=None) -> ml_collections.ConfigDict:
  return common.make("zfnet", arg, FAMILY_ARGS, recipe, smoke)
