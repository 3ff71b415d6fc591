"""Scoring inpainting as the official `bin/evaluate_predicts.py` does: the library behind
`python -m lama_jax.evaluate`.

    nets = MetricNets.load(inception_path, lpips_path)
    per_image = score_jobs(jobs, nets, inpainter, batch_size, mesh)   # see lama_jax.jobs
    summary = summarize(per_image)        # FID, LPIPS, SSIM in total and by hole area
    write_report(output, summary, method, data)

Per image: SSIM (11x11 Gaussian window, zero padding), LPIPS (v0.1, VGG16) and the
2048-d pool3 features of pytorch-fid's Inception for the result and the original (and PSNR
and the mean absolute error in the hole, which the official evaluator does not report),
computed in one jitted step on batches split over the devices of a mesh while the next photos
are read ahead on threads. FID is then one Fréchet distance over the whole set and one per
tenth of hole area (the official grouping).
"""

from __future__ import annotations

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

from lama_jax.files import write_atomic
from lama_jax.images import check_size, png_bytes, read_image, read_mask, to_uint8
from lama_jax.inpaint import Inpainter
from lama_jax.jobs import Job
from lama_jax.metrics.fid import FEATURE_DIM, frechet_distance, pool3_features
from lama_jax.metrics.fidelity import masked_l1, psnr, ssim
from lama_jax.metrics.lpips import LPIPS, default_heads, lpips
from lama_jax.models.backbones import FIDInceptionV3
from lama_jax.models.variables import Variables, abstract_variables
from lama_jax.parallel import batch_sharding, make_mesh, replicated
from lama_jax.weights import convert_fid_inception, convert_file, convert_lpips

AREA_BINS = 10  # the official evaluator's `bins`
FID_SCALE = 100  # of the official integral score `lpips_fid100_f1`
REPORT_FILES = ("metrics.json", "metrics.md", "metrics.png")  # written by `write_report`

class MetricNets(NamedTuple):
    """Weights of the networks behind FID and LPIPS (a pytree). `MetricNets(None, None)`
    scores without them: SSIM, PSNR and hole L1 only, FID and LPIPS reported as None."""

    inception: Optional[Variables]
    lpips: Optional[Variables]

    @classmethod
    def load(cls, inception_path: str, lpips_path: str) -> "MetricNets":
        """From pytorch-fid's Inception file and torchvision's `vgg16` file (PyTorch files,
        read without executing pickled code, or .npz/.safetensors state dicts)."""
        return cls(convert_file(inception_path, convert_fid_inception,
                                "pytorch-fid's Inception weights"),
                   convert_file(lpips_path, lambda sd: convert_lpips(sd, default_heads()),
                                "torchvision's VGG16 weights"))

    @classmethod
    def random(cls, seed: int = 0) -> "MetricNets":
        """Randomly filled networks, for benchmarks and offline runs of the pipeline only: the
        FID and LPIPS they give mean nothing (SSIM does not use them)."""
        probe = (1, 64, 64, 3)
        shapes = cls(abstract_variables(FIDInceptionV3(), (1, 299, 299, 3)),
                     abstract_variables(LPIPS(), probe, probe))
        rng = np.random.default_rng(seed)  # drawn here: initialising would compile Inception

        def fill(path, leaf) -> np.ndarray:
            name = path[-1].key
            if name == "kernel":  # He-scaled normal; LPIPS's heads (lin*) non-negative
                fan_in = int(np.prod(leaf.shape[:-1]))
                weights = rng.standard_normal(leaf.shape) * np.sqrt(2.0 / fan_in)
                head = str(path[-2].key).startswith("lin")
                return (np.abs(weights) if head else weights).astype(np.float32)
            return np.full(leaf.shape, 1.0 if name in ("scale", "var") else 0.0, np.float32)

        return jax.tree_util.tree_map_with_path(fill, shapes)


@jax.jit
def score_batch(nets: MetricNets, predicted: jax.Array, target: jax.Array,
                hole: jax.Array) -> Dict[str, jax.Array]:
    """Per-image metrics of results [B, H, W, 3] against originals [B, H, W, 3] in [0, 1]
    with holes [B, H, W] (1 = hole): `ssim`, `psnr` and `hole_l1` [B]; `lpips` [B] and the
    FID features of both, `features_predicted` and `features_target` [B, 2048], where `nets`
    has their networks."""
    scores = {"ssim": ssim(predicted, target), "psnr": psnr(predicted, target),
              "hole_l1": masked_l1(predicted, target, hole[..., None])}
    if nets.lpips is not None:
        scores["lpips"] = lpips(nets.lpips, predicted, target)
    if nets.inception is not None:
        batch = predicted.shape[0]
        features = pool3_features(nets.inception, jnp.concatenate([predicted, target]))  # [2B, 2048]
        scores.update(features_predicted=features[:batch], features_target=features[batch:])
    return scores


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


