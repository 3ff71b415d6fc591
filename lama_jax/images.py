"""Reading photos and masks from disk, listing them in folders, and writing results.

Photos come back as RGB float32 in [0, 1] whatever their mode (grayscale, palette, RGBA,
16-bit), upright (EXIF orientation applied), with their alpha channel kept aside. Masks come
back as boolean hole maps: any non-zero pixel is a hole, as the official `predict` binarises.
An image of more than `MAX_PIXELS` pixels is refused from its header (`set_max_pixels`
changes the limit; the command-line tools take `--max-pixels`).
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Iterator, List, Optional, Tuple

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from lama_jax.errors import LamaJaxError
from lama_jax.files import write_atomic

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
_EXIF_ORIENTATION = 0x0112
# Pillow's own default: about 89 megapixels (a 3-byte-per-pixel image of 256 MiB).
MAX_PIXELS = Image.MAX_IMAGE_PIXELS


class ImageError(LamaJaxError, ValueError):
    """An image or mask that cannot be used; the message names the file."""


def is_inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies under it (after resolving links)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def has_extension(path: str, extensions: Tuple[str, ...]) -> bool:
    """Whether `path` ends with one of `extensions` (lower case), in any letter case."""
    return path.lower().endswith(extensions)


def list_files(root: str, extensions: Tuple[str, ...] = IMAGE_EXTENSIONS) -> List[str]:
    """Sorted paths of the files under `root` whose extension is one of `extensions` (any
    letter case). Links to folders are not followed, so a link loop or a link out of the tree
    cannot repeat or widen the listing; links to files are listed like files."""
    return sorted(os.path.join(folder, name)
                  for folder, _, names in os.walk(root, followlinks=False)
                  for name in names
                  if has_extension(name, extensions) and os.path.isfile(os.path.join(folder, name)))


def set_max_pixels(limit: Optional[int]) -> None:
    """Refuse images of more than `limit` pixels from now on (None: no limit)."""
    Image.MAX_IMAGE_PIXELS = limit


@contextlib.contextmanager
def _opened(path: str) -> Iterator[Image.Image]:
    """Pillow's image of `path`; whatever goes wrong reading it is an `ImageError` naming it."""
    try:
        with Image.open(path) as im:
            limit = Image.MAX_IMAGE_PIXELS
            if limit and im.size[0] * im.size[1] > limit:
                raise ImageError(f"{path}: {im.size[0]}x{im.size[1]} is over the limit of {limit} "
                                 f"pixels (raise it with --max-pixels)")
            yield im
    except FileNotFoundError:
        raise ImageError(f"{path}: no such file") from None
    except Image.DecompressionBombError as e:
        raise ImageError(f"{path}: over the pixel limit ({e}; raise it with --max-pixels)") from None
    except ImageError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ImageError(f"{path}: cannot read image ({e})") from None


def _open(path: str) -> Image.Image:
    with _opened(path) as im:
        im.load()
        return ImageOps.exif_transpose(im)


def to_rgb_float(im: Image.Image) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """A Pillow image as (RGB float32 [H, W, 3] in [0, 1], alpha float32 [H, W] or None)."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit (or 32-bit int) grayscale
        gray = np.asarray(im, dtype=np.float32) / 65535.0
        return np.repeat(np.clip(gray, 0, 1)[..., None], 3, axis=-1), None
    if im.mode == "F":  # float images are returned as stored; `Inpainter` checks the range
        gray = np.asarray(im, dtype=np.float32)
        return np.repeat(gray[..., None], 3, axis=-1), None
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    rgba = np.asarray(im.convert("RGBA" if has_alpha else "RGB"), dtype=np.float32) / 255.0
    return rgba[..., :3], (rgba[..., 3] if has_alpha else None)


def read_image(path: str) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """(RGB float32 [H, W, 3] in [0, 1], alpha float32 [H, W] or None) of an image file."""
    return to_rgb_float(_open(path))


def read_mask(path: str) -> np.ndarray:
    """Boolean [H, W] hole map of a mask file (non-zero = hole)."""
    im = _open(path)
    if im.mode not in ("1", "L", "I", "I;16", "I;16B", "I;16L", "F"):
        im = im.convert("L")
    return np.asarray(im) > 0


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats -> uint8 the way the official predict writes them (clip, truncate)."""
    return np.clip(image * 255, 0, 255).astype(np.uint8)


def image_size(path: str) -> Tuple[int, int]:
    """(height, width) of an image file as `read_image` returns it (EXIF rotation applied),
    from its header only."""
    with _opened(path) as im:
        w, h = im.size
        rotated = im.getexif().get(_EXIF_ORIENTATION, 1) in (5, 6, 7, 8)
    return (w, h) if rotated else (h, w)


def check_size(path: str, size: Tuple[int, int], reference: str,
               reference_size: Tuple[int, int]) -> None:
    """Raises `ImageError` unless the image at `path`, of (height, width) `size`, is as large
    as the one at `reference`."""
    if tuple(size) != tuple(reference_size):
        raise ImageError(f"{path}: is {size[1]}x{size[0]} but {reference} is "
                         f"{reference_size[1]}x{reference_size[0]}")


def png_bytes(pixels: np.ndarray) -> bytes:
    """The PNG encoding of uint8 pixels [H, W], [H, W, 3] or [H, W, 4]."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def write_png(path: str, rgb: np.ndarray, alpha: Optional[np.ndarray] = None) -> None:
    """Writes RGB (+ alpha) floats in [0, 1] as an 8-bit PNG, atomically."""
    pixels = to_uint8(rgb if alpha is None else np.concatenate([rgb, alpha[..., None]], -1))
    write_atomic(path, png_bytes(pixels))
