"""Random-access image sources for the Grain pipeline, and decoding to RGB uint8.

A source is any sequence (`len`, `[i]`) of records; a record is a dict holding either
`"image"` (a decoded array, as `tfds.data_source` returns, or encoded bytes) or `"path"`.

    sample_photos()                     photos that ship inside scikit-image (offline default)
    PeriodicImages(count, size, seed)   procedural periodic patterns (lama_jax.data.periodic)
    ImageFolder("/data/places")         *.jpg/*.jpeg/*.png/*.webp under a folder, recursively
    tfds_source("places365_small", "train", data_dir=...)   an ArrayRecord TFDS dataset
"""

from __future__ import annotations

import io
import os
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from PIL import Image, ImageOps

from lama_jax.data.periodic import PeriodicImages
from lama_jax.errors import ConfigError, InputNotFoundError
from lama_jax.images import ImageError, list_files, to_rgb_float

Record = Dict[str, Any]
FOLDER_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
# Colour and grayscale photos bundled in the scikit-image wheel (no download needed).
SAMPLE_PHOTOS = ("astronaut", "camera", "chelsea", "coffee", "rocket", "hubble_deep_field",
                 "immunohistochemistry", "retina", "stereo_motorcycle", "brick", "grass",
                 "gravel", "moon", "coins", "page")


def sample_photos(names: Sequence[str] = SAMPLE_PHOTOS) -> List[Record]:
    """The scikit-image sample photos as records (arrays in their native modes)."""
    import skimage.data

    records = []
    for name in names:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo pairs: take the left view
            image = image[0]
        records.append({"image": np.asarray(image), "name": name})
    return records


class ImageFolder:
    """Image files under `root` (recursive, any letter case of the extension, folder links not
    followed), sorted by path for a stable order."""

    def __init__(self, root: str):
        if not os.path.isdir(root):
            raise InputNotFoundError(f"{root}: no such folder")
        self.paths = list_files(root, FOLDER_EXTENSIONS)
        if not self.paths:
            raise ConfigError(f"{root}: no {'/'.join(FOLDER_EXTENSIONS)} images found")

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Record:
        return {"path": self.paths[index]}


def tfds_source(name: str, split: str, data_dir: Optional[str] = None):
    """`tfds.data_source(name, split)`: random access into a prepared ArrayRecord dataset."""
    import tensorflow_datasets as tfds

    return tfds.data_source(name, split=split, data_dir=data_dir)


# "periodic": images per split, and the seed of each (held-out splits draw other images).
PERIODIC_COUNT = 100_000
PERIODIC_SEEDS = {"train": 0, "validation": 1, "test": 2}
PERIODIC_SIZE = 256  # px, unless the spec names one ("periodic:64")


def make_source(spec: str, split: str = "train", data_dir: Optional[str] = None):
    """A source from a config string: "sample", "periodic" or "periodic:SIZE" (procedural
    periodic images of SIZE px, default 256, `lama_jax.data.periodic`), "folder:/path" or
    "tfds:name"."""
    kind, _, arg = spec.partition(":")
    if kind == "sample":
        return sample_photos()
    if kind == "periodic":
        if split not in PERIODIC_SEEDS:
            raise ConfigError(f"periodic source: unknown split {split!r}; expected one of "
                              f"{sorted(PERIODIC_SEEDS)}")
        if arg and not (arg.isdigit() and int(arg) >= 8):
            raise ConfigError(f"data source {spec!r}: the size after 'periodic:' must be a "
                              f"whole number of pixels, 8 or more")
        return PeriodicImages(PERIODIC_COUNT, size=int(arg or PERIODIC_SIZE),
                              seed=PERIODIC_SEEDS[split])
    if kind == "folder" and arg:
        return ImageFolder(arg)
    if kind == "tfds" and arg:
        return tfds_source(arg, split, data_dir)
    raise ConfigError(f"unknown data source {spec!r}; use 'sample', 'periodic[:SIZE]', 'folder:/path' "
                      f"or 'tfds:name'")


def record_name(record: Record, index: int) -> str:
    """A name for messages: the file path, the sample name, or the record index."""
    return str(record.get("path") or record.get("name") or f"record {index}")


def _array_to_pil(image: np.ndarray) -> Image.Image:
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    if image.dtype == np.uint16:
        return Image.fromarray(image) if image.ndim == 2 else Image.fromarray((image >> 8).astype(np.uint8))
    if image.dtype != np.uint8:
        raise ImageError(f"unsupported image array dtype {image.dtype}")
    return Image.fromarray(image)


def decode_rgb8(record: Record) -> np.ndarray:
    """RGB uint8 [H, W, 3] of a record, whatever its mode (grayscale, palette, RGBA, 16-bit).

    Raises `ImageError` for data that cannot be decoded.
    """
    image = record.get("image")
    try:
        if isinstance(image, np.ndarray):
            pil = _array_to_pil(image)
        else:
            source = io.BytesIO(image) if isinstance(image, (bytes, bytearray)) else record["path"]
            with Image.open(source) as f:
                f.load()
                pil = ImageOps.exif_transpose(f)
    except ImageError:
        raise
    except Exception as e:  # Pillow raises many types for corrupt data
        raise ImageError(f"cannot decode image ({e})") from None
    if pil.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # high bit depth: scale, then round
        rgb, _ = to_rgb_float(pil)
        if not np.isfinite(rgb).all():
            raise ImageError("NaN or infinite pixel values")
        return np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return np.asarray(pil.convert("RGB"))
