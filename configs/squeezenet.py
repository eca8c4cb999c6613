"""`configs/squeezenet.py` on the command line loads `alexnet_jax/configs/squeezenet.py`; see its docstring."""
from alexnet_jax.configs.squeezenet import *  # noqa: F401,F403
from alexnet_jax.configs.squeezenet import get_config  # noqa: F401
