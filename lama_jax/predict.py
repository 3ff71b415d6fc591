"""Inpaint your own photos from the command line.

    # one photo and its mask (non-zero pixels are the hole)
    python -m lama_jax.predict --model big-lama-jax --input photo.jpg --mask photo_mask.png --output out/

    # a folder in the official layout: name.png beside name_mask000.png, name_mask001.png, ...
    python -m lama_jax.predict --model big-lama-jax --input folder/ --output out/

Each result is written as a PNG named after its mask file (folder mode, as the official
predict names them) or after the photo (single mode). An RGBA photo keeps its alpha channel.
Inputs are never overwritten; existing outputs only with --overwrite. In folder mode a bad
file is reported on one line and the rest are still processed; the exit code is 1 if
anything failed.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import os
import sys
from typing import List, Optional

from tqdm import tqdm

from lama_jax.images import (IMAGE_EXTENSIONS, ImageError, is_inside, read_image, read_mask,
                             write_png)
from lama_jax.inpaint import Inpainter
from lama_jax.model_dir import ModelDirError
from lama_jax.xla_flags import enable_cpu_onednn

PROG = "lama_jax.predict"


@dataclasses.dataclass(frozen=True)
class Job:
    """One inpainting: a photo, its mask and where the result goes."""

    image: Optional[str]
    mask: str
    output: str



def folder_jobs(input_dir: str, output_dir: str) -> tuple[List[Job], List[str]]:
    """Jobs for every `*_mask*.png` under `input_dir`, and one-line errors for photos
    without a mask and masks without a photo."""
    masks = sorted(glob.glob(os.path.join(input_dir, "**", "*_mask*.png"), recursive=True))
    jobs, errors, with_mask = [], [], set()
    for mask in masks:
        stem = mask.rsplit("_mask", 1)[0]
        image = next((stem + ext for ext in IMAGE_EXTENSIONS if os.path.isfile(stem + ext)), None)
        rel = os.path.relpath(mask, input_dir)
        jobs.append(Job(image, mask, os.path.join(output_dir, rel)))
        if image:
            with_mask.add(os.path.realpath(image))
    for path in sorted(glob.glob(os.path.join(input_dir, "**", "*"), recursive=True)):
        if (path.lower().endswith(IMAGE_EXTENSIONS) and "_mask" not in os.path.basename(path)
                and os.path.realpath(path) not in with_mask):
            errors.append(f"{path}: no mask found (expected {os.path.splitext(path)[0]}_mask000.png)")
    return jobs, errors


def run_job(inpainter: Inpainter, job: Job, overwrite: bool) -> None:
    """Reads, inpaints and writes one job; raises `ImageError`/`ValueError` naming the file."""
    if job.image is None:
        raise ImageError(f"{job.mask}: no photo found for this mask "
                         f"(expected {job.mask.rsplit('_mask', 1)[0]}.png or .jpg)")
    if os.path.exists(job.output) and not overwrite:
        raise ImageError(f"{job.output}: already exists; pass --overwrite to replace it")
    rgb, alpha = read_image(job.image)
    hole = read_mask(job.mask)
    if hole.shape != rgb.shape[:2]:
        raise ImageError(f"{job.mask}: mask is {hole.shape[1]}x{hole.shape[0]} but photo "
                         f"{job.image} is {rgb.shape[1]}x{rgb.shape[0]}")
    write_png(job.output, inpainter(rgb, hole), alpha)


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (from lama_jax.convert)")
    parser.add_argument("--input", required=True, help="a photo (with --mask) or a folder")
    parser.add_argument("--mask", help="mask file for a single photo")
    parser.add_argument("--output", required=True, help="folder for the results")
    parser.add_argument("--spectral-impl", choices=("fft", "dft"), default="fft",
                        help="FFT implementation: fft (jnp.fft) or dft (matrix products, for TPU)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)
    enable_cpu_onednn()

    def fail(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1

    errors: List[str] = []
    if os.path.isdir(args.input):
        if args.mask:
            return fail(f"{args.mask}: --mask is only for a single photo, not a folder input")
        if is_inside(args.output, args.input):
            return fail(f"{args.output}: the output folder is inside the input folder "
                        f"{args.input}; choose another")
        jobs, errors = folder_jobs(args.input, args.output)
        if not jobs and not errors:
            return fail(f"{args.input}: no masks (*_mask*.png) found")
    elif os.path.isfile(args.input):
        if not args.mask:
            return fail(f"{args.input}: a single photo needs --mask FILE")
        stem = os.path.splitext(os.path.basename(args.input))[0]
        jobs = [Job(args.input, args.mask, os.path.join(args.output, stem + ".png"))]
    else:
        return fail(f"{args.input}: no such file or folder")
    for job in jobs:
        if job.image and os.path.realpath(job.output) in (os.path.realpath(job.image),
                                                           os.path.realpath(job.mask)):
            return fail(f"{job.output}: writing the result would overwrite an input")

    try:
        inpainter = Inpainter.load(args.model, spectral_impl=args.spectral_impl)
    except ModelDirError as e:
        return fail(str(e))
    for message in errors:
        tqdm.write(f"{PROG}: error: {message}", file=sys.stderr)
    failed = len(errors)
    for job in tqdm(jobs, desc="inpainting", unit="image", file=sys.stderr):
        try:
            run_job(inpainter, job, args.overwrite)
        except (ImageError, ValueError) as e:
            failed += 1
            tqdm.write(f"{PROG}: error: {e}", file=sys.stderr)
    done = len(jobs) - (failed - len(errors))
    print(f"wrote {done} image(s) to {args.output}" + (f"; {failed} failed" if failed else ""),
          file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
