"""`configs/vgg.py` on the command line loads `alexnet_jax/configs/vgg.py`; see its docstring."""
from alexnet_jax.configs.vgg import *  # noqa: F401,F403
from alexnet_jax.configs.vgg import get_config  # noqa: F401
