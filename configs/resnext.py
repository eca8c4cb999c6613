"""`configs/resnext.py` on the command line loads `alexnet_jax/configs/resnext.py`; see its docstring."""
from alexnet_jax.configs.resnext import *  # noqa: F401,F403
from alexnet_jax.configs.resnext import get_config  # noqa: F401
