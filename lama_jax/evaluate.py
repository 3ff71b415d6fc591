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
import collections
import concurrent.futures
import dataclasses
import io
import json
import math
import os
import sys
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh
from tqdm import tqdm

from lama_jax.models.official import ConversionError
from lama_jax.weights import convert_fid_inception, convert_file, convert_lpips
from lama_jax.files import write_atomic
from lama_jax.images import (MAX_PIXELS, ImageError, check_size, image_size, is_inside, png_bytes,
                             read_image, read_mask, set_max_pixels, to_uint8)
from lama_jax.inpaint import Inpainter
from lama_jax.metrics.fid import FEATURE_DIM, frechet_distance, pool3_features
from lama_jax.metrics.fidelity import ssim
from lama_jax.metrics.lpips import default_heads, lpips
from lama_jax.model_dir import ModelDirError
from lama_jax.models.variables import Variables
from lama_jax.parallel import batch_sharding, make_mesh, replicated
from lama_jax.predict import Job, folder_jobs
from lama_jax.state_dict import CheckpointError
from lama_jax.xla_flags import enable_cpu_onednn

PROG = "lama_jax.evaluate"
AREA_BINS = 10  # the official evaluator's `bins`
FID_SCALE = 100  # of the official integral score `lpips_fid100_f1`
REPORT_FILES = ("metrics.json", "metrics.md", "metrics.png")
_MAX_LISTED_ERRORS = 10


class EvaluationError(ValueError):
    """Inputs that cannot be evaluated; the message names the file and the problem."""


class MetricNets(NamedTuple):
    """Weights of the networks behind FID and LPIPS (a pytree)."""

    inception: Variables
    lpips: Variables

    @classmethod
    def load(cls, inception_path: str, lpips_path: str) -> "MetricNets":
        """From pytorch-fid's Inception file and torchvision's `vgg16` file (PyTorch files,
        read without executing pickled code, or .npz/.safetensors state dicts)."""
        return cls(convert_file(inception_path, convert_fid_inception,
                                "pytorch-fid's Inception weights"),
                   convert_file(lpips_path, lambda sd: convert_lpips(sd, default_heads()),
                                "torchvision's VGG16 weights"))


@jax.jit
def score_batch(nets: MetricNets, predicted: jax.Array, target: jax.Array) -> Dict[str, jax.Array]:
    """Per-image metrics of results [B, H, W, 3] against originals [B, H, W, 3] in [0, 1]:
    `ssim` and `lpips` [B], and the FID features of both, `features_predicted` and
    `features_target` [B, 2048]."""
    batch = predicted.shape[0]
    features = pool3_features(nets.inception, jnp.concatenate([predicted, target]))  # [2B, 2048]
    return {"ssim": ssim(predicted, target), "lpips": lpips(nets.lpips, predicted, target),
            "features_predicted": features[:batch], "features_target": features[batch:]}


# ------------------------------------------------------------------------------------------
# Mask-area bins and the summary.

def area_bins(areas: np.ndarray, bins: int = AREA_BINS) -> np.ndarray:
    """Bin index of each hole fraction, as the official evaluator assigns them: bin k holds
    [k / bins, (k + 1) / bins), and a fully masked image falls in the last bin."""
    edges = np.linspace(0, 1, bins + 1)
    return np.minimum(np.searchsorted(edges, areas, side="right") - 1, bins - 1)


def bin_names(bins: int = AREA_BINS) -> List[str]:
    """Official bin labels: "0-10%", "10-20%", ... (decimals only when bins need them)."""
    edges = np.linspace(0, 100, bins + 1)
    digits = max(0, math.ceil(math.log10(bins)) - 1)
    return [f"{edges[k]:.{digits}f}-{edges[k + 1]:.{digits}f}%" for k in range(bins)]


def _group(values: Dict[str, np.ndarray], index: np.ndarray) -> Dict[str, Optional[float]]:
    """FID (None below two images, where it is undefined), mean and std of LPIPS and SSIM."""
    fid = (frechet_distance(values["features_predicted"][index],
                            values["features_target"][index]) if len(index) > 1 else None)
    out: Dict[str, Optional[float]] = {"images": int(len(index)), "fid": fid}
    for name in ("lpips", "ssim"):
        scores = np.asarray(values[name][index], np.float64)
        out[name], out[f"{name}_std"] = float(scores.mean()), float(scores.std())
    return out


