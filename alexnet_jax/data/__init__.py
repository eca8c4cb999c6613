"""Input pipeline: TFDS / embedded / image-folder sources, augmentation, bad-data handling.

This package is framework-neutral: it yields NumPy batches and never imports JAX.
Importing it registers the embedded TFDS builder (`alexnet_jax_shapes`).
"""

from alexnet_jax.data import embedded  # noqa: F401  (registers the TFDS builder)
from alexnet_jax.data.input_pipeline import (  # noqa: F401
    DataError,
    DatasetInfo,
    default_eval_preprocess,
    eval_batches,
    get_info,
    normalize,
    num_eval_batches,
    train_batches,
)
