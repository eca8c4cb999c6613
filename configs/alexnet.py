"""`configs/alexnet.py` on the command line loads `alexnet_jax/configs/alexnet.py`; see its docstring."""
from alexnet_jax.configs.alexnet import *  # noqa: F401,F403
from alexnet_jax.configs.alexnet import get_config  # noqa: F401
