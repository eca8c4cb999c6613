"""The neighbours command: query images beside their nearest training images (the 2012 paper's Figure 4).

  alexnet-jax neighbours --config=alexnet:smoke --queries=8 --k=6
  alexnet-jax neighbours --config=alexnet --workdir=runs/alexnet --images=photos/ --step=450000

Each query and every training image are embedded with the checkpoint's penultimate features
(`features.py`: fc7 for AlexNet, the pooled features for its successors); the training set's features
are computed once per checkpoint and cached under <workdir>/features/. Neighbours are the k training
images at the smallest Euclidean distance, searched on the device: the training features stream
through in chunks (`--chunk` rows at a time), each chunk's squared distances to all queries come
from one matrix product, and `jax.lax.top_k` merges them into the running best k. The same search
over the raw pixels of the same small centre crops gives the second grid, for contrast: the
paper's point is that neighbours in feature space need not be close in pixel space.

Queries are the image files under `--images`, or `--queries` images of the eval split spread evenly
over it. Outputs in `--out` (default <workdir>/neighbours): neighbours_features.png,
neighbours_pixels.png and neighbours.json (indices, distances, labels and, for image-folder
datasets, files). The config is the run's (as for eval and predict), with `--config.<field>=` overrides.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from alexnet_jax.errors import UserError


class NeighboursError(UserError):
  """The neighbour search cannot run as asked (k, queries, images)."""


# ----------------------------------------------------------------------------- search


@functools.partial(jax.jit, static_argnames="k")
def _merge_chunk(queries: jax.Array, chunk: jax.Array, valid: jax.Array, offset: jax.Array,
                 best_d: jax.Array, best_i: jax.Array, *, k: int) -> tuple[jax.Array, jax.Array]:
  """The k smallest squared distances so far, after comparing every query with one chunk of rows."""
  hi = jax.lax.Precision.HIGHEST
  d2 = (jnp.sum(queries * queries, axis=1)[:, None] - 2.0 * jnp.dot(queries, chunk.T, precision=hi)
        + jnp.sum(chunk * chunk, axis=1)[None, :])
  d2 = jnp.where(valid[None, :], jnp.maximum(d2, 0.0), jnp.inf)
  rows = jnp.broadcast_to(offset + jnp.arange(chunk.shape[0], dtype=jnp.int32), d2.shape)
  all_d, all_i = jnp.concatenate([best_d, d2], axis=1), jnp.concatenate([best_i, rows], axis=1)
  neg, pos = jax.lax.top_k(-all_d, k)
  return -neg, jnp.take_along_axis(all_i, pos, axis=1)


def nearest(queries: np.ndarray, base: np.ndarray, k: int, chunk: int = 16384) -> tuple[np.ndarray, np.ndarray]:
  """(distances [q, k], row indices [q, k]) of each query's k nearest rows of `base` (Euclidean),
  nearest first. `base` may be memory-mapped: it is read `chunk` rows at a time."""
  n = len(base)
  if not 1 <= k <= n:
    raise NeighboursError(f"--k={k} must be between 1 and the number of training images ({n}).")
  flat = lambda a: np.asarray(a, np.float32).reshape(len(a), -1)  # noqa: E731
  q = jnp.asarray(flat(queries))
  chunk = max(1, min(chunk, n))
  best_d = jnp.full((q.shape[0], k), jnp.inf, jnp.float32)
  best_i = jnp.full((q.shape[0], k), -1, jnp.int32)
  for lo in range(0, n, chunk):
    part = flat(base[lo:lo + chunk])
    valid = np.arange(chunk) < len(part)
    if len(part) < chunk:  # one shape for every chunk: one compilation
      part = np.concatenate([part, np.zeros((chunk - len(part), part.shape[1]), np.float32)])
    best_d, best_i = _merge_chunk(q, jnp.asarray(part), jnp.asarray(valid), jnp.int32(lo), best_d, best_i, k=k)
  # The expansion |q|² − 2q·x + |x|² loses the last digits to cancellation; the k found are measured
  # again directly (so an image's distance to itself is exactly 0) and put in order.
  idx = np.asarray(best_i)
  rows = flat(base[np.sort(np.unique(idx))])
  where = np.searchsorted(np.sort(np.unique(idx)), idx)
  exact = np.sqrt(((rows[where].astype(np.float64) - flat(queries)[:, None, :]) ** 2).sum(-1))
  order = np.argsort(exact, axis=1, kind="stable")
  return np.take_along_axis(exact, order, 1).astype(np.float32), np.take_along_axis(idx, order, 1)


# ----------------------------------------------------------------------------- the command


def _names(info, labels: Sequence[int]) -> list[str]:
  from alexnet_jax import predict
  table = predict.class_labels(info.class_names, info.num_classes)
  return [table[int(y)].name if 0 <= int(y) < len(table) else str(int(y)) for y in labels]


def query_set(embedder, workdir: str, images: str | None, count: int) -> dict[str, Any]:
  """Features, pictures and names of the queries: files under `images`, or `count` eval-split images."""
  from alexnet_jax import predict
  from alexnet_jax.inspect import features as features_lib
  if images:
    paths = predict.list_images(images)
    read, views, bad = features_lib.file_views(embedder.config, paths)
    if not read:
      raise NeighboursError(f"None of the {len(paths)} file(s) under {images!r} could be read as an image.")
    if bad:
      print(f"Skipped {len(bad)} unreadable file(s): {', '.join(bad[:5])}{' ...' if len(bad) > 5 else ''}")
    got = embedder.images(views)
    return {**got, "names": [os.path.basename(p) for p in read], "ids": read}
  split = embedder.config.eval_split
  ev = features_lib.split_features(embedder, workdir, split)
  rows = np.unique(np.linspace(0, len(ev.labels) - 1, min(count, len(ev.labels))).round().astype(int))
  return {"features": np.asarray(ev.features[rows]), "pixels": np.asarray(ev.pixels[rows]),
          "names": _names(embedder.runtime.info, ev.labels[rows]), "ids": [f"{split}[{r}]" for r in rows]}


def find(config, workdir: str, *, step: int | None = None, images: str | None = None, queries: int = 8,
         k: int = 6, pixels: int = 64, chunk: int = 16384, out: str | None = None) -> dict[str, Any]:
  """The neighbours command: restore, embed (cached), search by features and by pixels, write the grids."""
  from alexnet_jax import runtime
  from alexnet_jax.inspect import features as features_lib
  from alexnet_jax.inspect import pictures
  for name, value, least in (("k", k, 1), ("pixels", pixels, 4), ("chunk", chunk, 1),
                            ("queries", 1 if images else queries, 1)):
    if value < least:
      raise NeighboursError(f"--{name}={value} must be at least {least}.")
  if jax.process_count() > 1:
    raise NeighboursError("The neighbours command runs in one process; start it without --num_processes.")
  if images:
    from alexnet_jax import predict
    predict.list_images(images)  # a wrong path fails before the model is restored
  rt, state, step = runtime.restore_for_inference(config, workdir, step)
  embedder = features_lib.Embedder(rt, state, step, pixels)
  train = features_lib.split_features(embedder, workdir, config.train_split)
  qs = query_set(embedder, workdir, images, queries)
  out = out or os.path.join(workdir, "neighbours")
  os.makedirs(out, exist_ok=True)
  result: dict[str, Any] = {"step": step, "workdir": workdir, "k": k, "queries": []}
  found = {"features": nearest(qs["features"], train.features, k, chunk),
           "pixels": nearest(qs["pixels"], train.pixels, k, chunk)}
  shown = min(len(qs["ids"]), pictures.MAX_GRID_ROWS)
  if shown < len(qs["ids"]):
    print(f"The grids show the first {shown} of {len(qs['ids'])} queries; neighbours.json lists all.")
  for space, (dist, idx) in found.items():
    dist, idx = dist[:shown], idx[:shown]
    names = [_names(rt.info, train.labels[row]) for row in idx]
    path = os.path.join(out, f"neighbours_{space}.png")
    what = "penultimate features" if space == "features" else f"raw pixels (the centre crops at {pixels}×{pixels})"
    found_pixels = np.asarray(train.pixels[idx.reshape(-1)]).reshape(idx.shape + train.pixels.shape[1:])
    pictures.neighbour_grid(qs["pixels"][:shown], found_pixels, dist, path,
                            title=f"{k} nearest training images by Euclidean distance of {what}; "
                            f"{config.model.name}, step {step}", query_names=qs["names"][:shown], neighbour_names=names)
    result[f"{space}_png"] = path
  for i, qid in enumerate(qs["ids"]):
    entry: dict[str, Any] = {"query": qid, "name": qs["names"][i]}
    for space, (dist, idx) in found.items():
      entry[space] = [{"index": int(j), "distance": float(d), "label": int(train.labels[j]),
                       **({"file": train.files[j]} if train.files else {})} for d, j in zip(dist[i], idx[i])]
    result["queries"].append(entry)
  with open(os.path.join(out, "neighbours.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(f"Checkpoint step {step} of {workdir}: wrote {result['features_png']}, {result['pixels_png']} and "
        f"{os.path.join(out, 'neighbours.json')}")
  return result


def _define_flags(fv) -> None:
  from absl import flags
  from ml_collections import config_flags
  config_flags.DEFINE_config_file("config", None, "Config file or family, with arguments: alexnet:smoke",
                                  flag_values=fv, lock_config=True)
  flags.DEFINE_string("workdir", None, "Run folder (default runs/<config name>).", flag_values=fv)
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest).", flag_values=fv)
  flags.DEFINE_string("images", None, "Query images: a file or a folder (default: --queries eval images).",
                      flag_values=fv)
  flags.DEFINE_integer("queries", 8, "Without --images: this many eval-split images, spread over it.", flag_values=fv)
  flags.DEFINE_integer("k", 6, "Neighbours per query (the paper's Figure 4 shows 6).", flag_values=fv)
  flags.DEFINE_integer("pixels", 64, "Side of the stored pictures, shown and compared by raw pixels.", flag_values=fv)
  flags.DEFINE_integer("chunk", 16384, "Training rows compared per device step.", flag_values=fv)
  flags.DEFINE_string("out", None, "Output folder (default <workdir>/neighbours).", flag_values=fv)


def run(argv: Sequence[str] | None = None) -> int:
  """`alexnet-jax neighbours ...`: flags parsed like main.py's (--config=..., --config.<field>=...);
  a mistake the user can fix is one line and exit code 2."""
  from absl import flags
  from alexnet_jax import config_files
  from alexnet_jax import console
  console.quiet(import_tensorflow=True)
  argv = ["alexnet-jax neighbours", *(sys.argv[1:] if argv is None else argv)]
  fv = flags.FlagValues()
  _define_flags(fv)
  if any(a in ("-h", "--help", "--helpfull") for a in argv[1:]):
    print(f"usage: {argv[0]} --config=<family or file>[:arguments] [flags]\n\n{__doc__}\n{fv.get_help()}")
    return 0
  saved = sys.argv
  try:
    argv = config_files.resolve_config_flag(argv)
    sys.argv = argv  # the config flag reads its --config.<field> overrides from sys.argv
    rest = config_files.parse_flags(fv, argv)
    if len(rest) > 1:
      raise NeighboursError(f"unexpected arguments {rest[1:]}")
    if fv.config is None:
      raise NeighboursError("--config=<family or file>[:arguments] is required (the run's config).")
    from alexnet_jax.configs import validate
    validate.check(fv.config)
    find(fv.config, fv.workdir or os.path.join("runs", fv.config.name), step=fv.step, images=fv.images,
         queries=fv.queries, k=fv.k, pixels=fv.pixels, chunk=fv.chunk, out=fv.out)
  except UserError as e:
    for line in str(e).splitlines():
      print(f"error: {line}", file=sys.stderr)
    return 2
  finally:
    sys.argv = saved
  return 0


if __name__ == "__main__":
  sys.exit(run())
