"""`configs/cifar_cnn.py` on the command line loads `alexnet_jax/configs/cifar_cnn.py`; see its docstring."""
from alexnet_jax.configs.cifar_cnn import *  # noqa: F401,F403
from alexnet_jax.configs.cifar_cnn import get_config  # noqa: F401
