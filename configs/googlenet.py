"""`configs/googlenet.py` on the command line loads `alexnet_jax/configs/googlenet.py`; see its docstring."""
from alexnet_jax.configs.googlenet import *  # noqa: F401,F403
from alexnet_jax.configs.googlenet import get_config  # noqa: F401
