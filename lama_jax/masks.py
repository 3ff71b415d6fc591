"""Write an evaluation set in the official layout from a folder of photos.

    python -m lama_jax.masks --images photos/ --preset random_thick_512 --output eval/thick_512 --seed 0

As the official `bin/gen_mask_dataset.py`: each photo is resized (bicubic) so its short side is
the preset's size, a mask is drawn over the whole resized photo, a square crop is chosen that
covers the mask's far end, and masks covering more than half of the crop are redrawn. Writes
`name.png` (the square crop) beside `name_mask000.png`, keeping sub-folders. The mask of a
photo depends only on the seed and the photo's relative path, so the same seed gives identical
files (and adding photos does not change the others' masks).
"""

from __future__ import annotations

import argparse
import os
import sys
import zlib
from typing import List, Optional, Tuple

import numpy as np
from tqdm import tqdm

from lama_jax.data.masks import EVAL_PRESET_SIZES, MixedParams, mixed_mask, preset
from lama_jax.data.pipeline import resize_short_side
from lama_jax.data.sources import ImageFolder, decode_rgb8
from lama_jax.errors import LamaJaxError
from lama_jax.files import write_atomic
from lama_jax.images import ImageError, is_inside, png_bytes

PROG = "lama_jax.masks"
MAX_COVERAGE = 0.5  # the official max_tamper_area
MAX_ATTEMPTS = 100


def square_crop_start(rng: np.random.Generator, mask: np.ndarray) -> Tuple[int, int]:
    """(top, left) of a square crop of side min(H, W) that contains the far end of the hole
    along the long axis (the official `propose_random_square_crop` with min_overlap=1)."""
    h, w = mask.shape
    side = min(h, w)
    if h == w:
        return 0, 0
    axis_len, axis = (w, 1) if h < w else (h, 0)
    extent = np.flatnonzero(mask.any(axis=1 - axis))
    if extent.size == 0:
        start = int(rng.integers(0, axis_len - side + 1))
    else:
        far = int(extent[-1])
        low = max(0, min(axis_len - side - 1, far - side))
        high = max(low + 1, min(axis_len - side, far))
        start = int(rng.integers(low, high))
    return (0, start) if axis == 1 else (start, 0)


def make_example(image: np.ndarray, size: int, masks: MixedParams,
                 rng: np.random.Generator) -> Tuple[np.ndarray, np.ndarray]:
    """(square RGB uint8 [S, S, 3], mask uint8 [S, S]) for one photo."""
    image = resize_short_side(image, size, only_up=False)
    h, w = image.shape[:2]
    for _ in range(MAX_ATTEMPTS):
        mask = mixed_mask(rng, h, w, masks)
        top, left = square_crop_start(rng, mask)
        mask = mask[top:top + size, left:left + size]
        if mask.mean() <= MAX_COVERAGE:
            return image[top:top + size, left:left + size], mask
    raise RuntimeError(f"no mask with coverage <= {MAX_COVERAGE} in {MAX_ATTEMPTS} attempts")



def _seed(text: str) -> int:
    """argparse type of --seed: NumPy seeds are non-negative integers."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative integer")
    return seed


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="folder of photos (searched recursively)")
    parser.add_argument("--preset", required=True, choices=sorted(EVAL_PRESET_SIZES))
    parser.add_argument("--output", required=True, help="folder to write the set into")
    parser.add_argument("--seed", type=_seed, default=0, help="a non-negative integer")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    args = parser.parse_args(argv)

    def error(message: str) -> None:
        tqdm.write(f"{PROG}: error: {message}", file=sys.stderr)

    if is_inside(args.output, args.images):
        error(f"{args.output}: the output folder is inside the input folder {args.images}")
        return 1
    try:
        folder = ImageFolder(args.images)
    except LamaJaxError as e:
        error(str(e))
        return 1
    size, params = EVAL_PRESET_SIZES[args.preset], preset(args.preset)
    failed, kept, written, sources = 0, 0, 0, {}
    for path in tqdm(folder.paths, desc=args.preset, unit="image", file=sys.stderr):
        rel = os.path.relpath(path, args.images)
        stem = os.path.join(args.output, os.path.splitext(rel)[0])
        outputs = (stem + ".png", stem + "_mask000.png")
        if stem in sources:
            error(f"{path}: would be written to {outputs[0]} as {sources[stem]} is; rename one")
            failed += 1
            continue
        sources[stem] = path
        if not args.overwrite and any(os.path.lexists(p) for p in outputs):
            kept += 1
            continue
        try:
            image = decode_rgb8({"path": path})
        except ImageError as e:
            error(f"{path}: {e}")
            failed += 1
            continue
        rng = np.random.default_rng([args.seed, zlib.crc32(rel.encode())])
        crop, mask = make_example(image, size, params, rng)
        try:
            write_atomic(outputs[0], png_bytes(crop))
            write_atomic(outputs[1], png_bytes(mask * 255))
        except OSError as e:
            error(f"{outputs[0]}: cannot write ({e.strerror or e})")
            failed += 1
            continue
        written += 1
    print(f"wrote {written} image(s) and masks to {args.output}"
          + (f"; kept {kept} existing (--overwrite replaces them)" if kept else "")
          + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
