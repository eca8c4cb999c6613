"""Command-line paths for the configs: `--config=configs/<family>.py:<args>`.

The config modules live in the package (`alexnet_jax/configs/`) so an installed copy finds them;
each file here re-exports one of them.
"""
