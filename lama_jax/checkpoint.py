"""Orbax checkpoints of the train state together with the Grain iterator state.

One checkpoint step holds `state` (the TrainState pytree, sharded arrays) and `data` (each
host's input iterator position). Saves are asynchronous and atomic (orbax writes into a
temporary directory and renames it when complete); the newest `max_to_keep` steps are kept.
Restoring builds the target from abstract arrays that carry the *current* mesh's shardings, so
a run saved on 8 devices resumes on 4 or 1. A checkpoint that cannot be restored (a truncated
file, a missing item) is skipped for the newest one that can, and moved aside, never deleted.
On several hosts, a checkpoint counts as readable only if every host reads its part of it.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Optional, Tuple

import grain
import jax
import numpy as np
import orbax.checkpoint as ocp
from etils import epath
from jax.experimental import multihost_utils

from lama_jax.errors import LamaJaxError
from lama_jax.files import full_path

UNREADABLE = "unreadable_checkpoints"  # beside the checkpoints folder


class CheckpointRestoreError(LamaJaxError, RuntimeError):
    """Checkpoints exist but none can be restored; the message says why the newest fails."""


class _UnreadReadsOfFailedRestores(logging.Filter):
    """Drops asyncio's "Task/Future exception was never retrieved" reports of the array reads
    of a restore that failed: orbax stops at the first failing read, the others are collected
    later and would each print a traceback, while the failure is already logged once."""

    _READS = ("deserialize", "tensorstore", "zarr", "ocdbt")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lower()
        return not ("never retrieved" in message and any(r in message for r in self._READS))


_UNREAD_READS = _UnreadReadsOfFailedRestores()


class _Unreadable:
    """What an item handler of `_reporting` returns for an item it could not read."""

    def __init__(self, error: BaseException):
        self.error = error


def _reporting(handler_class: type) -> type:
    """`handler_class` whose restore returns `_Unreadable` instead of raising.

    Each host reads only its own part of a checkpoint (its shards, its iterator state), so a
    damaged checkpoint can fail on one host and read fine on another. Orbax ends a restore at a
    barrier that a host whose read raised never reaches: the others would wait there, and then
    train from a state the failed host does not have. Reporting instead of raising brings
    every host to that barrier, after which they agree (`_failed_processes`)."""

    class Reporting(handler_class):
        def restore(self, *args, **kwargs):
            try:
                return super().restore(*args, **kwargs)
            except Exception as e:  # orbax, TensorStore and grain raise many types for bad files
                return _Unreadable(e)

        @classmethod
        def typestr(cls) -> str:  # checkpoints name the handler any orbax user can read them with
            return handler_class.typestr()

    return Reporting


def _failed_processes(failed: bool) -> list:
    """The indices of the processes that passed `failed=True` (every process must call this)."""
    if jax.process_count() == 1:
        return [0] if failed else []
    flags = multihost_utils.process_allgather(np.asarray(failed))  # [processes]
    return np.flatnonzero(flags).tolist()


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"[:300]


class Checkpointer:
    """Save and restore (train state, data iterator) pairs under `directory`."""

    def __init__(self, directory: str, max_to_keep: int = 3, save_every: int = 1000):
        self.directory = directory
        handlers = ocp.handlers.DefaultCheckpointHandlerRegistry()
        state, data = (_reporting(ocp.StandardCheckpointHandler)(),
                       _reporting(grain.checkpoint.CheckpointHandler)())
        for item, handler, save, restore in (
                ("state", state, ocp.args.StandardSave, ocp.args.StandardRestore),
                ("data", data, grain.checkpoint.CheckpointSave, grain.checkpoint.CheckpointRestore)):
            handlers.add(item, save, handler)
            handlers.add(item, restore, handler)
        self.manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                 save_interval_steps=save_every,
                                                 enable_async_checkpointing=True),
            handler_registry=handlers)

    def latest_step(self) -> Optional[int]:
        """The newest complete checkpoint's step, or None."""
        return self.manager.latest_step()

    def should_save(self, step: int) -> bool:
        """Whether `step` is on the save interval."""
        return self.manager.should_save(step)

    def save(self, step: int, state: Any, data_iterator: grain.DatasetIterator,
             force: bool = False) -> None:
        """Starts an asynchronous save of `state` and the iterator's position at `step`."""
        self.manager.save(step, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state),
            data=grain.checkpoint.CheckpointSave(data_iterator)), force=force)

    def restore(self, step: int, abstract_state: Any,
                data_iterator: Optional[grain.DatasetIterator] = None) -> Any:
        """The state saved at `step`, laid out as `abstract_state` says (shapes, dtypes,
        shardings); moves `data_iterator` (if given) to the saved position. Raises on every
        process if any process cannot read its part."""
        args = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        restored = self.manager.restore(step, args=ocp.args.Composite(**args))
        errors = [item.error for item in restored.values() if isinstance(item, _Unreadable)]
        failed = _failed_processes(bool(errors))
        if errors:
            raise errors[0]
        if failed:
            raise CheckpointRestoreError(
                f"{self.directory}: checkpoint {step} cannot be read on process "
                f"{', '.join(map(str, failed))}")
        return restored["state"]

    def restore_newest(self, abstract_state: Any,
                       data_iterator: Optional[grain.DatasetIterator] = None
                       ) -> Optional[Tuple[int, Any]]:
        """(step, state) of the newest checkpoint that can be restored, or None when there
        is none. Newer unreadable ones are logged and moved to `UNREADABLE` beside the
        checkpoints folder (by process 0); if none can be restored, `CheckpointRestoreError`."""
        failures = []
        for step in sorted(self.manager.all_steps(), reverse=True):
            try:
                state = self.restore(step, abstract_state, data_iterator)
            except Exception as e:  # orbax and TensorStore raise many types for bad files
                logging.getLogger("asyncio").addFilter(_UNREAD_READS)
                logging.warning("checkpoint %d in %s cannot be restored (%s); trying the one "
                                "before", step, self.directory, _first_line(e))
                failures.append((step, e))
                continue
            for bad, _ in failures:
                self._set_aside(bad)
            return step, state
        if failures:
            step, error = failures[0]
            raise CheckpointRestoreError(
                f"{self.directory}: no checkpoint can be restored (the newest, step {step}: "
                f"{_first_line(error)}); move the folder away to start afresh")
        return None

    def _set_aside(self, step: int) -> None:
        """Moves the folder of checkpoint `step` out of the manager's sight, keeping it.

        Locally that is one rename. Cloud storage has no folders to rename: TensorFlow's file
        system moves the objects one by one, so an interrupted move leaves the checkpoint
        split between both places, still unreadable, and nothing lost."""
        if jax.process_index() == 0:
            parent = os.path.dirname(full_path(self.directory).rstrip("/"))
            target = epath.Path(parent) / UNREADABLE / f"{step}-{time.strftime('%Y%m%d-%H%M%S')}"
            target.parent.mkdir(parents=True, exist_ok=True)
            (epath.Path(self.directory) / str(step)).rename(target)
            logging.warning("moved the unreadable checkpoint %d to %s", step, target)
        if jax.process_count() > 1:  # the others must not list the step while it moves
            multihost_utils.sync_global_devices(f"lama_jax: set aside checkpoint {step}")
        self.manager.reload()

    def reached_preemption(self, step: int) -> bool:
        """Whether all hosts agree that a preemption notice has arrived (multi-host)."""
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        """Waits for pending saves and releases resources."""
        self.manager.wait_until_finished()
        self.manager.close()
