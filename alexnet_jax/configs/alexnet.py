"""AlexNet as trained in Krizhevsky, Sutskever & Hinton (NeurIPS 2012) on ILSVRC-2012.

The paper's recipe: SGD, batch 128, momentum 0.9, weight decay 5e-4 inside the update
(v ← 0.9·v − 5e-4·ε·w − ε·∂L/∂w; w ← w + v), ε = 0.01 divided by 10 when the validation
error stopped improving (three times), about 90 epochs; 224×224 random crops of
256×256 images with horizontal flips and PCA lighting (σ = 0.1), mean subtraction.
Reported: 40.7% top-1 / 18.2% top-5 error on the ILSVRC-2012 validation set with 10-crop
testing (one model); the 2012 competition entry reached 16.4% top-5 test error averaging
five CNNs and 15.3% with seven (two pre-trained on ImageNet Fall 2011); 37.5% / 17.0%
top-1 / top-5 are the ILSVRC-2010 test-set numbers. 60M parameters.

Training crops (`config.input.crop_region`): `center_square` (default, the paper): the
image's short side is resized to 256, the central 256×256 square kept, and random
224×224 patches taken inside it; `full` lets the patches lie anywhere in the
short-side-resized image (e.g. 256×341), which sees the image's edges too.
Weight decay: the paper writes its update rule for every weight and says nothing of
biases; here every parameter is decayed (`optimizer.decay_biases_and_norms=True`);
`--config.optimizer.decay_biases_and_norms=False` is Caffe's convention (no decay on biases).
LRN: by default the window of n = 5 adjacent channels runs across all channels of the
layer, as one device computes it; `tower_lrn=True` restricts it to each tower's half (one
reading of the 2012 two-GPU net, where each GPU normalised its own kernels).

Quick mode (`smoke`): 64 px inputs, conv1 5×5/2, half width, fc 512, He init, cosine
schedule at 0.02. He init needs unit-scale inputs (divided by the ImageNet std), where the
paper's α = 1e-4 makes α·Σa² about 1e-4 of k: LRN would be a fixed gain k^-β and `lrn=False`
would measure a rescale. Quick mode therefore multiplies α by the squared pixel scale
(57.6², α ≈ 0.33), which gives LRN the term it has on the paper's 0..255 scale (median
α·Σa²/k ≈ 0.6 at lrn1 at the start). (Training on the pixel scale itself with He init
diverged at once.) Every run logs the median of α·Σa²/k per LRN layer at its first step.

Small-data recipe (`small`, experiments/sweeps/alexnet_paper.py): the paper's recipe where its
claims live, changed only where a dataset of ~74 steps per epoch (Imagenette at batch 128) forces it.
Kept: N(0, 0.01) weights, biases 1 in conv2, conv4, conv5, fc6 and fc7, mean-subtracted 0..255
inputs, LRN (n 5, k 2, α 1e-4, β 0.75), SGD 0.01 / momentum 0.9 / weight decay 5e-4, ÷10 on a
validation-error plateau, at most three times. Changed, and why:
  warmup_steps=370          a linear warm-up from 0 to 0.01 over the first 370 steps. Without it the
                            first steps at 0.01 blow the loss up and the net stays at ln 10 (one
                            class); the GPU campaign's `paper_init` member sat at 9.10% for 62
                            epochs (experiments/results/imagenette_alexnet). 370 steps (5 Imagenette
                            epochs) is the warm-up the CPU trial ran (experiments/results/alexnet_paper).
  patience_steps=1000       the plateau rule's patience in steps, not evaluations: patience 3 at one
                            evaluation per epoch is 30,000 steps on ImageNet but 222 here, and cut
                            the `paper_init` rate at epochs 4, 7.5 and 10, before the net could leave
                            chance. 1000 steps is about 14 evaluations, so one noisy evaluation
                            cannot trigger a cut.
  first_cut_step=2000       no cut before step 2000 (27 epochs here, 30% of the 90-epoch budget of
                            about 6600 steps), so the net gets the thousands of steps at the full rate
                            it gets on ImageNet in a fraction of an epoch; three cuts still fit.
The rest (90 epochs, crops, flips, PCA lighting) is the paper's; the resolution is the caller's
(`res=112` for 128-pixel images, the paper's 224 of 256).

Arguments (besides those in `configs/common.py`):
  variant=paper|owt    the 2012 net or the 2014 "one weird trick" net (torchvision's);
                       owt sets towers=1 and lrn=False unless they are given
  lrn=True             local response normalisation after conv1 and conv2 (owt: False)
  tower_lrn=False      LRN windows stay inside each tower (default: across all channels)
  overlap=True         3×3 stride-2 pooling (False: 2×2 stride 2)
  towers=2             2 = the two-GPU grouped convolutions, 1 = one tower (owt: 1)
  dropout=0.5          dropout rate in fc6 and fc7
  act=relu             relu | tanh
  init=paper           paper (N(0, 0.01), biases 1 in conv2,4,5 fc6,7) | he | lecun | xavier
  width=1.0            channel multiplier
  geometry=227         227 makes the conv1 arithmetic exact; 224 pads conv1 by 2 (not in quick mode)
  pca=0.1              PCA lighting σ (0 turns it off)
  remove_conv=0        drop one conv layer (2..5) for the depth ablation
  one_gpu=False        the paper's one-GPU comparison net: one tower, half the kernels in conv1-4,
                       conv5 and the FC layers at full size (sets towers=1, half_kernels=True)
  small=False          the small-data recipe (below): the paper's, with warm-up and plateau in steps
  sched=plateau        plateau | step | cosine | constant | poly
  lr=0.01              base learning rate at the recipe's batch (scaled with `batch`)
  norm=mean            mean (subtract the ImageNet mean, as the paper) | torchvision (its
                       mean and std, for converted torchvision weights) | inception
  inputs               pixel: the paper's 0..255 scale (mean subtracted) with its LRN α;
                       unit: inputs divided by the ImageNet std (what He init expects) and LRN's α
                       multiplied by the squared scale, as quick mode does (default: the recipe's)

Examples:
  python main.py --config=configs/alexnet.py                  # the paper, on imagenet2012
  python main.py --config=configs/alexnet.py:smoke            # minutes on a laptop CPU
  python main.py --config=configs/alexnet.py:smoke,lrn=False  # an ablation
"""

