"""The README's quick demo: AlexNet with and without LRN on the embedded data, 2 epochs each.

  python -m experiments.sweep experiments/sweeps/demo.py
finishes in a few minutes on a 2-core CPU and writes results.md, results.csv and the
learning-curve plots to runs/sweeps/demo/.
"""

from experiments.sweep import member

BASE = "configs/alexnet.py:smoke,epochs=2"
BASELINE = "baseline"
MEMBERS = [member("baseline"), member("lrn_off", {"lrn": False})]
PAPER = {"lrn_off": {"top1": -1.4, "top5": -1.2,
                     "note": "Sec. 3.3: response normalisation reduces top-1/top-5 error by 1.4%/1.2%"}}