def lpips_fid100_f1(lpips_mean: float, fid: float) -> float:
    """The official integral score: F1 of (1 - LPIPS) and max(0, 100 - FID) / 100."""
    neg_lpips = 1 - lpips_mean
    fid_rel = max(0.0, FID_SCALE - fid) / FID_SCALE
    return 2 * neg_lpips * fid_rel / (neg_lpips + fid_rel + 1e-3)


def summarize(per_image: Dict[str, np.ndarray], bins: int = AREA_BINS) -> Dict:
    """Totals and per-bin metrics from per-image results (`area`, `ssim`, `lpips`,
    `features_predicted`, `features_target`). Empty bins are left out, as officially."""
    n = len(per_image["area"])
    summary = _group(per_image, np.arange(n))
    summary["lpips_fid100_f1"] = (lpips_fid100_f1(summary["lpips"], summary["fid"])
                                  if summary["fid"] is not None else None)
    groups, names = area_bins(per_image["area"], bins), bin_names(bins)
    summary["bins"] = [{"area": names[k], "low": k / bins, "high": (k + 1) / bins,
                        **_group(per_image, np.flatnonzero(groups == k))}
                       for k in range(bins) if np.any(groups == k)]
    return summary


# ------------------------------------------------------------------------------------------
# Reading and scoring a set.

@dataclasses.dataclass
class _Sample:
    index: int
    image: np.ndarray  # [H, W, 3] float32 in [0, 1]
    hole: np.ndarray  # [H, W] bool
    predicted: Optional[np.ndarray]  # [H, W, 3] float32, or None when a model inpaints


def _read(index: int, job: Job, with_prediction: bool) -> _Sample:
    image, hole = read_image(job.image)[0], read_mask(job.mask)
    predicted = read_image(job.output)[0] if with_prediction else None
    # checked_jobs compared the headers; the files may have changed since.
    check_size(job.mask, hole.shape, job.image, image.shape[:2])
    if with_prediction:
        check_size(job.output, predicted.shape[:2], job.image, image.shape[:2])
    return _Sample(index, image, hole, predicted)


def _read_ahead(pool: concurrent.futures.Executor, tasks: Iterable[Callable[[], _Sample]],
                depth: int) -> Iterator[_Sample]:
    """Runs `tasks` on `pool`, `depth` at a time, yielding their results in order."""
    pending: collections.deque = collections.deque()
    for task in tasks:
        pending.append(pool.submit(task))
        if len(pending) > depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _same_shape_batches(samples: Iterable[_Sample], size: int) -> Iterator[List[_Sample]]:
    """Consecutive samples grouped into batches of at most `size` images of one shape."""
    batch: List[_Sample] = []
    for sample in samples:
        if batch and (len(batch) == size or sample.image.shape != batch[0].image.shape):
            yield batch
            batch = []
        batch.append(sample)
    if batch:
        yield batch


