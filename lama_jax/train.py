"""train_and_evaluate(config, workdir): LaMa training on a device mesh, resumable exactly.

    mesh -> data (this host's shard) -> abstract state -> restore or init -> loop:
        jitted step (explicit shardings, donated state) -> metrics every `log_every` steps
        -> validation + image grid every `eval_every` steps -> checkpoint every
        `checkpoint_every` steps and on SIGTERM -> export the model directory at the end

`workdir` holds `checkpoints/` (orbax), TensorBoard event files and `model/` (a model
directory for `Inpainter.load` and `python -m lama_jax.predict`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import threading
from typing import Any, Dict, Optional, Sequence

import jax
import ml_collections
import numpy as np
from clu import metric_writers, periodic_actions
from etils import epath
from jax.experimental import multihost_utils

from lama_jax.errors import ConfigError, LamaJaxError
from lama_jax.checkpoint import Checkpointer
from lama_jax.data import masks as mask_presets
from lama_jax.data.pipeline import eval_dataset, train_dataset
from lama_jax.data.sources import make_source
from lama_jax.files import exclusive_lock, full_path, is_remote
from lama_jax.model_dir import Model, load_model, save_model
from lama_jax.parallel import global_batch, make_mesh, replicated, with_shardings
from lama_jax.state import TrainState, backbone_variables, build_networks, with_weights
from lama_jax.steps import compile_training, eval_step


LOCK_FILE = "lock"  # in the workdir, held by the run's process 0


class TrainingDiverged(LamaJaxError, RuntimeError):
    """A loss or gradient became NaN or Inf; the message says where and what was kept."""


@contextlib.contextmanager
def _sigterm_flag():
    """An event set by SIGTERM (a preemption notice) while the block runs; the previous
    handler is restored afterwards. Signals can only be caught in the main thread."""
    event = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield event
        return
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: event.set())
    try:
        yield event
    finally:
        signal.signal(signal.SIGTERM, previous)


def _image_grid(batch: Dict[str, np.ndarray], inpainted: np.ndarray, rows: int = 4) -> np.ndarray:
    """[rows*H, 4*W, 3]: masked input | mask | inpainted | original, one row per image."""
    image, mask = batch["image"][:rows], batch["mask"][:rows]
    columns = [image * (1 - mask), np.repeat(mask, 3, axis=-1), inpainted[:rows], image]
    return np.concatenate([np.concatenate(list(c), axis=0) for c in columns], axis=1)


def _check_finite(metrics: Dict[str, np.ndarray], step: int, last_saved: Optional[int]) -> None:
    if not bool(metrics["all_finite"]):
        bad = sorted(k for k, v in metrics.items() if k != "all_finite" and not np.all(np.isfinite(v)))
        kept = f"the last good checkpoint is step {last_saved}" if last_saved else "no checkpoint was written"
        raise TrainingDiverged(f"non-finite values at step {step} in {', '.join(bad)}; stopped, "
                               f"{kept}")


def train_and_evaluate(config: ml_collections.ConfigDict, workdir: str,
                       writers: Sequence[Any] = ()) -> TrainState:
    """Trains (or resumes) the run in `workdir`; returns the final state. A second run on the
    same workdir is refused with `LockedError` while the first one lives. `writers` (clu
    metric writers, e.g. `lama_jax.notebook.LiveView`) get the metrics and validation grids
    too, beside the TensorBoard files."""
    with contextlib.ExitStack() as lock:
        if is_remote(workdir):  # gs://...: no local folder, and no file lock to take
            epath.Path(workdir).mkdir(parents=True, exist_ok=True)
            if jax.process_index() == 0:
                logging.warning("workdir %s is in cloud storage, where a second run on it "
                                "cannot be detected: start one run per workdir", workdir)
        else:
            os.makedirs(workdir, exist_ok=True)
            if jax.process_index() == 0:  # the other hosts of a run share process 0's workdir
                lock.enter_context(exclusive_lock(os.path.join(workdir, LOCK_FILE),
                                                  f"workdir {workdir}"))
        return _train(config, workdir, writers)


def _train(config: ml_collections.ConfigDict, workdir: str, writers: Sequence[Any]) -> TrainState:
    process, processes = jax.process_index(), jax.process_count()
    if config.batch_size % jax.device_count():
        raise ConfigError(f"batch_size {config.batch_size} must be divisible by the number of "
                         f"devices ({jax.device_count()})")
    mesh = make_mesh(config.mesh.data, config.mesh.fsdp)
    nets = build_networks(config)

    # Data: this host's shard, and a fixed validation set.
    source = make_source(config.data.source, config.data.split, config.data.data_dir or None)
    train_iter = iter(train_dataset(
        source, crop_size=config.data.crop_size, batch_size=config.batch_size // processes,
        seed=config.seed, masks=mask_presets.preset(config.data.mask_preset),
        mask_size=config.data.mask_size, worker_count=config.data.worker_count, shard_index=process, shard_count=processes))
    eval_source = make_source(config.data.eval_source, config.data.eval_split,
                              config.data.data_dir or None)
    eval_set = eval_dataset(eval_source, size=config.data.crop_size,
                            batch_size=config.eval_batch_size,
                            masks=mask_presets.preset(config.data.eval_mask_preset),
                            seed=config.seed, num_records=config.data.eval_records,
                            mask_size=config.data.mask_size)

    # State: abstract shapes first, then a sharded restore or init.
    rng = jax.random.key(config.seed)
    program = compile_training(nets, config.losses, mesh, config.data.crop_size)
    abstract, shardings = program.abstract_state, program.shardings
    checkpointer = Checkpointer(os.path.join(full_path(workdir), "checkpoints"),
                                config.keep_checkpoints, config.checkpoint_every)
    restored = checkpointer.restore_newest(with_shardings(abstract, shardings), train_iter)
    if restored is not None:
        start, state = restored
        logging.info("resumed from step %d (checkpoint in %s)", start, workdir)
    else:
        state = program.init(rng)
        if config.init_from:
            model = load_model(config.init_from)
            state = jax.device_put(with_weights(state, model.generator_variables,
                                                model.discriminator_variables), shardings)
            logging.info("initialised from %s", config.init_from)
        start = 0
        logging.info("starting from scratch")
    weights_path = config.losses[nets.backbone.weights_key] if nets.backbone else ""
    backbone = jax.device_put(backbone_variables(nets, weights_path), replicated(mesh))

    step_fn = program.step
    eval_fn = jax.jit(functools.partial(eval_step, nets),
                      in_shardings=(shardings, replicated(mesh)), out_shardings=replicated(mesh))

    writer = metric_writers.create_default_writer(workdir, just_logging=process > 0)
    if writers:
        writer = metric_writers.MultiWriter([writer, *writers])
    writer.write_hparams({k: str(v) for k, v in config.to_dict().items()})
    report = periodic_actions.ReportProgress(num_train_steps=config.num_train_steps,
                                             writer=writer, every_steps=config.log_every)
    last_saved = start or None
    skipped_total = 0

    def evaluate(step: int) -> None:
        sums: Dict[str, float] = {}
        count, grid = 0, None
        for host_batch in eval_set:
            out = jax.device_get(eval_fn(state, jax.device_put(host_batch, replicated(mesh))))
            for k in ("l1_hole", "psnr", "ssim"):
                sums[k] = sums.get(k, 0.0) + float(np.sum(out[k]))
            count += len(out["l1_hole"])
            if grid is None:
                grid = _image_grid(host_batch, out["inpainted"])
        writer.write_scalars(step, {f"eval/{k}": v / count for k, v in sums.items()})
        writer.write_images(step, {"eval/inpainting": grid[None]})

    def save(step: int, metrics: Optional[Dict[str, np.ndarray]], force: bool = False) -> None:
        nonlocal last_saved
        if metrics is not None:
            _check_finite(metrics, step, last_saved)
        checkpointer.save(step, state, train_iter, force=force)
        last_saved = step

    metrics = None
    step = start
    with _sigterm_flag() as preempted, contextlib.ExitStack() as cleanup:
        cleanup.callback(writer.flush)
        cleanup.callback(checkpointer.close)
        while step < config.num_train_steps:
            host_batch = next(train_iter)
            skipped_total += int(host_batch.pop("skipped").sum())  # counted on the host: no sync
            state, metrics = step_fn(state, global_batch(host_batch, mesh), backbone)
            step += 1
            report(step)
            if step % config.log_every == 0 or step == config.num_train_steps:
                host = jax.device_get(metrics)
                _check_finite(host, step, last_saved)
                host.pop("all_finite")
                writer.write_scalars(step, {**host, "data/skipped_records": skipped_total})
            if step % config.eval_every == 0 or step == config.num_train_steps:
                evaluate(step)
            stop = preempted.is_set() or (processes > 1 and checkpointer.reached_preemption(step))
            if checkpointer.should_save(step) or stop or step == config.num_train_steps:
                save(step, jax.device_get(metrics), force=True)
            if stop:
                logging.warning("preemption notice: saved step %d; restart with the same "
                                "--workdir to resume", step)
                break
    if step == config.num_train_steps:
        discriminator = state.discriminator
        g, d = multihost_utils.process_allgather(
            (state.generator.variables, discriminator and discriminator.variables), tiled=True)
        if process == 0:
            export = os.path.join(workdir, "model")
            d_config = nets.discriminator.config if nets.discriminator else None
            save_model(export, Model(nets.generator.config, g, d_config, d,
                                     {"source": f"trained in {workdir}", "step": step}),
                       overwrite=True)
            logging.info("wrote the trained model to %s", export)
    return state
