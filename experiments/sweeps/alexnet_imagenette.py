"""The 2012 paper's ablations on full Imagenette, at the converged budget of the paper recipe.

  python -m experiments.sweep experiments/sweeps/alexnet_imagenette.py --seeds=0,1,2 \
      --args=data=<imagenette folder>,res=112,bf16 --set=input.pipeline=store --parallel=8

BASE is the paper's recipe (configs/alexnet.py: SGD 0.01 with momentum 0.9 and weight decay 5e-4,
batch 128, the learning rate divided by 10 when the validation error stops improving (patience 3
evaluations, one per epoch), 90 epochs, random crops with flips and PCA lighting), changed where
the data forces it: 10 classes; 112×112 crops of the 128×128 images (the paper's 224 of 256), so
conv1 (11×11/4) gives 26×26 maps and the last pool 2×2; and He initialisation on unit-scale inputs
(`init=he_in,inputs=unit`, LRN's α scaled to match) in place of N(0, 0.01) on 0..255 inputs.
Imagenette has 74 steps per epoch where ILSVRC-2012 has 10,000: the paper's initialisation sits at
chance for its first steps (the loss stays at ln 10 from step 40 to 300 on a CPU trial), which
costs ImageNet a fraction of an epoch and would cost Imagenette most of its budget, while the
plateau rule cuts the rate in the meantime. `paper_init` runs the 2012 initialisation and input
scale as they were, to show that. Each member changes one thing; `fp32` trains in float32 where
the others use bfloat16.
"""

from experiments.sweep import member
from experiments.sweeps import alexnet_ablations

BASE = "configs/alexnet.py:init=he_in,inputs=unit"
BASELINE = "baseline"

# The ablations of experiments/sweeps/alexnet_ablations.py, less `aug_paper` (the paper recipe's own
# augmentation, i.e. the baseline here) and its extra-seed baseline (`--seeds` gives every member
# its seeds), plus the float32 and 2012-initialisation members.
MEMBERS = [m for m in alexnet_ablations.MEMBERS if m.name not in ("aug_paper", "baseline_seed1")] + [
    member("fp32", {"bf16": False}),
    member("paper_init", {"init": "paper", "inputs": "pixel"}),
]

PAPER = dict(alexnet_ablations.PAPER)
PAPER["fp32"] = {"top1": None, "top5": None, "note": "not in the paper (2012 GPUs trained in float32)"}
PAPER["paper_init"] = {"top1": None, "top5": None,
                       "note": "the paper's N(0, 0.01) init (biases 1 in conv2,4,5, fc6,7) on 0..255 inputs"}
