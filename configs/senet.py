"""`configs/senet.py` on the command line loads `alexnet_jax/configs/senet.py`; see its docstring."""
from alexnet_jax.configs.senet import *  # noqa: F401,F403
from alexnet_jax.configs.senet import get_config  # noqa: F401
