"""The exceptions that mean "the user can fix this": main.py prints them as one clear line."""

from alexnet_jax.checkpoint import CheckpointMismatchError
from alexnet_jax.data.input_pipeline import DataError
from alexnet_jax.train import TrainingError
from alexnet_jax.workdir import WorkdirError

USER_ERRORS = (WorkdirError, CheckpointMismatchError, DataError, TrainingError, FileNotFoundError)
