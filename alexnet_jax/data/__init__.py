"""Input pipeline: TFDS / embedded / image-folder sources, augmentation, bad-data handling.

This package is framework-neutral: it yields NumPy batches and never imports JAX (except
device_augment.py, which runs on the accelerator). A prepared store (store.py) is read
without TensorFlow; the streaming path (input_pipeline.py) loads it.
"""
