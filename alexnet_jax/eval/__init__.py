"""Evaluate a checkpoint the way the papers did: test-time protocols × evaluation sets.

Why this exists: a headline ImageNet number mixes three things: the network, the test-time
protocol (one centre crop, AlexNet's 10 crops, VGG's multi-scale, GoogLeNet's 144 crops) and
the labels it is scored against (the original validation labels, ImageNet-ReaL's
re-assessed label sets, the fresh ImageNet-V2 test set). This package runs any combination
on a trained checkpoint, and writes a report that puts the result beside the paper's
number so a reader can see how much of the headline is protocol and labels.

  views.py    protocols: crop geometry and the view makers (center, 10crop, multiscale, 144crop)
  sets.py     evaluation sets: validation, minival, ReaL, V2
  scoring.py  top-1/top-5 hits, ReaL hits, the Tally (per-class counts, confusions)
  report.py   tables, report.md, per-class and confusion files and pictures
  run.py      the multi-view device step, the Evaluator, `evaluate_checkpoint` (the eval command)

  python main.py --config=configs/alexnet.py:smoke --mode=eval --protocols=center,10crop
"""
