"""Orbax checkpoints of the train state together with the Grain iterator state.

One checkpoint step holds `state` (the TrainState pytree, sharded arrays) and `data` (each
host's input iterator position). Saves are asynchronous and atomic (orbax writes into a
temporary directory and renames it when complete); the newest `max_to_keep` steps are kept.
Restoring builds the target from abstract arrays that carry the *current* mesh's shardings, so
a run saved on 8 devices resumes on 4 or 1.
"""

from __future__ import annotations

from typing import Any, Optional

import grain
import orbax.checkpoint as ocp


class Checkpointer:
    """Save and restore (train state, data iterator) pairs under `directory`."""

    def __init__(self, directory: str, max_to_keep: int = 3, save_every: int = 1000):
        self.manager = ocp.CheckpointManager(
            directory,
            options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep,
                                                 save_interval_steps=save_every,
                                                 enable_async_checkpointing=True),
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "data": grain.checkpoint.CheckpointHandler()})

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
        shardings); moves `data_iterator` (if given) to the saved position."""
        args = {"state": ocp.args.StandardRestore(abstract_state)}
        if data_iterator is not None:
            args["data"] = grain.checkpoint.CheckpointRestore(data_iterator)
        return self.manager.restore(step, args=ocp.args.Composite(**args))["state"]

    def reached_preemption(self, step: int) -> bool:
        """Whether all hosts agree that a preemption notice has arrived (multi-host)."""
        return self.manager.reached_preemption(step)

    def close(self) -> None:
        """Waits for pending saves and releases resources."""
        self.manager.wait_until_finished()
        self.manager.close()
