"""Errors that mean "the user can fix this": main.py prints them as one clear line (exit 2).

Every such error derives from `UserError`; modules define their own subclasses.
"""


class UserError(Exception):
  """A mistake the user can fix (a config value, a path, a damaged file); the message says what to do."""


class ConfigError(UserError, ValueError):
  """A config value that cannot work (unknown name, impossible size...); the message says which."""

