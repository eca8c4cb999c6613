"""ZFNet as trained in Zeiler & Fergus, "Visualizing and Understanding Convolutional Networks" (ECCV 2014).

The paper's recipe (Sec. 3): images resized to 256 on the short side, centre 256×256,
per-pixel mean subtracted, random 224×224 sub-crops with horizontal flips; SGD with
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
  sched=plateau plateau | step | cosine
  lr=0.01       base learning rate

Examples:
  python main.py --config=configs/zfnet.py
  python main.py --config=configs/zfnet.py:smoke
"""

import ml_collections

from alexnet_jax.configs import common

FAMILY_ARGS = {
    "lrn": True,
    "dropout": 0.5,
    "act": "relu",
    "init": "paper",
    "width": 1.0,
    "sched": "plateau",
    "lr": 0.01,
}


def model_config(args) -> ml_collections.ConfigDict:
  m = ml_collections.ConfigDict()
  m.name = "zfnet"
  m.width = args.width
  m.fc_dim = 4096
  m.lrn = args.lrn
  m.lrn_size = 5       # the paper gives no constants; AlexNet's
  m.lrn_k = 2.0
  m.lrn_alpha = 1e-4
  m.lrn_beta = 0.75
  m.dropout = args.dropout
  m.activation = args.act
  m.init = args.init
  m.init_std = 0.01
  m.conv1_kernel = 7
  m.conv1_stride = 2
  m.conv1_padding = 1  # 224 → 110, as Fig. 3
  m.conv2_stride = 2
  return m


def smoke(c: ml_collections.ConfigDict) -> None:
  """Quick mode at 64 px: conv1 5×5/2 and a stride-1 conv2 keep every map larger than its kernel
  (64 → 30 → 15 → 11 → 5 → 2); inputs are also divided by the ImageNet std so the
  he_in-initialised net starts with unit-scale activations."""
  c.model.width = 0.25 * c.model.width
  c.model.fc_dim = 2048          # 512 after the width multiplier
  c.model.conv1_kernel = 5
  c.model.conv1_stride = 2
  c.model.conv1_padding = 0
  c.model.conv2_stride = 1
  c.input.std_rgb = common.IMAGENET_STD_RGB
  if c.model.init == "paper":
    c.model.init = "he_in"       # N(0, 0.01) stalls for many epochs at this scale
  c.schedule.base_lr = 0.02


def get_config(arg=None) -> ml_collections.ConfigDict:
  args = common.parse_args(arg, FAMILY_ARGS)
  c = common.base_config()
  c.name = common.run_name("zfnet", arg)
  c.model = model_config(args)
  c.input.image_size = 224
  c.input.resize_size = 256
  c.input.train_crop = "random"
  c.input.pca_lighting = 0.0     # ZF do not mention AlexNet's colour augmentation
  c.batch_size = 128
  c.num_epochs = 70.0
  c.optimizer.weight_decay = 5e-4
  c.schedule.name = args.sched
  c.schedule.base_lr = args.lr
  c.schedule.factor = 0.1
  common.apply_common_args(c, args, smoke=smoke)
  return common.finalize(c)
