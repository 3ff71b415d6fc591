"""Grain input pipelines for training and evaluation.

Training, per JAX process (host):

    source -> this host's shard -> shuffle (new order each epoch) -> repeat
           -> decode (a corrupt record is skipped: the next good one of the shard takes its
              place, a warning is logged and the element's `skipped` count says so)
           -> random_map: upscale if smaller than the crop, random crop, horizontal flip,
              mask from the training preset -> batch -> [worker processes] -> float32

`random_map` seeds each record's generator from the pipeline seed and the record's position,
so a record's crop, flip and mask do not depend on the worker count or on restarts, and the
iterator's state (`get_state`/`set_state`, checkpointed with the train state) resumes with
exactly the batches an uninterrupted run would have seen.

Host batches are dicts: `image` [B, H, W, 3] float32 in [0, 1], `mask` [B, H, W, 1] float32
in {0, 1} (1 = hole), `skipped` [B] int32.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any, Dict, Optional, Sequence

import grain
import numpy as np
from absl import flags
from PIL import Image

from lama_jax.errors import ConfigError
from lama_jax.data.masks import MixedParams, drawn_mask
from lama_jax.data.sources import Record, decode_rgb8, record_name
from lama_jax.images import ImageError

Batch = Dict[str, np.ndarray]


class DecodedShard:
    """Random access to the decoded images of one host's shard of a source.

    Local index i is source record `shard_index + i * shard_count`. A record that cannot be
    decoded is replaced by the next decodable one of the same shard, with a warning; a shard
    in which no record decodes is refused when it is built.
    """

    def __init__(self, source: Sequence[Record], shard_index: int = 0, shard_count: int = 1):
        if not 0 <= shard_index < shard_count:
            raise ConfigError(f"shard_index {shard_index} not in [0, {shard_count})")
        self.source, self.shard_index, self.shard_count = source, shard_index, shard_count
        self._len = len(range(shard_index, len(source), shard_count))
        if self._len == 0:
            raise ConfigError(f"shard {shard_index} of {shard_count} of a source with "
                             f"{len(source)} records is empty")
        self._check_decodable()

    def _check_decodable(self) -> None:
        """Raises `ImageError` at once, before any worker starts, when no record of the shard
        decodes (reading records until the first one that does)."""
        first_error = None
        for index in range(self._len):
            global_index = self.shard_index + index * self.shard_count
            record = self.source[global_index]
            try:
                decode_rgb8(record)
                return
            except ImageError as e:
                first_error = first_error or f"{record_name(record, global_index)}: {e}"
        raise ImageError(f"none of the {self._len} records of shard {self.shard_index} of "
                         f"{self.shard_count} can be decoded (the first: {first_error})")

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int) -> Dict[str, Any]:
        for skipped in range(self._len):
            global_index = self.shard_index + ((index + skipped) % self._len) * self.shard_count
            record = self.source[global_index]
            try:
                return {"image": decode_rgb8(record), "skipped": skipped}
            except ImageError as e:
                logging.warning("skipping %s: %s", record_name(record, global_index), e)
        raise ImageError(f"no record of shard {self.shard_index}/{self.shard_count} can be decoded")


def resize_short_side(image: np.ndarray, size: int, only_up: bool) -> np.ndarray:
    """Bicubic resize so that min(H, W) == size (only if smaller when `only_up`)."""
    h, w = image.shape[:2]
    short = min(h, w)
    if short == size or (only_up and short > size):
        return image
    factor = size / short
    new_w, new_h = max(size, round(w * factor)), max(size, round(h * factor))
    return np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BICUBIC))


@dataclasses.dataclass(frozen=True)
class TrainSample:
    """random_map transform: crop, flip and mask one decoded image (masks drawn at side
    `mask_size`, 0: the crop's, and resized to the crop)."""

    crop_size: int
    masks: MixedParams
    mask_size: int = 0

    def __call__(self, element: Dict[str, Any], rng: np.random.Generator) -> Dict[str, Any]:
        image = resize_short_side(element["image"], self.crop_size, only_up=True)
        h, w = image.shape[:2]
        s = self.crop_size
        top, left = int(rng.integers(0, h - s + 1)), int(rng.integers(0, w - s + 1))
        image = image[top:top + s, left:left + s]  # [S, S, 3] uint8
        if rng.random() < 0.5:
            image = image[:, ::-1]
        mask = drawn_mask(rng, s, self.masks, self.mask_size)
        return {"image": np.ascontiguousarray(image), "mask": mask[..., None],
                "skipped": np.int32(element["skipped"])}


def to_float(batch: Dict[str, np.ndarray]) -> Batch:
    """uint8 images and masks -> float32 in [0, 1] and {0, 1}."""
    return {"image": batch["image"].astype(np.float32) / 255.0,
            "mask": batch["mask"].astype(np.float32), "skipped": batch["skipped"]}


def train_dataset(source: Sequence[Record], *, crop_size: int, batch_size: int, seed: int,
                  masks: MixedParams, mask_size: int = 0, worker_count: int = 0,
                  shard_index: int = 0, shard_count: int = 1,
                  worker_buffer_size: int = 2) -> grain.IterDataset:
    """The infinite training pipeline of one host; `batch_size` is this host's batch; masks
    are drawn at side `mask_size` (0: `crop_size`) and resized to the crop."""
    ds = grain.MapDataset.source(DecodedShard(source, shard_index, shard_count))
    ds = ds.seed(seed).shuffle().repeat(None)
    ds = ds.random_map(TrainSample(crop_size, masks, mask_size))
    ds = ds.batch(batch_size, drop_remainder=True).to_iter_dataset()
    if worker_count > 0:
        # Grain's workers read absl flags; outside an absl app (notebooks, tests) mark them
        # parsed so that their defaults apply.
        if not flags.FLAGS.is_parsed():
            flags.FLAGS.mark_as_parsed()
        ds = ds.mp_prefetch(grain.MultiprocessingOptions(
            num_workers=worker_count, per_worker_buffer_size=worker_buffer_size))
    return ds.map(to_float)


@dataclasses.dataclass(frozen=True)
class EvalSample:
    """map_with_index transform: a square crop of side `size` and a fixed mask per record
    (drawn at side `mask_size`, 0: `size`, and resized)."""

    size: int
    masks: MixedParams
    seed: int
    mask_size: int = 0

    def __call__(self, index: int, element: Dict[str, Any]) -> Dict[str, Any]:
        image = resize_short_side(element["image"], self.size, only_up=False)
        h, w = image.shape[:2]
        top, left = (h - self.size) // 2, (w - self.size) // 2
        image = image[top:top + self.size, left:left + self.size]
        rng = np.random.default_rng([self.seed, index])
        return {"image": np.ascontiguousarray(image),
                "mask": drawn_mask(rng, self.size, self.masks, self.mask_size)[..., None],
                "skipped": np.int32(element["skipped"])}


def eval_dataset(source: Sequence[Record], *, size: int, batch_size: int, masks: MixedParams,
                 seed: int = 0, num_records: Optional[int] = None,
                 mask_size: int = 0) -> grain.MapDataset:
    """A fixed validation set: the first `num_records` records, centre-cropped squares with
    masks that depend only on (seed, record index), drawn at side `mask_size` (0: `size`).
    Finite, unshuffled; the last batch may be smaller."""
    ds = grain.MapDataset.source(DecodedShard(source))
    if num_records is not None:
        ds = ds[:num_records]
    return ds.map_with_index(EvalSample(size, masks, seed, mask_size)).batch(batch_size).map(to_float)
