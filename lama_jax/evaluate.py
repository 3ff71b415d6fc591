"""Score inpainting like the paper: FID, LPIPS and SSIM over an evaluation set, by mask area.

    # inpaint an evaluation set with a converted model, then score the results
    python -m lama_jax.evaluate --data eval/random_thick_512 --model big-lama-jax \\
        --output results/big-lama-thick-512 \\
        --inception-weights pt_inception-2015-12-05-6726825d.pth --lpips-weights vgg16-397923af.pth

    # score existing results (the official predict's, or another model's)
    python -m lama_jax.evaluate --data eval/random_thick_512 --predictions their-results/ ...

DATA is an evaluation set in the official layout (`name.png` beside `name_mask000.png`, as
`python -m lama_jax.masks` writes it). A prediction is named after its mask file, relative to
DATA, as the official `bin/predict.py` names them (`their-results/sub/name_mask000.png`); with
--model the results are written that way under OUTPUT/predictions as 8-bit PNGs and scored as
written, as the official pipeline scores them.

The metrics are those of the official `bin/evaluate_predicts.py`: FID between the set of
results and the set of originals (pytorch-fid's Inception), mean LPIPS (v0.1, VGG16) and mean
SSIM (11x11 Gaussian window, zero padding) of each result against its original, in total and
for each tenth of hole area (0-10%, ..., 90-100%: the official grouping). OUTPUT receives
`metrics.json`, `metrics.md` (tables in the paper's format) and `metrics.png` (each metric
against mask area). Everything that can be checked (files, sizes, weights, outputs) is checked
before the first image is scored; nothing existing is replaced without --overwrite.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional, Sequence, get_args

import jax

from lama_jax.errors import LamaJaxError
from lama_jax.images import MAX_PIXELS, ImageError, check_size, image_size, is_inside, set_max_pixels
from lama_jax.inpaint import SPECTRAL_IMPL_HELP, Inpainter
from lama_jax.jobs import Job, folder_jobs
from lama_jax.model_dir import ModelDirError
from lama_jax.models.ffc import SpectralImpl
from lama_jax.models.official import ConversionError
from lama_jax.parallel import make_mesh
from lama_jax.scoring import (REPORT_FILES, MetricNets, markdown_report, score_jobs, summarize,
                              write_report)
from lama_jax.state_dict import CheckpointError
from lama_jax.xla_flags import enable_compilation_cache, enable_cpu_onednn, keep_freed_memory

PROG = "lama_jax.evaluate"
_MAX_LISTED_ERRORS = 10


class EvaluationError(LamaJaxError, ValueError):
    """Inputs that cannot be evaluated; the message names the file and the problem."""


# ------------------------------------------------------------------------------------------
# Command line.

def checked_jobs(data: str, predictions: str, existing_predictions: bool) -> List[Job]:
    """The set's jobs (`job.output` = the prediction path under `predictions`) after checking,
    from file headers only, that every photo has its mask and every mask (and, if
    `existing_predictions`, every prediction) exists and has the photo's size. Raises
    `EvaluationError` listing the problems, one per line."""
    if not os.path.isdir(data):
        raise EvaluationError(f"{data}: no such folder")
    jobs, problems = folder_jobs(data, predictions)
    if not jobs and not problems:
        raise EvaluationError(f"{data}: no masks (*_mask*.png) found")
    for job in jobs:
        if job.image is None:
            problems.append(f"{job.mask}: no photo for this mask (expected "
                            f"{job.mask.rsplit('_mask', 1)[0]}.png)")
            continue
        if existing_predictions and not os.path.isfile(job.output):
            problems.append(f"{job.output}: no prediction for {job.mask}")
            continue
        try:
            size = image_size(job.image)
            for path in [job.mask] + ([job.output] if existing_predictions else []):
                check_size(path, image_size(path), job.image, size)
        except ImageError as e:
            problems.append(str(e))
    if problems:
        more = len(problems) - _MAX_LISTED_ERRORS
        raise EvaluationError("\n".join(problems[:_MAX_LISTED_ERRORS])
                              + (f"\n... and {more} more problems" if more > 0 else ""))
    return jobs


def _check_outputs(output: str, data: str, jobs: Sequence[Job], writes_predictions: bool,
                   overwrite: bool) -> None:
    if is_inside(output, data):
        raise EvaluationError(f"{output}: the output folder is inside the data folder {data}; "
                              f"choose another")
    existing = [os.path.join(output, name) for name in REPORT_FILES
                if os.path.exists(os.path.join(output, name))]
    if writes_predictions:
        existing += [job.output for job in jobs if os.path.exists(job.output)]
    if existing and not overwrite:
        raise EvaluationError(f"{existing[0]}: already exists"
                              + (f" (and {len(existing) - 1} more files)" if len(existing) > 1 else "")
                              + "; pass --overwrite to replace")


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="evaluation set: name.png + name_mask000.png")
    parser.add_argument("--output", required=True, help="folder for the metrics (and predictions)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", help="model directory (lama_jax.convert) to inpaint DATA with")
    source.add_argument("--predictions", help="folder of results named after their mask files")
    parser.add_argument("--inception-weights", required=True,
                        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (or .npz)")
    parser.add_argument("--lpips-weights", required=True,
                        help="torchvision's vgg16-397923af.pth (or .npz)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step (all devices)")
    parser.add_argument("--spectral-impl", choices=get_args(SpectralImpl),
                        help=SPECTRAL_IMPL_HELP)
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier report and predictions in OUTPUT")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse images of more pixels than this (0: no limit; default "
                             "%(default)s, Pillow's)")
    args = parser.parse_args(argv)
    enable_cpu_onednn()
    keep_freed_memory()
    enable_compilation_cache()
    set_max_pixels(args.max_pixels or None)
    predictions = args.predictions or os.path.join(args.output, "predictions")
    try:
        if args.predictions and is_inside(args.predictions, args.data):
            raise EvaluationError(f"{args.predictions}: the predictions folder is inside the "
                                  f"data folder {args.data}; move it out")
        jobs = checked_jobs(args.data, predictions, existing_predictions=bool(args.predictions))
        _check_outputs(args.output, args.data, jobs, bool(args.model), args.overwrite)
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise EvaluationError("the metrics plot needs matplotlib: pip install 'lama_jax[eval]'")
        nets = MetricNets.load(args.inception_weights, args.lpips_weights)
        mesh = make_mesh(devices=jax.local_devices())
        inpainter = (Inpainter.load(args.model, spectral_impl=args.spectral_impl, mesh=mesh)
                     if args.model else None)
        per_image = score_jobs(jobs, nets, inpainter, args.batch_size, mesh)
    except (EvaluationError, CheckpointError, ConversionError, ModelDirError, ImageError) as e:
        for line in str(e).splitlines():
            print(f"{PROG}: error: {line}", file=sys.stderr)
        return 1
    method = os.path.basename(os.path.normpath(args.model or args.predictions))
    summary = summarize(per_image)
    write_report(args.output, summary, method, args.data)
    print(markdown_report(summary, method, args.data))
    print(f"wrote {', '.join(REPORT_FILES)} to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