from alexnet_jax import model_choices
from alexnet_jax.configs import common
from alexnet_jax.errors import ConfigError

SMOKE_WIDTH = 0.5

FAMILY_ARGS = {
    "variant": common.Arg(str, "paper", "model.variant", choices=model_choices.FIELDS["variant"]),
    "lrn": common.Arg(bool, None, "model.lrn"),
    "tower_lrn": common.Arg(bool, False, "model.tower_lrn"),
    "overlap": common.Arg(bool, True, "model.pool_window", to=lambda v, a: 3 if v else 2),
    "towers": common.Arg(int, None, "model.towers", choices=model_choices.FIELDS["towers"]),
    "dropout": common.rate(0.5, "model.dropout"),
    "act": common.Arg(str, "relu", "model.act", choices=common.ACTIVATIONS),
    "init": common.Arg(str, "paper", "model.init_scheme", choices=common.INIT_SCHEMES),
    "width": common.positive(float, 1.0, "model.width", to=lambda v, a: v * (SMOKE_WIDTH if a.smoke else 1.0)),
    # Quick mode has its own 5×5/2 conv1 at 64 px: geometry applies to the full-size stem only.
    "geometry": common.Arg(int, 227, "model.conv1_padding", choices=(224, 227),
                           to=lambda v, a: 2 if v == 224 and not a.smoke else 0,
                           apply=lambda c, v, a: None if a.smoke else setattr(c.input, "image_size", v)),
    "pca": common.Arg(float, 0.1, "input.pca_lighting", low=0.0),
    "remove_conv": common.Arg(int, 0, "model.remove_conv", choices=model_choices.FIELDS["remove_conv"]),
    "sched": common.Arg(str, "plateau", "schedule.name", choices=common.SCHEDULES),
    "lr": common.positive(float, 0.01, "schedule.base_lr"),
    "norm": common.norm_arg("mean"),
    "one_gpu": common.Arg(bool, False, apply=lambda c, v, a: set_one_gpu(c, a) if v else None),
    "small": common.Arg(bool, False, apply=lambda c, v, a: small_data(c) if v else None),
    "inputs": common.Arg(str, None, choices=("pixel", "unit"), apply=lambda c, v, a: set_input_scale(c, v)),
}

