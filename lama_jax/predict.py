"""Inpaint your own photos from the command line.

    # one photo and its mask (non-zero pixels are the hole)
    python -m lama_jax.predict --model big-lama-jax --input photo.jpg --mask photo_mask.png --output out/

    # a folder in the official layout: name.png beside name_mask000.png, name_mask001.png, ...
    python -m lama_jax.predict --model big-lama-jax --input folder/ --output out/

    # large photos: the official multi-scale refinement, and/or a high-resolution strategy
    python -m lama_jax.predict --model big-lama-jax --input big.jpg --mask big_mask.png \
        --output out/ --refine --hd-strategy crop

Each result is written as a PNG named after its mask file (folder mode, as the official
predict names them) or after the photo (single mode). An RGBA photo keeps its alpha channel.
Inputs are never overwritten (a run whose results would land on any of its photos or masks
is refused); existing results are kept unless --overwrite. A bad file, or a result that
cannot be written, is reported on one line and the rest are still processed; the exit code
is 1 if anything failed. Folder links are not followed.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Dict, List, Optional, get_args

from tqdm import tqdm

from lama_jax.hd_strategy import STRATEGIES, HDStrategy
from lama_jax.images import (MAX_PIXELS, ImageError, is_inside, read_image, read_mask,
                             set_max_pixels, write_png)
from lama_jax.inpaint import SPECTRAL_IMPL_HELP, Inpainter
from lama_jax.jobs import Job, folder_jobs, overwritten_input
from lama_jax.model_dir import ModelDirError
from lama_jax.models.ffc import SpectralImpl
from lama_jax.refine import RefineOptions
from lama_jax.xla_flags import enable_compilation_cache, enable_cpu_onednn, keep_freed_memory

PROG = "lama_jax.predict"


def run_job(inpainter: Inpainter, job: Job, overwrite: bool,
            options: Optional[Dict[str, Any]] = None) -> bool:
    """Reads, inpaints (with `Inpainter`'s keyword `options`) and writes one job; False when
    an existing result was kept. Raises `ImageError` naming the file for anything wrong with
    the inputs or the output path."""
    if job.image is None:
        raise ImageError(f"{job.mask}: no photo found for this mask "
                         f"(expected {job.mask.rsplit('_mask', 1)[0]}.png or .jpg)")
    if os.path.lexists(job.output) and not overwrite:
        return False
    rgb, alpha = read_image(job.image)
    hole = read_mask(job.mask)
    if hole.shape != rgb.shape[:2]:
        raise ImageError(f"{job.mask}: mask is {hole.shape[1]}x{hole.shape[0]} but photo "
                         f"{job.image} is {rgb.shape[1]}x{rgb.shape[0]}")
    try:
        result = inpainter(rgb, hole, **(options or {}))
    except ValueError as e:
        raise ImageError(f"{job.image}: {e}") from None
    try:
        write_png(job.output, result, alpha)
    except OSError as e:
        raise ImageError(f"{job.output}: cannot write the result ({e.strerror or e})") from None
    return True


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (from lama_jax.convert)")
    parser.add_argument("--input", required=True, help="a photo (with --mask) or a folder")
    parser.add_argument("--mask", help="mask file for a single photo")
    parser.add_argument("--output", required=True, help="folder for the results")
    parser.add_argument("--spectral-impl", choices=get_args(SpectralImpl),
                        help=SPECTRAL_IMPL_HELP)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    refine = parser.add_argument_group("refinement (official refine_predict; defaults official)")
    refine.add_argument("--refine", action="store_true",
                        help="refine the result over an image pyramid (slower; large holes)")
    refine.add_argument("--refine-n-iters", type=int, default=15, metavar="N")
    refine.add_argument("--refine-lr", type=float, default=0.002, metavar="LR")
    refine.add_argument("--refine-min-side", type=int, default=512, metavar="PX")
    refine.add_argument("--refine-max-scales", type=int, default=3, metavar="N")
    refine.add_argument("--refine-px-budget", type=int, default=1_800_000, metavar="PX")
    hd = parser.add_argument_group("high-resolution strategy (as IOPaint's; defaults its own)")
    hd.add_argument("--hd-strategy", choices=STRATEGIES, default="original",
                    help="original: one pass; crop: each hole region with a margin; resize: "
                         "a shrunk copy fills the hole")
    hd.add_argument("--hd-trigger", type=int, default=800, metavar="PX",
                    help="crop only photos whose longer side exceeds this")
    hd.add_argument("--hd-crop-margin", type=int, default=128, metavar="PX")
    hd.add_argument("--hd-resize-limit", type=int, default=1280, metavar="PX",
                    help="resize: longer side of the inpainted copy")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse photos and masks of more pixels than this (0: no limit; "
                             "default %(default)s, Pillow's)")
    args = parser.parse_args(argv)
    options = dict(refine=args.refine, n_iters=args.refine_n_iters, lr=args.refine_lr,
                   min_side=args.refine_min_side, max_scales=args.refine_max_scales,
                   px_budget=args.refine_px_budget, hd_strategy=args.hd_strategy,
                   hd_trigger=args.hd_trigger, crop_margin=args.hd_crop_margin,
                   resize_limit=args.hd_resize_limit)
    enable_cpu_onednn()
    keep_freed_memory()
    enable_compilation_cache()
    set_max_pixels(args.max_pixels or None)

    def fail(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1

    try:  # the options' own checks, before any photo is read
        HDStrategy(args.hd_strategy, args.hd_trigger, args.hd_crop_margin, args.hd_resize_limit)
        RefineOptions(args.refine_n_iters, args.refine_lr, args.refine_min_side,
                      args.refine_max_scales, args.refine_px_budget)
    except ValueError as e:
        return fail(str(e))
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
    clash = overwritten_input(jobs)
    if clash:
        return fail(f"{clash.output}: writing a result there would overwrite an input of this "
                    f"run; choose another --output")

    try:
        inpainter = Inpainter.load(args.model, spectral_impl=args.spectral_impl)
    except ModelDirError as e:
        return fail(str(e))
    if args.refine and not inpainter.can_refine:
        return fail(f"{args.model}: --refine needs a generator with residual blocks (LaMa's "
                    f"Fourier, regular or dilated kinds), not {inpainter.config.kind!r}")
    for message in errors:
        tqdm.write(f"{PROG}: error: {message}", file=sys.stderr)
    failed, written, kept = len(errors), 0, 0
    for job in tqdm(jobs, desc="inpainting", unit="image", file=sys.stderr):
        try:
            if run_job(inpainter, job, args.overwrite, options):
                written += 1
            else:
                kept += 1
        except ImageError as e:
            failed += 1
            tqdm.write(f"{PROG}: error: {e}", file=sys.stderr)
    print(f"wrote {written} image(s) to {args.output}"
          + (f"; kept {kept} existing (--overwrite replaces them)" if kept else "")
          + (f"; {failed} failed" if failed else ""), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
