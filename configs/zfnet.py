"""`configs/zfnet.py` on the command line loads `alexnet_jax/configs/zfnet.py`; see its docstring."""
from alexnet_jax.configs.zfnet import *  # noqa: F401,F403
from alexnet_jax.configs.zfnet import get_config  # noqa: F401
