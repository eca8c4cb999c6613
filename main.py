"""Train or evaluate a model described by a config file.

  python main.py --config=configs/alexnet.py:smoke
  python main.py --config=configs/alexnet.py --workdir=runs/alexnet
  python main.py --config=configs/alexnet.py:smoke --mode=eval        # evaluate the latest checkpoint
  python main.py --config=configs/alexnet.py:smoke --mode=eval --protocols=center,10crop
  python main.py --config=configs/alexnet.py:smoke --mode=predict --images=photos/ --topk=5
  python main.py --config=configs/vgg.py:depth=16 --config.batch_size=64
  python main.py --config=configs/alexnet.py:smoke --mode=prepare     # prepare the config's image store

Without --workdir the run goes to runs/<config name and arguments>. Running the same
command again resumes from the latest checkpoint in the workdir.
"""

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file, optionally with arguments: path.py:arg=value,...",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "Run folder (logs, checkpoints); default runs/<config name>.")
flags.DEFINE_enum("mode", "train", ["train", "eval", "predict", "prepare"],
                  "train (and evaluate), evaluate a checkpoint (protocols × sets), predict images, or "
                  "prepare the config's image store (config.input.store_dir).")
flags.DEFINE_integer("step", None, "With --mode=eval/predict: the checkpoint step (default: the latest).")
flags.DEFINE_string("protocols", None, "--mode=eval: comma-separated center,10crop,multiscale,144crop "
                    "(default config.eval.protocols); --mode=predict: the first one is used.")
flags.DEFINE_string("sets", None, "--mode=eval: comma-separated validation,minival,real,v2 (default config.eval.sets).")
flags.DEFINE_string("images", None, "--mode=predict: an image file or a folder of images.")
flags.DEFINE_integer("topk", 5, "--mode=predict: labels shown per image.")
flags.DEFINE_string("json", None, "--mode=predict: also write the predictions to this JSON file.")
flags.DEFINE_string("coordinator", None, "Multi-host: address:port of process 0 (or $JAX_COORDINATOR_ADDRESS).")
flags.DEFINE_integer("num_processes", None, "Multi-host: number of processes (or $JAX_NUM_PROCESSES).")
flags.DEFINE_integer("process_id", None, "Multi-host: this process's index (or $JAX_PROCESS_ID).")
flags.mark_flags_as_required(["config"])


class _QuietLibraries:
  """Drops INFO chatter from checkpointing internals; their warnings and errors still show."""

  def filter(self, record):
    return record.levelno >= 30 or "orbax" not in record.pathname


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  logging.get_absl_handler().addFilter(_QuietLibraries())
  # TensorFlow only feeds data: keep it off the accelerators, which belong to JAX. A prepared
  # store needs no TensorFlow at all, so it may be missing.
  try:
    import tensorflow as tf
    tf.config.set_visible_devices([], "GPU")
  except ImportError:
    pass

  from alexnet_jax import parallel
  parallel.initialize_distributed(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)

  from alexnet_jax import train
  config = FLAGS.config
  workdir = FLAGS.workdir or os.path.join("runs", config.name)
  logging.info("Config %s → workdir %s", config.name, workdir)
  if FLAGS.mode == "prepare":
    from alexnet_jax.data import prepare
    print(f"Store ready: {prepare.prepare(config)}")
  elif FLAGS.mode == "eval":
    from alexnet_jax import evaluate
    evaluate.evaluate_checkpoint(config, workdir, FLAGS.step, protocols=_csv(FLAGS.protocols),
                                 sets=_csv(FLAGS.sets))
  elif FLAGS.mode == "predict":
    if not FLAGS.images:
      raise app.UsageError("--mode=predict needs --images=<image file or folder>.")
    from alexnet_jax import predict
    protocol = (_csv(FLAGS.protocols) or ("center",))[0]
    predict.run(config, workdir, FLAGS.images, step=FLAGS.step, topk=FLAGS.topk, protocol=protocol,
                json_path=FLAGS.json)
  else:
    _, summary = train.train_and_evaluate(config, workdir)
    ev = summary.get("eval") or {}
    if ev:
      print(f"Final eval at step {summary['step']}: top-1 {ev['top1']:.4f}, top-5 {ev['top5']:.4f}, "
            f"loss {ev['loss']:.4f} ({int(ev['num_examples'])} examples). Workdir: {workdir}")


def _csv(text: str | None) -> tuple[str, ...] | None:
  items = tuple(s.strip() for s in (text or "").split(",") if s.strip())
  return items or None


def run():
  """Runs main, turning the errors a user can fix into one clear line and exit code 2."""
  from alexnet_jax import errors
  try:
    app.run(main)
  except errors.user_errors() as e:
    print(f"error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  run()