PAPER_LRN_ALPHA = 1e-4


def set_input_scale(c, scale: str) -> None:
  """`pixel`: mean-subtracted 0..255 inputs and the paper's α; `unit`: inputs divided by the
  ImageNet std and α × PIXEL_SCALE², so α·Σa² keeps the size it has on the pixel scale."""
  unit = scale == "unit"
  c.input.std_rgb = common.IMAGENET_STD_RGB if unit else (1.0, 1.0, 1.0)
  c.model.lrn_alpha = PAPER_LRN_ALPHA * (common.PIXEL_SCALE ** 2 if unit else 1.0)


def set_one_gpu(c, args) -> None:
  if args.towers == 2:
    raise ConfigError("config argument one_gpu=True is the one-tower net; drop towers=2.")
  c.model.towers = 1
  c.model.half_kernels = True


# The small-data recipe (`small`); see the module docstring for why each is what it is.
SMALL_WARMUP_STEPS = 370
SMALL_PATIENCE_STEPS = 1000
SMALL_FIRST_CUT_STEP = 2000


def small_data(c) -> None:
  """The paper's recipe where 74 steps per epoch force a change: warm-up and plateau in steps."""
  c.schedule.warmup_steps = SMALL_WARMUP_STEPS
  c.schedule.patience_steps = SMALL_PATIENCE_STEPS
  c.schedule.first_cut_step = SMALL_FIRST_CUT_STEP


def recipe(c, args) -> None:
  """The 2012 recipe; `config.model` holds exactly the fields of `models.alexnet.AlexNet`."""
  m = c.model
  m.name = "alexnet"
  m.variant = args.variant
  # The 2014 "one weird trick" net has one tower and no LRN.
  m.towers = 2 if args.variant == "paper" else 1
  m.tower_lrn = False
  m.width = 1.0
  m.fc_dim = 4096
  m.lrn = args.variant == "paper"
  m.lrn_size = 5
  m.lrn_k = 2.0
  m.lrn_alpha = PAPER_LRN_ALPHA
  m.lrn_beta = 0.75
  m.pool_window = 3
  m.pool_stride = 2
  m.dropout = 0.5
  m.act = "relu"
  m.init_scheme = "paper"
  m.init_std = 0.01
  m.conv1_kernel = 11
  m.conv1_stride = 4
  m.conv1_padding = 0
  m.remove_conv = 0
  m.half_kernels = False
  c.input.image_size = 227
  c.input.crop_region = "center_square"


def smoke(c, args) -> None:
  """Quick mode: 64×64 inputs, so conv1 shrinks to 5×5/2 to keep maps larger than kernels;
  He init with a higher rate, because N(0, 0.01) on a small net stalls for many epochs."""
  c.model.fc_dim = 1024
  c.model.conv1_kernel = 5
  c.model.conv1_stride = 2
  c.model.conv1_padding = 0
  c.model.init_scheme = "he_in"
  c.schedule.base_lr = 0.02
  # Inputs are divided by the ImageNet std (unit scale, for He init); α grows by the same
  # factor squared, so α·Σa² is the size it has on the paper's 0..255 pixel scale.
  set_input_scale(c, "unit")


def get_config(arg=None):
  return common.make("alexnet", arg, FAMILY_ARGS, recipe, smoke)
