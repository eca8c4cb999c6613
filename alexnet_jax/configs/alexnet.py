"""AlexNet as trained in Krizhevsky, Sutskever & Hinton (NeurIPS 2012) on ILSVRC-2012.

The paper's recipe: SGD, batch 128, momentum 0.9, weight decay 5e-4 inside the update
(v ← 0.9·v − 5e-4·ε·w − ε·∂L/∂w; w ← w + v), ε = 0.01 divided by 10 when the validation
error stopped improving (three times), about 90 epochs; 224×224 random crops of
256×256 images with horizontal flips and PCA lighting (σ = 0.1), mean subtraction.
Reported: 40.7% top-1 / 18.2% top-5 error on the validation set with 10-crop testing
(one model; 37.5% / 17.0% on the test set for the 2012 entry), 60M parameters.

Arguments (besides those in `configs/common.py`):
  variant=paper|owt    the 2012 net or the 2014 "one weird trick" net (torchvision's)
  lrn=True             local response normalisation after conv1 and conv2
  overlap=True         3×3 stride-2 pooling (False: 2×2 stride 2)
  towers=2             2 = the two-GPU grouped convolutions, 1 = one tower
  dropout=0.5          dropout rate in fc6 and fc7
  act=relu             relu | tanh
  init=paper           paper (N(0, 0.01), biases 1 in conv2,4,5 fc6,7) | he | lecun | xavier
  width=1.0            channel multiplier
  geometry=227         227 makes the conv1 arithmetic exact; 224 pads conv1 by 2
  pca=0.1              PCA lighting σ (0 turns it off)
  remove_conv=0        drop one conv layer (2..5) for the depth ablation
  sched=plateau        plateau | step | cosine
  lr=0.01              base learning rate

Examples:
  python main.py --config=configs/alexnet.py                  # the paper, on imagenet2012
  python main.py --config=configs/alexnet.py:smoke            # minutes on a laptop CPU
  python main.py --config=configs/alexnet.py:smoke,lrn=False  # an ablation
"""

from alexnet_jax.configs import common

FAMILY_ARGS = {
    "variant": "paper",
    "lrn": True,
    "overlap": True,
    "towers": 2,
    "dropout": 0.5,
    "act": "relu",
    "init": "paper",
    "width": 1.0,
    "geometry": 227,
    "pca": 0.1,
    "remove_conv": 0,
    "sched": "plateau",
    "lr": 0.01,
}


def model_config(args):
  import ml_collections
  m = ml_collections.ConfigDict()
  m.name = "alexnet"
  m.variant = args.variant
  m.towers = args.towers
  m.width = args.width
  m.fc_dim = 4096
  m.lrn = args.lrn
  m.lrn_size = 5
  m.lrn_k = 2.0
  m.lrn_alpha = 1e-4
  m.lrn_beta = 0.75
  m.pool_window = 3 if args.overlap else 2
  m.pool_stride = 2
  m.dropout = args.dropout
  m.activation = args.act
  m.init = args.init
  m.init_std = 0.01
  m.conv1_kernel = 11
  m.conv1_stride = 4
  m.conv1_padding = 0 if args.geometry == 227 else 2
  m.remove_conv = args.remove_conv
  return m


# Quick-mode defaults (explicit arguments still win): half width, and He init with a higher
# rate, because N(0, 0.01) on a small net stalls for many epochs.
SMOKE_ARGS = {"width": 0.5, "init": "he_in", "lr": 0.02, "sched": "cosine"}


def smoke(c):
  """Quick mode: 64×64 inputs, so conv1 shrinks to 5×5/2 to keep maps larger than kernels."""
  c.model.fc_dim = 1024
  c.model.conv1_kernel = 5
  c.model.conv1_stride = 2
  c.model.conv1_padding = 0


def get_config(arg=None):
  args = common.parse_args(arg, FAMILY_ARGS, SMOKE_ARGS)
  if args.geometry not in (224, 227):
    raise ValueError(f"geometry must be 224 or 227, got {args.geometry}.")
  c = common.base_config()
  c.name = common.run_name("alexnet", arg)
  c.model = model_config(args)
  c.input.image_size = args.geometry
  c.input.pca_lighting = args.pca
  c.schedule.base_lr = args.lr
  common.apply_common_args(c, args, smoke=smoke)
  c.schedule.name = args.sched
  return common.finalize(c)
