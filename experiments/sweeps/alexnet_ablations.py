"""The ablations of Krizhevsky, Sutskever & Hinton (2012), one member each.

Run on real data at reduced size with, e.g.
  python -m experiments.sweep experiments/sweeps/alexnet_ablations.py --args=data=<imagenette folder>,epochs=4

PAPER holds only what the paper reports for ImageNet, as the change in top-1 / top-5
ACCURACY points caused by the ablation (the paper states error reductions from the feature;
removing the feature is the negative of that). Members without a reported number get a note.
"""

from experiments.sweep import member

BASE = "configs/alexnet.py:smoke"
BASELINE = "baseline"

MEMBERS = [
    member("baseline"),
    member("lrn_off", {"lrn": False}),
    member("pool_nonoverlap", {"overlap": False}),
    member("one_tower", {"towers": 1}),
    member("pca_off", {"pca": 0.0}),
    member("dropout_off", {"dropout": 0.0}),
    member("tanh", {"act": "tanh"}),
    member("remove_conv3", {"remove_conv": 3}),
    member("aug_none", {"aug": "none"}),
    member("aug_paper", {"aug": "paper"}),
    member("aug_inception", {"aug": "inception"}),
    # Not an ablation: the baseline with another seed, so the table shows how large a difference
    # seed noise alone makes at the chosen (small) budget.
    member("baseline_seed1", {"seed": 1}),
]

PAPER = {
    "lrn_off": {"top1": -1.4, "top5": -1.2,
                "note": "Sec. 3.3: response normalisation reduces top-1/top-5 error by 1.4%/1.2%"},
    "pool_nonoverlap": {"top1": -0.4, "top5": -0.3,
                        "note": "Sec. 3.4: overlapping pooling (s=2, z=3) vs s=z=2 reduces error by 0.4%/0.3%"},
    "one_tower": {"top1": -1.7, "top5": -1.2,
                  "note": "Sec. 3.2: two GPUs vs one GPU with half the kernels per conv layer: 1.7%/1.2% "
                          "(here one tower keeps the full width, so not the same comparison)"},
    "pca_off": {"top1": -1.0, "top5": None, "note": "Sec. 4.1: PCA lighting reduces top-1 error by over 1%"},
    "remove_conv3": {"top1": -2.0, "top5": None,
                     "note": "Sec. 7: removing any middle conv layer costs about 2% top-1"},
    "dropout_off": {"top1": None, "top5": None,
                    "note": "Sec. 4.2: without dropout, substantial overfitting (no number)"},
    "aug_none": {"top1": None, "top5": None,
                 "note": "Sec. 4.1: without augmentation, substantial overfitting (no number)"},
    "tanh": {"top1": None, "top5": None,
             "note": "Sec. 3.1 / Fig. 1: ReLU trains ~6x faster (CIFAR-10, no ImageNet accuracy given)"},
}
