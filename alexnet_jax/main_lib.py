"""The command line of training, evaluation and prediction: flags → one library call per mode.

`python main.py ...` and `alexnet-jax train|eval|predict ...` both end in `run()`:

  python main.py --config=configs/alexnet.py:smoke
  python main.py --config=configs/alexnet.py --workdir=runs/alexnet
  python main.py --config=configs/alexnet.py:smoke --mode=eval        # evaluate the latest checkpoint
  python main.py --config=configs/alexnet.py:smoke --mode=eval --protocols=center,10crop
  python main.py --config=configs/alexnet.py:smoke --mode=predict --images=photos/ --topk=5
  python main.py --config=vgg:depth=16 --config.batch_size=64         # a family name works too
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


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
  from alexnet_jax import console, host_memory
  # On CPU, malloc keeps freed memory for XLA's per-step buffers; set before JAX starts its
  # backend and threads (the config check below starts it), or XLA's threads miss it.
  if FLAGS.config.get("keep_host_memory") is True:
    host_memory.keep_freed_memory_on_cpu()
  # Training from a prepared store needs no TensorFlow (it may not even be installed); every
  # other path loads it now, quietly. The data pipeline keeps it off the GPUs.
  console.quiet(import_tensorflow=not (FLAGS.mode == "train" and FLAGS.config.input.pipeline == "store"))

  # Multi-host start-up comes first: it must precede any JAX computation, and the config
  # check below traces the model.
  from alexnet_jax import parallel
  parallel.initialize_distributed(FLAGS.coordinator, FLAGS.num_processes, FLAGS.process_id)
  # The finished config (config string, then --config.* overrides) is checked before
  # anything is read or written.
  from alexnet_jax.configs import validate
  validate.check(FLAGS.config)

  config = FLAGS.config
  workdir = FLAGS.workdir or os.path.join("runs", config.name)
  from alexnet_jax import workdir as workdir_lib
  workdir_lib.refuse_files({"--workdir": workdir, "config.input.store_dir": config.input.get("store_dir", ""),
                            "config.data_dir": config.get("data_dir", "")})
  logging.info("Config %s → workdir %s", config.name, workdir)
  if FLAGS.mode == "prepare":
    from alexnet_jax.data import prepare
    print(f"Store ready: {prepare.prepare(config)}")
  elif FLAGS.mode == "eval":
    from alexnet_jax.eval import run as eval_run
    eval_run.evaluate_checkpoint(config, workdir, FLAGS.step, protocols=_csv(FLAGS.protocols),
                                 sets=_csv(FLAGS.sets))
  elif FLAGS.mode == "predict":
    if not FLAGS.images:
      raise app.UsageError("--mode=predict needs --images=<image file or folder>.")
    from alexnet_jax import predict
    protocol = (_csv(FLAGS.protocols) or ("center",))[0]
    predict.run(config, workdir, FLAGS.images, step=FLAGS.step, topk=FLAGS.topk, protocol=protocol,
                json_path=FLAGS.json)
  else:
    from alexnet_jax import train
    _, summary = train.train_and_evaluate(config, workdir)
    ev = summary.get("eval") or {}
    if ev:
      print(f"Final eval at step {summary['step']}: top-1 {ev['top1']:.4f}, top-5 {ev['top5']:.4f}, "
            f"loss {ev['loss']:.4f} ({int(ev['num_examples'])} examples). Workdir: {workdir}")


def _csv(text: str | None) -> tuple[str, ...] | None:
  items = tuple(s.strip() for s in (text or "").split(",") if s.strip())
  return items or None


def parse_flags(argv: list[str]) -> list[str]:
  """absl's flag parsing, with a config-string or flag mistake reported as one line (exit 2)."""
  from alexnet_jax import config_files
  from alexnet_jax import errors
  try:
    return config_files.parse_flags(FLAGS, argv)
  except errors.UserError as e:
    _fail(e)
  raise AssertionError("unreachable")


def _fail(e: "BaseException | str") -> None:
  """Prints a user's mistake as `error: ...` lines (one per problem) on stderr; exit code 2."""
  for line in str(e).splitlines() or [""]:
    print(f"error: {line}", file=sys.stderr)
  sys.exit(2)


def _forget_previous_parse() -> None:
  """Lets `run` be called again in one process (a notebook, a test): the config flag defines one
  `--config.<field>` flag per override it parsed, and a second parse would define them twice."""
  FLAGS.unparse_flags()
  for name in [n for n in FLAGS if n.startswith("config.")]:
    delattr(FLAGS, name)


def run(argv: list[str] | None = None):
  """Runs main, turning the errors a user can fix into one clear line and exit code 2."""
  from alexnet_jax import console
  from alexnet_jax import errors
  console.quiet(import_tensorflow=False)
  _forget_previous_parse()
  try:
    from alexnet_jax import config_files
    argv = config_files.resolve_config_flag(sys.argv if argv is None else argv)
    sys.argv = argv  # the config flag reads its --config.<field> overrides from sys.argv
    # --help lists the key flags of the program (sys.argv[0]): make these flags its own.
    for flag in FLAGS.get_key_flags_for_module(__name__):
      FLAGS.register_key_flag_for_module(argv[0], flag)
    app.run(main, argv=argv, flags_parser=parse_flags)
  except SystemExit:
    raise
  except errors.UserError as e:
    _fail(e)
