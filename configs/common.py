"""`configs/common.py` on the command line loads `alexnet_jax/configs/common.py`; see its docstring."""
from alexnet_jax.configs.common import *  # noqa: F401,F403
