"""Input pipeline: TFDS / embedded / image-folder sources, augmentation, bad-data handling.

This package is framework-neutral: it yields NumPy batches and never imports JAX (except
device_augment.py, which runs on the accelerator). The streaming names below load
TensorFlow on first use only, so a prepared store (store.py) is read without it; loading
them registers the embedded TFDS builder (`alexnet_jax_shapes`).
"""

_STREAM = ("DataError", "DatasetInfo", "default_eval_preprocess", "eval_batches", "get_info", "normalize",
           "num_eval_batches", "train_batches")


def __getattr__(name: str):
  if name in _STREAM:
    from alexnet_jax.data import embedded  # noqa: F401  (registers the TFDS builder)
    from alexnet_jax.data import input_pipeline
    return getattr(input_pipeline, name)
  raise AttributeError(f"module 'alexnet_jax.data' has no attribute {name!r}")