PER_IMAGE = ("lpips", "ssim", "psnr", "hole_l1")  # the metrics summarised by mean and std


def _group(values: Dict[str, np.ndarray], index: np.ndarray) -> Dict[str, Optional[float]]:
    """FID (None below two images, where it is undefined, or without features), mean and
    std of each per-image metric (None where it was not scored)."""
    fid = (frechet_distance(values["features_predicted"][index], values["features_target"][index])
           if len(index) > 1 and "features_predicted" in values else None)
    out: Dict[str, Optional[float]] = {"images": int(len(index)), "fid": fid}
    for name in PER_IMAGE:
        scores = np.asarray(values[name][index], np.float64) if name in values else None
        out[name] = None if scores is None else float(scores.mean())
        out[f"{name}_std"] = None if scores is None else float(scores.std())
    return out


def lpips_fid100_f1(lpips_mean: float, fid: float) -> float:
    """The official integral score: F1 of (1 - LPIPS) and max(0, 100 - FID) / 100."""
    neg_lpips = 1 - lpips_mean
    fid_rel = max(0.0, FID_SCALE - fid) / FID_SCALE
    return 2 * neg_lpips * fid_rel / (neg_lpips + fid_rel + 1e-3)


def summarize(per_image: Dict[str, np.ndarray], bins: int = AREA_BINS) -> Dict:
    """Totals and per-bin metrics from per-image results (`area`, `ssim`, and where scored
    `psnr`, `hole_l1`, `lpips`, `features_predicted`, `features_target`). Empty bins are
    left out, as officially;
    `bins=0` gives the totals alone (each FID costs a 2048 x 2048 matrix square root)."""
    n = len(per_image["area"])
    summary = _group(per_image, np.arange(n))
    summary["lpips_fid100_f1"] = (lpips_fid100_f1(summary["lpips"], summary["fid"])
                                  if None not in (summary["fid"], summary["lpips"]) else None)
    if bins == 0:
        summary["bins"] = []
        return summary
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


def score_jobs(jobs: Sequence[Job], nets: MetricNets, inpainter: Optional[Inpainter] = None,
               batch_size: int = 8, mesh: Optional[Mesh] = None,
               progress: bool = True) -> Dict[str, np.ndarray]:
    """Per-image results for every job, in order: `area` (hole fraction), `ssim`, `psnr`,
    `hole_l1` [N] and, where `nets` has their networks, `lpips` [N] and FID features
    `features_predicted`, `features_target` [N, 2048] (preallocated: 30,000 images take
    0.5 GB).

    With an `inpainter`, each photo is inpainted, its result written to `job.output` as an
    8-bit PNG and scored as written; without, `job.output` is the result to score. Batches
    are split over the devices of `mesh` (default: all local devices); `batch_size` is
    rounded up to a multiple of their number.
    """
    mesh = mesh if mesh is not None else make_mesh(devices=jax.local_devices())
    batch_size = -(-batch_size // mesh.size) * mesh.size
    nets = jax.device_put(nets, replicated(mesh))
    n = len(jobs)
    out = {name: np.zeros(n, np.float32) for name in ("area", "ssim", "psnr", "hole_l1")}
    if nets.lpips is not None:
        out["lpips"] = np.zeros(n, np.float32)
    if nets.inception is not None:
        out.update(features_predicted=np.zeros((n, FEATURE_DIM), np.float32),
                   features_target=np.zeros((n, FEATURE_DIM), np.float32))
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
            holes = np.stack([s.hole for s in filled]).astype(np.float32)  # [B, H, W]
            sharded = jax.device_put((predicted, images, holes), batch_sharding(mesh))
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
             "| Method | FID ↓ | LPIPS ↓ | SSIM ↑ | PSNR dB ↑ | hole L1 ↓ |",
             "|---|---|---|---|---|---|",
             f"| {method} | {_fmt(summary['fid'], 2)} | {_fmt(summary['lpips'], 3)} | "
             f"{_fmt(summary['ssim'], 3)} | {_fmt(summary['psnr'], 2)} | "
             f"{_fmt(summary['hole_l1'], 4)} |", "",
             "By hole area (FID needs two or more images):",
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
