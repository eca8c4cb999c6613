"""What a trained network learned: its first-layer kernels (the 2012 paper's Figure 3) and the
training images nearest to a query in its feature space (Figure 4).

  kernels.py     kernels of a checkpoint or an .npz, per-kernel colour-specificity, per-tower summaries
  features.py    penultimate-layer features of a split, computed once per checkpoint and cached
  neighbours.py  k nearest training images of query images, by features and by raw pixels
  pictures.py    the PNGs: kernel mosaics, score histograms, neighbour grids
"""
