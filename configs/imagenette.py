"""`configs/imagenette.py` on the command line loads `alexnet_jax/configs/imagenette.py`; see its docstring."""
from alexnet_jax.configs.imagenette import *  # noqa: F401,F403
from alexnet_jax.configs.imagenette import get_config  # noqa: F401
