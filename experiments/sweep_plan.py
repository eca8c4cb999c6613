"""What a sweep runs: its members, read from a definition file and made into commands.

A sweep definition is a small Python file with
  BASE      the config file and its arguments, e.g. 'configs/alexnet.py:smoke'
  MEMBERS   a list of `Member`s (made with `member(...)` / `product(...)` below): config-string
            arguments added to BASE's and/or `--config.<field>=<value>` overrides
  BASELINE  (optional) the member the aggregate table compares with; default: the first
  PAPER     (optional) member name → the paper's reported effect, for the table

`load_sweep` reads and checks one, `with_seeds` repeats its members once per seed, `expand`
gives each member its workdir and the exact `python main.py ...` command, and `write_plan`
records them in <root>/<sweep>/sweep.json for experiments/aggregate.py.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import os
import re
import shlex
import sys
from typing import Any, Mapping, Sequence

from alexnet_jax import atomic

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MAIN = os.path.join(REPO, "main.py")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.=+-]*$")


class SweepError(Exception):
  """A sweep definition or command line the user has to fix."""


@dataclasses.dataclass(frozen=True)
class Member:
  """One run of a sweep: its folder name, config-string arguments and field overrides."""

  name: str
  args: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  overrides: Mapping[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass(frozen=True)
class Sweep:
  name: str
  base: str
  members: tuple[Member, ...]
  baseline: str
  paper: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Job:
  """A member made concrete: where it runs and the exact command."""

  member: Member
  workdir: str
  argv: tuple[str, ...]

  @property
  def command(self) -> str:
    return shlex.join(self.argv)


# Building members (used by the sweep definition files).


def _value_text(value: Any) -> str:
  if isinstance(value, bool):
    return "True" if value else "False"
  return str(value)


def default_name(args: Mapping[str, Any] | None = None, overrides: Mapping[str, Any] | None = None) -> str:
  """A readable, folder-safe name from the arguments, e.g. 'lrn=False-towers=1'."""
  parts = [f"{k}={_value_text(v)}" for k, v in (args or {}).items()]
  parts += [f"{k.rsplit('.', 1)[-1]}={_value_text(v)}" for k, v in (overrides or {}).items()]
  if not parts:
    return "baseline"
  return re.sub(r"[^A-Za-z0-9_.=+-]+", "_", "-".join(parts))[:100]


def member(name: str | None = None, args: Mapping[str, Any] | None = None,
           overrides: Mapping[str, Any] | None = None) -> Member:
  """A member; without a name it is named after its arguments.

  `overrides` keys are config fields with or without the leading 'config.'
  (e.g. {'schedule.base_lr': 0.02}).
  """
  overrides = {k.removeprefix("config."): v for k, v in (overrides or {}).items()}
  return Member(name or default_name(args, overrides), dict(args or {}), overrides)


def product(prefix: str = "", overrides: Mapping[str, Sequence[Any]] | None = None,
            **options: Sequence[Any]) -> list[Member]:
  """Every combination of the given argument (and override) values, one member each.

  product(lrn=[True, False], towers=[1, 2]) gives four members named 'lrn=True-towers=1', ….
  """
  arg_keys, over_keys = list(options), list(overrides or {})
  value_lists = [list(options[k]) for k in arg_keys] + [list((overrides or {})[k]) for k in over_keys]
  for key, values in zip(arg_keys + over_keys, value_lists):
    if not values:
      raise SweepError(f"product(): option {key!r} has no values; give at least one.")
  out = []
  for combo in itertools.product(*value_lists):
    args = dict(zip(arg_keys, combo[:len(arg_keys)]))
    over = dict(zip(over_keys, combo[len(arg_keys):]))
    name = default_name(args, over)
    out.append(member(f"{prefix}{name}" if prefix else name, args, over))
  return out


SEED_SUFFIX = re.compile(r"-seed=(\d+)$")


def member_group(name: str) -> tuple[str, int | None]:
  """'lrn_off-seed=2' → ('lrn_off', 2); a name without a seed suffix → (name, None)."""
  m = SEED_SUFFIX.search(name)
  return (name[:m.start()], int(m.group(1))) if m else (name, None)


def with_seeds(sweep: "Sweep", seeds: Sequence[int]) -> "Sweep":
  """Every member once per seed (seed-major order), named `<member>-seed=<k>`."""
  if not seeds:
    return sweep
  for m in sweep.members:
    if "seed" in m.args:
      raise SweepError(f"member {m.name!r} sets seed= itself; drop it or drop --seeds.")
  members = tuple(Member(f"{m.name}-seed={s}", {**m.args, "seed": s}, dict(m.overrides))
                  for s in seeds for m in sweep.members)
  return dataclasses.replace(sweep, members=members)


# Loading and expanding a sweep.


def split_config(spec: str) -> tuple[str, dict[str, str | None]]:
  """'configs/x.py:a=1,smoke' → ('configs/x.py', {'a': '1', 'smoke': None}) (None: a bare flag)."""
  path, _, arg = spec.partition(":")
  args: dict[str, str | None] = {}
  for item in filter(None, (s.strip() for s in arg.split(","))):
    key, eq, value = item.partition("=")
    args[key.strip()] = value.strip() if eq else None
  return path, args


def join_config(path: str, args: Mapping[str, Any]) -> str:
  """The inverse of `split_config`; a True/None value is written as a bare flag."""
  items = [k if v is None or v is True else f"{k}={_value_text(v)}" for k, v in args.items()]
  return f"{path}:{','.join(items)}" if items else path


def load_sweep(path: str) -> Sweep:
  """Imports a sweep definition file and checks it."""
  if not os.path.isfile(path):
    raise SweepError(f"Sweep definition {path!r} does not exist; pass a file such as "
                     f"experiments/sweeps/demo.py.")
  name = os.path.splitext(os.path.basename(path))[0]
  if REPO not in sys.path:
    sys.path.insert(0, REPO)  # definitions import `experiments.sweep`
  spec = importlib.util.spec_from_file_location(f"_sweep_{name}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  for attr in ("BASE", "MEMBERS"):
    if not hasattr(module, attr):
      raise SweepError(f"{path} defines no {attr}; a sweep file needs BASE = 'configs/<family>.py:<args>' "
                       f"and MEMBERS = [member(...), ...].")
  members = tuple(module.MEMBERS)
  if not members:
    raise SweepError(f"{path}: MEMBERS is empty; list at least one member.")
  seen: set[str] = set()
  for m in members:
    if not isinstance(m, Member):
      raise SweepError(f"{path}: MEMBERS holds {m!r}; build members with sweep.member(...) or sweep.product(...).")
    if not _NAME_RE.match(m.name):
      raise SweepError(f"{path}: member name {m.name!r} is not folder-safe; use letters, digits and _ . = + -.")
    if m.name in seen:
      raise SweepError(f"{path}: two members are called {m.name!r}; give them distinct names.")
    seen.add(m.name)
  baseline = getattr(module, "BASELINE", members[0].name)
  if baseline not in seen:
    raise SweepError(f"{path}: BASELINE={baseline!r} is not a member; choose one of {sorted(seen)}.")
  config_path, _ = split_config(module.BASE)
  if not os.path.isfile(config_path) and not os.path.isfile(os.path.join(REPO, config_path)):
    raise SweepError(f"{path}: BASE config file {config_path!r} does not exist.")
  return Sweep(name=name, base=module.BASE, members=members, baseline=baseline,
               paper=dict(getattr(module, "PAPER", {})))


def expand(sweep: Sweep, root: str, extra_args: str = "", main: str = DEFAULT_MAIN,
           python: str = sys.executable, extra_overrides: Sequence[str] = ()) -> list[Job]:
  """The concrete command and workdir of every member.

  Arguments combine left to right, later ones winning: BASE's, the member's, then `extra_args`
  (a config-string fragment such as 'data=/data/imagenette,res=64' for the whole sweep).
  `extra_overrides` ('field=value', e.g. 'log_every_steps=13') are added to every member's
  `--config.<field>` overrides, after the member's own.
  """
  sweep_overrides = {}
  for item in extra_overrides:
    key, eq, value = item.partition("=")
    if not eq or not key.strip():
      raise SweepError(f"--set expects field=value (e.g. --set=log_every_steps=13), got {item!r}.")
    sweep_overrides[key.strip().removeprefix("config.")] = value.strip()
  path, base_args = split_config(sweep.base)
  _, extra = split_config(":" + extra_args)
  jobs = []
  for m in sweep.members:
    args = {**base_args, **{k: _value_text(v) if not isinstance(v, bool) or not v else True
                           for k, v in m.args.items()}, **extra}
    workdir = os.path.join(root, sweep.name, m.name)
    argv = [python, main, f"--config={join_config(path, args)}", f"--workdir={workdir}"]
    overrides = {**m.overrides, **sweep_overrides}
    argv += [f"--config.{k}={_value_text(v)}" for k, v in overrides.items()]
    jobs.append(Job(m, workdir, tuple(argv)))
  return jobs


def write_plan(sweep: Sweep, root: str, jobs: Sequence[Job]) -> str:
  """<root>/<sweep>/sweep.json: what aggregate.py needs to label and compare the members."""
  folder = os.path.join(root, sweep.name)
  os.makedirs(folder, exist_ok=True)
  plan = {
      "sweep": sweep.name, "base": sweep.base, "baseline": sweep.baseline,
      "members": [{"name": j.member.name, "group": member_group(j.member.name)[0],
                   "seed": member_group(j.member.name)[1],
                   "args": {k: _value_text(v) for k, v in j.member.args.items()},
                   "overrides": {k: _value_text(v) for k, v in j.member.overrides.items()},
                   "command": j.command, "paper": sweep.paper.get(member_group(j.member.name)[0])}
                  for j in jobs],
  }
  path = os.path.join(folder, "sweep.json")
  atomic.write_json(path, plan, indent=2)
  return path
