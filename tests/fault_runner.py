"""Runs main.py with a fault injected into the write of one checkpoint, at a known point.

  python tests/fault_runner.py [--no-tensorflow] pause <step> <marker file> main.py-arguments...
  python tests/fault_runner.py [--no-tensorflow] enospc <step> main.py-arguments...
  python tests/fault_runner.py [--no-tensorflow] evalpause <step> <marker file> main.py-arguments...
  python tests/fault_runner.py [--no-tensorflow] steppause <step> <marker file> <release file> main.py-arguments...
  python tests/fault_runner.py [--no-tensorflow] none main.py-arguments...

Orbax writes a checkpoint into a temporary folder and makes it visible by renaming it to
`<step>` once every file is written. `pause` holds that rename back for checkpoint `<step>`:
the writer writes the temporary folder's path to `<marker file>` and waits, so a test can
`kill -9` the process at exactly that point instead of polling for a temporary folder and
hoping. `enospc` makes the same moment fail as a full disk would: Orbax's background writer
raises "No space left on device" with the checkpoint's files written but never committed.
`evalpause` holds the evaluation after training step `<step>` open: once it has begun, it
writes `<marker file>` and waits for the run's stop signal before evaluating, so a signal
sent after the marker appears is certain to land during that evaluation. `steppause` holds
the run after training step `<step>`: it writes `<marker file>` and waits until `<release file>`
exists, so a signal sent in between lands at a known step however loaded the machine (with
several processes, the others wait for it at their next collective). `none` injects no
fault. `--no-tensorflow` makes importing TensorFlow or TFDS fail, as where they are not
installed: training from a prepared store needs neither, and a short run starts faster.
"""

import asyncio
import errno
import os
import pathlib
import runpy
import sys
import time


def main() -> None:
  argv = sys.argv[1:]
  if argv[0] == "--no-tensorflow":
    sys.modules.update(tensorflow=None, tensorflow_datasets=None)
    argv = argv[1:]
  if argv[0] == "none":
    _run_main(argv[1:])
    return
  mode, step, args = argv[0], argv[1], argv[2:]
  from orbax.checkpoint._src.path import atomicity  # after the block above
  if mode == "evalpause":
    _pause_evaluation(int(step), pathlib.Path(args[0]))
    _run_main(args[1:])
    return
  if mode == "steppause":
    _pause_after_step(int(step), pathlib.Path(args[0]), pathlib.Path(args[1]))
    _run_main(args[2:])
    return
  finalize = atomicity.AtomicRenameTemporaryPath.finalize
  if mode == "pause":
    marker, args = pathlib.Path(args[0]), args[1:]

  async def faulty(self):
    if self.get_final().name != step:
      return await finalize(self)
    if mode == "enospc":
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.get()))
    marker.write_text(str(self.get()))
    while True:  # until the test kills the process
      await asyncio.sleep(3600)

  atomicity.AtomicRenameTemporaryPath.finalize = faulty
  _run_main(args)


def _pause_evaluation(step: int, marker: pathlib.Path) -> None:
  """Makes the evaluation of the state after `step` wait, once begun, for the stop signal."""
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from alexnet_jax import train
  from alexnet_jax.eval import run as eval_run
  handlers = []
  enter, evaluate = train._Preemption.__enter__, eval_run.Evaluator.run

  def entered(self):
    handlers.append(self)
    return enter(self)

  def paused(self, protocol, eval_set, state=None):
    if handlers and state is not None and int(state.step) == step:
      marker.write_text(str(step))
      while not handlers[-1].requested:  # the signal handler runs during this sleep
        time.sleep(0.01)
    return evaluate(self, protocol, eval_set, state=state)

  train._Preemption.__enter__ = entered
  eval_run.Evaluator.run = paused


def _pause_after_step(step: int, marker: pathlib.Path, release: pathlib.Path) -> None:
  """Makes the run wait after training step `step` (the preemption check of every step) until `release` exists."""
  sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
  from alexnet_jax import train
  stop_after = train._Preemption.stop_after

  def paused(self, done: int) -> bool:
    if done == step:
      marker.write_text(str(step))
      while not release.exists():  # a signal's handler runs during this sleep
        time.sleep(0.01)
    return stop_after(self, done)

  train._Preemption.stop_after = paused


def _run_main(args: list[str]) -> None:
  repo = pathlib.Path(__file__).resolve().parents[1]
  sys.argv = [str(repo / "main.py"), *args]
  sys.path.insert(0, str(repo))
  runpy.run_path(str(repo / "main.py"), run_name="__main__")


if __name__ == "__main__":
  main()
