"""alexnet_jax: AlexNet and the ILSVRC architectures that followed it, in JAX/Flax."""

__version__ = "0.1.0"
