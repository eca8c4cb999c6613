"""Errors that mean "the user can fix this": main.py prints them as one clear line (exit 2)."""


class ConfigError(ValueError):
  """A config value that cannot work (unknown name, impossible size...); the message says which."""


def user_errors() -> tuple[type[BaseException], ...]:
  """Every exception type main.py reports without a traceback."""
  from alexnet_jax.checkpoint import CheckpointMismatchError
  from alexnet_jax.data.input_pipeline import DataError
  from alexnet_jax.train import TrainingError
  from alexnet_jax.workdir import WorkdirError
  return (ConfigError, WorkdirError, CheckpointMismatchError, DataError, TrainingError, FileNotFoundError)
