"""Errors that mean "the user can fix this": main.py prints them as one clear line (exit 2).

Every such error derives from `UserError`; modules define their own subclasses.
"""


class UserError(Exception):
  """A mistake the user can fix (a config value, a path, a damaged file); the message says what to do."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work (unknown name, impossible size...); the message says which."""


def user_errors() -> tuple[type[BaseException], ...]:
  """Every exception type main.py reports without a traceback."""
  from alexnet_jax.checkpoint import CheckpointMismatchError
  from alexnet_jax.train import TrainingError
  from alexnet_jax.workdir import WorkdirError
  try:  # the streaming pipeline needs TensorFlow; a prepared store does not
    from alexnet_jax.data.input_pipeline import DataError
  except ImportError:
    DataError = UserError
  return (UserError, WorkdirError, CheckpointMismatchError, DataError, TrainingError, FileNotFoundError)
