"""AlexNet's Figure 1: the four-layer CIFAR-10 network with ReLU and with tanh units.

Both members share every setting (learning rate included); plot with
  python -m experiments.figure1 <workdir_root>/figure1
Example (image-folder copy of CIFAR-10 with train/ and test/):
  python -m experiments.sweep experiments/sweeps/figure1.py --args=data=<cifar10 folder>,epochs=30
"""

from experiments.sweep import member

BASE = "configs/cifar_cnn.py"
BASELINE = "relu"
MEMBERS = [member("relu", {"act": "relu"}), member("tanh", {"act": "tanh"})]
