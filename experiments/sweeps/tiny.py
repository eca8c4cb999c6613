"""A sweep small enough for a CPU in seconds: what CI runs through experiments/gpu_session.py (plan `tiny`).

The quick-mode CIFAR net on a small embedded set, three steps per run (two seeds in the plan); it
checks the machinery of experiments/gpu_session.py (compile first, the crowd, the records), not a result.
"""

from experiments.sweep import member

BASE = "configs/cifar_cnn.py:smoke"
OVERRIDES = {"embedded_train_size": 64, "embedded_eval_size": 32, "batch_size": 16, "eval_batch_size": 32,
             "num_train_steps": 3, "log_every_steps": 1, "input.pipeline": "store", "async_checkpoints": False}
MEMBERS = [member("baseline", overrides=OVERRIDES)]
