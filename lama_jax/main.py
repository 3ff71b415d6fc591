"""Train LaMa: `python -m lama_jax.main --config=configs/big.py --workdir=DIR`.

Override any config value on the command line, e.g. `--config.batch_size=240`. Restarting with
the same --workdir resumes from its newest checkpoint. On several hosts (a Cloud TPU pod
slice, a multi-node GPU job), run the same command on every host with --distributed; where
the cluster is not auto-detected (TPU, SLURM, Open MPI, Kubernetes are), also pass
--coordinator_address=HOST:PORT (of process 0), --num_processes=N and --process_id=I.
"""

import logging
import os
import re
import sys

import jax
from absl import app, flags
from ml_collections import config_flags

from lama_jax.errors import LamaJaxError
from lama_jax.train import train_and_evaluate
from lama_jax.xla_flags import enable_cpu_onednn

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "experiment config file (configs/*.py)",
                                lock_config=True)
flags.DEFINE_string("workdir", None, "folder for checkpoints, logs and the exported model")
flags.DEFINE_bool("distributed", False,
                  "call jax.distributed.initialize() (multi-host; auto-detects TPU pods, SLURM, ...)")
flags.DEFINE_string("coordinator_address", None,
                    "with --distributed where nothing is auto-detected: host:port of process 0")
flags.DEFINE_integer("num_processes", None, "with --distributed: number of processes")
flags.DEFINE_integer("process_id", None, "with --distributed: this process's index")
flags.mark_flags_as_required(["config", "workdir"])


class _QuietLibraries(logging.Filter):
    """Drops INFO records of orbax (several lines per checkpoint); keeps its warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.WARNING or "/orbax/" not in record.pathname


def _config_file(argv) -> str:
    """The file of `--config=PATH[:ARG]` (or `--config PATH`) in `argv`; "" when not given."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1].split(":", 1)[0]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1].split(":", 1)[0]
    return ""


def parse_flags(argv):
    """absl's flag parsing with one-line errors: a bad flag value, a config file that is
    missing or cannot import its base, or an unknown `--config.KEY` (which ml_collections
    raises from deep inside the parser) named with the closest known key."""
    path = _config_file(argv)
    try:
        if path and not os.path.isfile(path):
            raise flags.Error(f"--config: {path}: no such config file")
        return FLAGS(argv)
    except flags.Error as e:
        message = str(e)
        if "Traceback (most recent call last)" in message:  # a config file's get_config raised
            message = "--config: " + message.strip().splitlines()[-1].split(": ", 1)[-1]
    except ImportError as e:  # a config's `from configs import ...` outside the repository
        message = (f"--config: {path}: cannot import {e.name!r}; run from the repository root "
                   "(the folder holding configs/)")
    except AttributeError as e:  # ml_collections: 'KEY\nDid you mean "NEAR" instead of "KEY"?'
        text = str(e).encode().decode("unicode_escape")
        key = re.search(r"'([^'\s]+)'", text)
        near = re.search(r'Did you mean "([^"]+)"', text)
        name = key.group(1) if key else text
        flags_given = [a.split("=")[0] for a in argv if a.startswith("--config.")]
        flag = next((f for f in flags_given if f.endswith("." + name)), "--config")
        message = (f"{flag}: the config has no key {name!r}"
                   + (f"; did you mean {near.group(1)!r}?" if near else ""))
    print(f"lama_jax.main: error: {message}", file=sys.stderr)
    sys.exit(2)


def main(argv):
    """Entry point after absl parsed the flags."""
    del argv
    for handler in logging.getLogger().handlers:
        handler.addFilter(_QuietLibraries())
    enable_cpu_onednn()  # XLA reads its flags when the backend starts, after the imports
    if FLAGS.distributed:
        jax.distributed.initialize(FLAGS.coordinator_address, FLAGS.num_processes,
                                   FLAGS.process_id)
    logging.info("JAX process %d of %d, %d local / %d global devices (%s)", jax.process_index(),
                 jax.process_count(), jax.local_device_count(), jax.device_count(),
                 jax.devices()[0].device_kind)
    try:
        train_and_evaluate(FLAGS.config, FLAGS.workdir)
    except LamaJaxError as e:  # bad input: one line; anything else keeps its traceback
        print(f"lama_jax.main: error: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main, flags_parser=parse_flags)