def evaluate(jobs: Sequence[Job], nets: MetricNets, inpainter: Optional[Inpainter] = None,
             batch_size: int = 8, mesh: Optional[Mesh] = None,
             progress: bool = True) -> Dict[str, np.ndarray]:
    """Per-image results for every job, in order: `area` (hole fraction), `ssim`, `lpips`
    [N] and FID features `features_predicted`, `features_target` [N, 2048] (preallocated:
    30,000 images take 0.5 GB).

    With an `inpainter`, each photo is inpainted, its result written to `job.output` as an
    8-bit PNG and scored as written; without, `job.output` is the result to score. Batches
    are split over the devices of `mesh` (default: all local devices); `batch_size` is
    rounded up to a multiple of their number.
    """
    mesh = mesh if mesh is not None else make_mesh(devices=jax.local_devices())
    batch_size = -(-batch_size // mesh.size) * mesh.size
    nets = jax.device_put(nets, replicated(mesh))
    n = len(jobs)
    out = {"area": np.zeros(n, np.float32), "ssim": np.zeros(n, np.float32),
           "lpips": np.zeros(n, np.float32),
           "features_predicted": np.zeros((n, FEATURE_DIM), np.float32),
           "features_target": np.zeros((n, FEATURE_DIM), np.float32)}
    tasks = [lambda i=i, job=job: _read(i, job, inpainter is None) for i, job in enumerate(jobs)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool, \
            tqdm(total=n, desc="evaluating", unit="image", disable=not progress,
                 file=sys.stderr) as bar, jax.default_matmul_precision("highest"):
        writes = []
        for batch in _same_shape_batches(_read_ahead(pool, tasks, 2 * batch_size), batch_size):
            filled = batch + [batch[-1]] * (batch_size - len(batch))  # static batch shape
            images = np.stack([s.image for s in filled])  # [B, H, W, 3]
            if inpainter is not None:
                results = to_uint8(inpainter.inpaint_batch(images, np.stack([s.hole for s in filled])))
                for s, result in zip(batch, results):
                    writes.append(pool.submit(
                        lambda path=jobs[s.index].output, pixels=result:
                        write_atomic(path, png_bytes(pixels))))
                predicted = results.astype(np.float32) / 255.0
            else:
                predicted = np.stack([s.predicted for s in filled])
            sharded = jax.device_put((predicted, images), batch_sharding(mesh))
            scores = jax.device_get(score_batch(nets, *sharded))
            for row, s in enumerate(batch):
                out["area"][s.index] = s.hole.mean()
                for key, value in scores.items():
                    out[key][s.index] = value[row]
            bar.update(len(batch))
        for write in writes:
            write.result()
    return out


# ------------------------------------------------------------------------------------------
# Reports.

def _fmt(value: Optional[float], digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def markdown_report(summary: Dict, method: str, data: str) -> str:
    """Tables in the paper's format (FID to 2 decimals, LPIPS to 3), in total and by area."""
    lines = [f"# {method} on {data} ({summary['images']} images)", "",
             "| Method | FID ↓ | LPIPS ↓ | SSIM ↑ |", "|---|---|---|---|",
             f"| {method} | {_fmt(summary['fid'], 2)} | {_fmt(summary['lpips'], 3)} | "
             f"{_fmt(summary['ssim'], 3)} |", "", "By hole area (FID needs two or more images):",
             "", "| Hole area | Images | FID ↓ | LPIPS ↓ | SSIM ↑ |", "|---|---|---|---|---|"]
    lines += [f"| {b['area']} | {b['images']} | {_fmt(b['fid'], 2)} | {_fmt(b['lpips'], 3)} | "
              f"{_fmt(b['ssim'], 3)} |" for b in summary["bins"]]
    return "\n".join(lines) + "\n"


def plot_report(summary: Dict, method: str) -> bytes:
    """PNG of FID, LPIPS and SSIM against hole area (one point per non-empty bin)."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    centers = [100 * (b["low"] + b["high"]) / 2 for b in summary["bins"]]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), constrained_layout=True)
    for ax, (key, label) in zip(axes, (("fid", "FID ↓"), ("lpips", "LPIPS ↓"), ("ssim", "SSIM ↑"))):
        points = [(x, b[key]) for x, b in zip(centers, summary["bins"]) if b[key] is not None]
        ax.plot([p[0] for p in points], [p[1] for p in points], "o-")
        ax.set(xlabel="hole area (% of the image)", ylabel=label, xlim=(0, 100))
        ax.grid(alpha=0.3)
    fig.suptitle(f"{method}: {summary['images']} images")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def write_report(output: str, summary: Dict, method: str, data: str) -> None:
    """Writes metrics.json, metrics.md and metrics.png into `output`, each atomically."""
    record = {"method": method, "data": os.path.abspath(data), **summary}
    write_atomic(os.path.join(output, "metrics.json"),
                 (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(os.path.join(output, "metrics.md"), markdown_report(summary, method, data).encode())
    write_atomic(os.path.join(output, "metrics.png"), plot_report(summary, method))


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
    parser.add_argument("--spectral-impl", choices=("fft", "dft"), default="fft",
                        help="FFT implementation of the model (--model only)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an earlier report and predictions in OUTPUT")
    parser.add_argument("--max-pixels", type=int, default=MAX_PIXELS,
                        help="refuse images of more pixels than this (0: no limit; default "
                             "%(default)s, Pillow's)")
    args = parser.parse_args(argv)
    enable_cpu_onednn()
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
        per_image = evaluate(jobs, nets, inpainter, args.batch_size, mesh)
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
