"""Runs main.py with the final rename of one checkpoint held back: a deterministic mid-write fault.

  python tests/pause_checkpoint.py <step> <marker file> main.py-arguments...

Orbax writes a checkpoint into a temporary folder and makes it visible by renaming it to
`<step>` once every file is written. Here the rename of checkpoint `<step>` never happens:
the writer writes the folder's path to `<marker file>` and waits, so a test can `kill -9`
the process at exactly that point instead of polling for a temporary folder and hoping.
"""

import asyncio
import pathlib
import runpy
import sys

from orbax.checkpoint._src.path import atomicity


def main() -> None:
  step, marker = sys.argv[1], pathlib.Path(sys.argv[2])
  finalize = atomicity.AtomicRenameTemporaryPath.finalize

  async def held_back(self):
    if self.get_final().name != step:
      return await finalize(self)
    marker.write_text(str(self.get()))
    while True:  # until the test kills the process
      await asyncio.sleep(3600)

  atomicity.AtomicRenameTemporaryPath.finalize = held_back
  repo = pathlib.Path(__file__).resolve().parents[1]
  sys.argv = [str(repo / "main.py"), *sys.argv[3:]]
  sys.path.insert(0, str(repo))
  runpy.run_path(str(repo / "main.py"), run_name="__main__")


if __name__ == "__main__":
  main()
