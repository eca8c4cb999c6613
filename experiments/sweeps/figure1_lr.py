"""AlexNet's Figure 1 as the paper ran it: each net's learning rate chosen by a short sweep.

  python -m experiments.sweep experiments/sweeps/figure1_lr.py --args=data=<cifar10 folder> --parallel=4
  python -m experiments.figure1 <workdir_root>/figure1_lr --out experiments/results/figure1

The four-layer net on the full CIFAR-10 train set (50,000 images), no regularisation, constant
rate, momentum 0.9, batch 128, in two setups:
  ours   unit-scale inputs (mean and std) and LeCun-normal init (the codebase's default);
  2012   cuda-convnet's: inputs with the mean subtracted but not scaled (0..255) and small
         Gaussian weights N(0, 0.01) (`init=paper`).
For each setup and activation, four rates; the one that reaches 25% training error in the
fewest epochs is that net's rate (the paper: "chosen independently to make training as fast
as possible"). Training error only: no evaluation image is used to choose anything.
"""

from experiments.sweep import member

BASE = "configs/cifar_cnn.py:epochs=30"
SETUPS = {
    "ours": ({"norm": "std", "init": "lecun"}, (0.005, 0.01, 0.02, 0.04)),
    "2012": ({"norm": "mean", "init": "paper"}, (0.0005, 0.001, 0.002, 0.004)),
}
MEMBERS = [member(f"{setup}-{act}-lr={lr:g}", {**args, "act": act, "lr": lr})
           for setup, (args, rates) in SETUPS.items() for act in ("relu", "tanh") for lr in rates]
BASELINE = MEMBERS[0].name
