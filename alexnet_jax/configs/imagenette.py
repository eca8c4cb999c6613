"""The Imagenette leaderboard recipe: ResNet-D-50 with the "Bag of Tricks" training refinements.

fastai's Imagenette leaderboard (10 easy ImageNet classes, 9,469 train / 3,925 validation
images; 128 px, random weights, no test-time augmentation) lists 87.43% top-1 after 5 epochs
and 91.57% after 20 as its best entries (each the mean of 5 runs). Its entries use the lineage's later ideas; this recipe
uses the ones this codebase reproduces from the papers:
  * ResNet-50 with the ResNet-B/C/D changes of He et al., "Bag of Tricks for Image
    Classification with Convolutional Neural Networks" (CVPR 2019): stride on the 3×3 conv,
    a deep 3×3 stem, average-pool downsampling shortcuts (`configs/resnet.py` `d`);
  * its training refinements (Sec. 5): cosine decay after a linear warm-up, label smoothing
    0.1, zero-init of the last BN gamma in each block, no weight decay on biases and BN;
  * SGD with Nesterov momentum 0.9, weight decay 1e-4, batch 64 (the leaderboard's), a
    random-resized crop (area 0.35..1, aspect 3/4..4/3) and flip; one warm-up epoch.
Evaluation: the whole stored square resized to 128 (`input.resize_size = image_size`), centre
crop 128, i.e. the full image.

Data: `data=<folder>` laid out as <root>/{train,val}/<wnid>/<image> (e.g. imagenette2-160
unpacked), or TFDS `imagenette/160px-v2` (the default; TFDS downloads it). The store keeps
the central square of the short-side-resized image at `input.store_size` (160 for the
160 px release, so crops come from the full 160 px detail; 128 for an already-128² copy).

Arguments: those of `configs/resnet.py` (`depth=`, `lr=`, `width=`, ...) and `configs/common.py`
(`epochs=`, `batch=`, `res=`, `bf16`, `seed=`, `data=`). `lr` is the rate at batch 64 and scales
linearly when `batch=` is given.

Examples:
  python main.py --config=configs/imagenette.py:data=<imagenette folder>            # 5 epochs
  python main.py --config=configs/imagenette.py:data=<imagenette folder>,epochs=20
  python -m experiments.gpu_session --plan=leaderboard     # 5 seeds × 5 and × 20 epochs on one GPU
"""

from __future__ import annotations

import ml_collections

from alexnet_jax.configs import resnet

BATCH = 64
LR = 0.1  # at batch 64; fixed before any run, not tuned on the validation images


def _recipe(c: ml_collections.ConfigDict) -> None:
  resnet._resnet_d(c)  # noqa: SLF001 - the same ResNet-D switch as `d`
  resnet._tricks(c)  # noqa: SLF001 - and the same refinements as `tricks`
  c.schedule.warmup_epochs = 1.0
  c.optimizer.nesterov = True
  c.dataset = "imagenette/160px-v2"
  c.batch_size = BATCH
  c.eval_batch_size = 250
  c.num_epochs = 5.0
  c.input.image_size = 128
  c.input.resize_size = 128
  c.input.pipeline = "store"
  c.input.train_crop = "inception"
  c.input.inception_min_area = 0.35
  c.input.pca_lighting = 0.0
  c.log_every_steps = 50
  c.checkpoint_every_steps = 500
  c.keep_checkpoints = 1


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  return resnet.make_config("imagenette", arg, family_recipe=_recipe,
                            defaults={"depth": 50, "stem": "deep", "zero_init": True, "sched": "cosine", "lr": LR})
