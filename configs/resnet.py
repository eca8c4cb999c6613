"""`configs/resnet.py` on the command line loads `alexnet_jax/configs/resnet.py`; see its docstring."""
from alexnet_jax.configs.resnet import *  # noqa: F401,F403
from alexnet_jax.configs.resnet import get_config  # noqa: F401
