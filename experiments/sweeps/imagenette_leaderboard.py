"""The Imagenette leaderboard recipe (configs/imagenette.py): three learning rates at 5 epochs, and 20 epochs.

  python -m experiments.sweep experiments/sweeps/imagenette_leaderboard.py --seeds=0,1,2 \
      --args=data=<imagenette folder>,bf16 --parallel=4

The learning rate (at batch 64) is the one setting chosen here, from three values, by the mean
validation top-1 over the seeds at 5 epochs (Imagenette has no separate test split; the
leaderboard's entries are chosen on the same images). The 20-epoch member uses the rate chosen
for 5 epochs, untuned.
"""

from experiments.sweep import member

BASE = "configs/imagenette.py"
BASELINE = "lr=0.1"
MEMBERS = [
    member("lr=0.05", {"lr": 0.05}),
    member("lr=0.1", {"lr": 0.1}),
    member("lr=0.2", {"lr": 0.2}),
    member("epochs=20", {"lr": 0.1, "epochs": 20}),
]

# fastai's Imagenette leaderboard, 128 px: top-1 accuracy (%), mean of 5 runs.
LEADERBOARD = {5: 85.77, 20: 91.57}
