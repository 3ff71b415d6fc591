"""Reproduce the paper's ablations: train every row of a table, score it, write the table.

    python experiments/ablations.py --table 2 --scale smoke --workdir /tmp/ablations
    python experiments/ablations.py --figure 6 --scale smoke --workdir /tmp/ablations
    python experiments/ablations.py --table 3 --scale paper --workdir DIR --rows t3_vgg19 \
        --hrf-weights encoder_epoch_20.pth --vgg19-weights vgg19-dcbb9e9d.pth \
        --inception-weights pt_inception-2015-12-05-6726825d.pth --lpips-weights vgg16-397923af.pth

The rows are the named configs of `configs/ablations.py`. Each row trains in
`WORKDIR/rows/ROW` (through `lama_jax.train`, so an interrupted row resumes where it stopped
and a finished one is skipped), is scored with `lama_jax.scoring` (the library behind
`python -m lama_jax.evaluate`) on a narrow (`random_thin_256` masks) and a wide
(`random_thick_256`) evaluation set made once in `WORKDIR/eval/`, and lands in
`WORKDIR/tableN.md` and `tableN.json` beside the paper's numbers, with its parameters, the
FLOPs of one inference pass, the images it saw and its training wall time. `--rows` runs a
subset (so that a cluster can run rows side by side on one WORKDIR); the table lists every
row that is done.

`--figure 6` scores Figure 6's models (trained as their Table 2 rows) at growing test
resolutions, one full-image pass each, with wide masks drawn at the training resolution and
scaled up (so every resolution has the same holes relative to the image), and writes
`figure6.json` and `figure6.png`.

Scales:
- `smoke`: tiny models (ngf 8, a sixth of the blocks), 80 px crops of the bundled photos, two
  steps, random perceptual networks, scored without FID and LPIPS (SSIM, PSNR and L1 in the
  hole): the whole pipeline in a minute or two on a laptop, numbers meaningless. The tests
  run it.
- `cpu`: the study of the paper's two claims that fits on a laptop CPU: Table 2's Fourier,
  Regular and Dilated rows as small generators of nearly equal size (ngf 24, two
  downsamplings; 6 FFC blocks against 4 regular or dilated ones: 0.68M, 0.78M and 0.78M
  parameters), trained for the same steps on 64 px procedural periodic images
  (`periodic:64`, `lama_jax.data.periodic`) with the wide training masks drawn at 256 px
  and scaled down, then scored on held-out images (SSIM, PSNR, L1 in the hole; no FID or
  LPIPS: their pretrained networks cannot be had offline). Figure 6 renders the held-out
  pictures at 64, 128 and 256 px (the same pictures in more detail, periods growing with
  the resolution) and writes grids of examples. No perceptual loss either (its ResNet
  needs ADE20K weights): the hole is trained with L1 beside the adversarial and
  feature-matching losses.
- `paper`: the official recipe of each row on its configured data (Places365 by default),
  evaluated at 256 px on 2,000 validation images; needs the weight files named above.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import pathlib
import sys
import time
from typing import Dict, List, Optional

import jax
import ml_collections
import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the repo root: `configs`
from configs import ablations as rows_lib  # noqa: E402
from lama_jax.data.masks import preset  # noqa: E402
from lama_jax.data.pipeline import eval_dataset  # noqa: E402
from lama_jax.data.sources import make_source  # noqa: E402
from lama_jax.files import write_atomic  # noqa: E402
from lama_jax.images import png_bytes, read_image, read_mask, to_uint8  # noqa: E402
from lama_jax.inpaint import Inpainter  # noqa: E402
from lama_jax.jobs import folder_jobs  # noqa: E402
from lama_jax.model_dir import load_model  # noqa: E402
from lama_jax.models.variables import param_count  # noqa: E402
from lama_jax.parallel import make_mesh  # noqa: E402
from lama_jax.scoring import AREA_BINS, MetricNets, score_jobs, summarize, write_report  # noqa: E402
from lama_jax.train import train_and_evaluate  # noqa: E402
from architecture_table import inference_gflops  # noqa: E402  experiments/architecture_table.py

EVAL_SETS = {"narrow": "random_thin_256", "wide": "random_thick_256"}


@dataclasses.dataclass(frozen=True)
class Scale:
    """How big a run is: the evaluation images, the hole-area bins of the reports (0: totals
    only), for figure 6 the test resolutions, and the rows it can train (None: all)."""

    eval_images: int
    area_bins: int
    resolutions: tuple  # multiples of the crop size
    rows: Optional[tuple] = None


# The cpu scale's generators: (ngf, blocks), parameters within 15 % of each other.
CPU_GENERATORS = {"t2_fourier": (24, 6), "t2_regular": (24, 4), "t2_dilated": (24, 4)}
CPU_STEPS = 1000
SCALES = {"smoke": Scale(eval_images=8, area_bins=0, resolutions=(80, 160)),
          "cpu": Scale(eval_images=200, area_bins=0, resolutions=(64, 128, 256),
                       rows=tuple(CPU_GENERATORS)),
          "paper": Scale(eval_images=2000, area_bins=AREA_BINS,
                         resolutions=(256, 512, 768, 1024, 1536))}


def row_config(name: str, scale: str, weights: argparse.Namespace) -> ml_collections.ConfigDict:
    """The training config of row `name` at `scale`, with the weight files of its losses."""
    config = rows_lib.get_config(name)
    if scale == "smoke":
        if config.generator.kind == "pconv_unet":  # 80 px crops: 4 layers (multiples of 16)
            config.generator.update(ngf=8, n_layers=4)
            config.losses.vgg16_weights_path = "random"
        else:
            blocks = max(1, math.ceil(config.generator.n_blocks / 6))
            config.generator.update(ngf=8, n_blocks=blocks)
            config.discriminator.update(ndf=8, n_layers=2)
            config.losses.update(hrf_weights_path="random", vgg19_weights_path="random")
        config.data.update(source="sample", eval_source="sample", eval_records=4, crop_size=80,
                           worker_count=0)
        config.update(batch_size=8, eval_batch_size=4, num_train_steps=2, log_every=1,
                      eval_every=2, checkpoint_every=2)
        return config
    if scale == "cpu":
        ngf, blocks = CPU_GENERATORS[name]
        config.generator.update(ngf=ngf, n_blocks=blocks, n_downsampling=2)
        config.discriminator.update(ndf=32, n_layers=3)
        config.losses.update(hrf_perceptual_weight=0.0, l1_weight_missing=10.0)
        config.data.update(source="periodic:64", eval_source="periodic:64", eval_records=16,
                           crop_size=64, mask_size=256, worker_count=0)
        config.update(batch_size=8, eval_batch_size=16, num_train_steps=CPU_STEPS,
                      log_every=100, eval_every=CPU_STEPS, checkpoint_every=250)
        return config
    if config.losses.kind == "pconv":
        config.losses.vgg16_weights_path = weights.vgg16_weights or ""
        return config
    imagenet = name in rows_lib.IMAGENET_RESNET_ROWS
    config.losses.hrf_weights_path = (weights.resnet50_imagenet_weights if imagenet
                                      else weights.hrf_weights) or ""
    config.losses.vgg19_weights_path = weights.vgg19_weights or ""
    return config


def _write_pair(folder: pathlib.Path, index: int, image: np.ndarray, mask: np.ndarray) -> None:
    write_atomic(str(folder / f"{index:05d}.png"), png_bytes(to_uint8(image)))
    write_atomic(str(folder / f"{index:05d}_mask000.png"), png_bytes((mask > 0).astype(np.uint8) * 255))


def _source_at(spec: str, resolution: int) -> str:
    """The evaluation source at `resolution`: procedural periodic images are rendered there
    (the same pictures in more detail), photos are resized by the pipeline."""
    return f"periodic:{resolution}" if spec.partition(":")[0] == "periodic" else spec


def make_eval_set(folder: pathlib.Path, config: ml_collections.ConfigDict, preset_name: str,
                  n_images: int, resolution: int) -> pathlib.Path:
    """`n_images` validation photos centre-cropped to `resolution` with masks of `preset_name`
    drawn as in training (at the crop size, or at `data.mask_size` and resized to it) and
    scaled up (nearest) to `resolution`, written once in the layout `lama_jax.evaluate`
    reads."""
    done = folder / "complete"
    if done.exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    spec, split, data_dir = config.data.eval_source, config.data.eval_split, config.data.data_dir
    crop, factor = config.data.crop_size, resolution // config.data.crop_size
    drawn = dict(batch_size=1, masks=preset(preset_name), seed=config.seed, num_records=n_images,
                 mask_size=config.data.mask_size)
    images = eval_dataset(make_source(_source_at(spec, resolution), split, data_dir or None),
                          size=resolution, **drawn)
    # At the crop size the photos' own masks are the ones drawn there: no second pass.
    masks = [None] * n_images if factor == 1 else eval_dataset(
        make_source(spec, split, data_dir or None), size=crop, **drawn)
    for index, (photo, drawn) in enumerate(zip(images, masks)):
        drawn = photo if drawn is None else drawn
        mask = np.kron(drawn["mask"][0, ..., 0], np.ones((factor, factor), np.float32))
        _write_pair(folder, index, photo["image"][0], mask)
    done.write_text("")
    return folder


def train_row(name: str, config: ml_collections.ConfigDict, rows_dir: pathlib.Path) -> pathlib.Path:
    """Trains row `name` in `rows_dir/name` unless its model exists; keeps the wall time."""
    workdir = rows_dir / name
    timing = workdir / "wall_time_s.json"
    if not (workdir / "model").exists():
        start = time.perf_counter()
        train_and_evaluate(config, str(workdir))
        spent = json.loads(timing.read_text()) if timing.exists() else 0.0
        write_atomic(str(timing), json.dumps(spent + time.perf_counter() - start).encode())
    return workdir


def score(model_dir: pathlib.Path, data: pathlib.Path, output: pathlib.Path, nets: MetricNets,
          batch_size: int, area_bins: int) -> Dict:
    """The summary of the model's results on the set `data` (cached in `output`)."""
    report = output / "metrics.json"
    if report.exists():
        return json.loads(report.read_text())
    jobs, _ = folder_jobs(str(data), str(output / "predictions"))
    mesh = make_mesh(devices=jax.local_devices())
    inpainter = Inpainter.load(str(model_dir), mesh=mesh)
    summary = summarize(score_jobs(jobs, nets, inpainter, batch_size, mesh, progress=False),
                        area_bins)
    write_report(str(output), summary, model_dir.parent.name, str(data))
    return summary


def _metric_nets(args: argparse.Namespace) -> MetricNets:
    if args.scale in ("smoke", "cpu"):  # pixel metrics only
        return MetricNets(inception=None, lpips=None)
    if not (args.inception_weights and args.lpips_weights):
        raise SystemExit("ablations.py: error: --scale paper needs --inception-weights and "
                         "--lpips-weights (pytorch-fid's Inception, torchvision's VGG16)")
    return MetricNets.load(args.inception_weights, args.lpips_weights)


METRICS = (("fid", 2), ("lpips", 3), ("ssim", 3), ("psnr", 2), ("hole_l1", 4))  # (key, digits)


def _fmt(summary: Dict) -> str:
    return " / ".join("-" if summary.get(key) is None else f"{summary[key]:.{digits}f}"
                      for key, digits in METRICS)


def _paper(value) -> str:
    if value is None:
        return "-"
    fid, lpips = value
    return f"{fid:.2f} / " + ("-" if lpips is None else f"{lpips:.3f}")


def _seconds(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.0f}"


def run_table(table: str, names: List[str], args: argparse.Namespace) -> Dict:
    """Trains and scores `names` (rows of `table`), then writes the table from every row done."""
    workdir = pathlib.Path(args.workdir)
    nets = _metric_nets(args)
    for name in names:
        config = row_config(name, args.scale, args)
        model_dir = train_row(name, config, workdir / "rows") / "model"
        size = config.data.crop_size
        for kind, preset_name in EVAL_SETS.items():
            data = make_eval_set(workdir / "eval" / f"{kind}_{size}", config, preset_name,
                                 SCALES[args.scale].eval_images, size)
            score(model_dir, data, workdir / "rows" / name / f"eval_{kind}", nets, args.batch_size,
                  SCALES[args.scale].area_bins)
    records = []
    for name in rows_lib.TABLES[table]:
        row_dir = workdir / "rows" / name
        if not (row_dir / "eval_wide" / "metrics.json").exists():
            continue
        config = row_config(name, args.scale, args)
        row = rows_lib.ROWS[name]
        model = load_model(str(row_dir / "model"))
        records.append({
            "row": name, "label": row.label, "official": row.official,
            "narrow": json.loads((row_dir / "eval_narrow" / "metrics.json").read_text()),
            "wide": json.loads((row_dir / "eval_wide" / "metrics.json").read_text()),
            "paper": {"narrow": row.narrow, "wide": row.wide, "segmentation": row.segmentation},
            "parameters": param_count(model.generator_variables),
            "gflop_per_image": inference_gflops(model.generator_config, config.data.crop_size),
            "images_seen": config.num_train_steps * config.batch_size,
            "wall_time_s": (json.loads((row_dir / "wall_time_s.json").read_text())
                            if (row_dir / "wall_time_s.json").exists() else None),
        })
    for r in records:  # the per-image arrays stay in the rows' metrics.json
        for kind in ("narrow", "wide"):
            r[kind] = {k: r[kind].get(k) for k in ("images", *dict(METRICS))}
    paper_cols = ("segmentation",) if table == "3" else ("narrow", "wide")
    lines = [f"# Table {table} ({args.scale} scale; ours: FID / LPIPS / SSIM / PSNR dB / L1 in the "
             f"hole, paper: FID / LPIPS)",
             "", "| row | official config | ours narrow | ours wide | "
             + " | ".join(f"paper {c}" for c in paper_cols)
             + " | params | GFLOP / image | images seen | wall time s |",
             "|---|---|---|---|" + "---|" * len(paper_cols) + "---:|---:|---:|---:|"]
    for r in records:
        lines.append(f"| {r['label']} | {r['official']} | {_fmt(r['narrow'])} | {_fmt(r['wide'])} | "
                     + " | ".join(_paper(r["paper"][c]) for c in paper_cols)
                     + f" | {r['parameters']:,} | {r['gflop_per_image']:.1f} | "
                       f"{r['images_seen']:,} | {_seconds(r['wall_time_s'])} |")
    write_atomic(str(workdir / f"table{table}.md"), ("\n".join(lines) + "\n").encode())
    write_atomic(str(workdir / f"table{table}.json"),
                 (json.dumps({"table": table, "scale": args.scale, "rows": records}, indent=2)
                  + "\n").encode())
    print("\n".join(lines))
    return {"rows": records}


def run_figure6(names: List[str], args: argparse.Namespace) -> Dict:
    """Scores Figure 6's models at growing resolutions; writes figure6.json and .png."""
    workdir = pathlib.Path(args.workdir)
    nets = _metric_nets(args)
    curves: Dict[str, List[Dict]] = {}
    for name in names:
        config = row_config(name, args.scale, args)
        model_dir = train_row(name, config, workdir / "rows") / "model"
        points = []
        crop = config.data.crop_size
        for resolution in SCALES[args.scale].resolutions:
            # At the training size these are the table's wide set and scores.
            suffix = "" if resolution == crop else f"_{resolution}"
            data = make_eval_set(workdir / "eval" / f"wide_{crop}{suffix}", config,
                                 EVAL_SETS["wide"], SCALES[args.scale].eval_images, resolution)
            summary = score(model_dir, data, workdir / "rows" / name / f"eval_wide{suffix}",
                            nets, args.batch_size, SCALES[args.scale].area_bins)
            points.append({"resolution": resolution,
                           **{key: summary.get(key) for key, _ in METRICS}})
        curves[name] = points
    record = {"figure": 6, "scale": args.scale, "curves": curves}
    write_atomic(str(workdir / "figure6.json"), (json.dumps(record, indent=2) + "\n").encode())
    write_atomic(str(workdir / "figure6.png"), _plot_figure6(curves))
    for resolution in SCALES[args.scale].resolutions:
        suffix = "" if resolution == crop else f"_{resolution}"
        write_atomic(str(workdir / f"figure6_examples_{resolution}.png"),
                     _example_grid(workdir, names, f"wide_{crop}{suffix}", f"eval_wide{suffix}"))
    print(json.dumps(record, indent=2))
    return record


def _plot_figure6(curves: Dict[str, List[Dict]]) -> bytes:
    import io

    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = {"fid": "FID ↓", "lpips": "LPIPS ↓", "ssim": "SSIM ↑", "psnr": "PSNR dB ↑",
              "hole_l1": "L1 in the hole ↓"}
    scored = [key for key in labels  # the metrics this scale scored
              if all(p[key] is not None for points in curves.values() for p in points)]
    fig, axes = plt.subplots(1, len(scored), figsize=(4 * len(scored), 3.8),
                             constrained_layout=True, squeeze=False)
    for name, points in curves.items():
        label = rows_lib.ROWS[name].label
        resolutions = [p["resolution"] for p in points]
        for ax, key in zip(axes[0], scored):
            ax.plot(resolutions, [p[key] for p in points], "o-", label=label)
    for ax, key in zip(axes[0], scored):
        ax.set(xlabel="test resolution (px)", ylabel=f"{labels[key]} (wide masks)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    return buffer.getvalue()


def _example_grid(workdir: pathlib.Path, names: List[str], data: str, scores: str,
                  examples: int = 6) -> bytes:
    """PNG of the first `examples` images of the set `data`: masked input, each row's result
    (from its scores folder `scores`) and the original, side by side."""
    folder = workdir / "eval" / data
    rows = []
    for index in range(examples):
        original = read_image(str(folder / f"{index:05d}.png"))[0]  # [H, W, 3]
        hole = read_mask(str(folder / f"{index:05d}_mask000.png"))[..., None] > 0
        results = [read_image(str(workdir / "rows" / name / scores / "predictions"
                                  / f"{index:05d}_mask000.png"))[0] for name in names]
        rows.append(np.concatenate([np.where(hole, 1.0, original), *results, original], axis=1))
    return png_bytes(to_uint8(np.concatenate(rows, axis=0)))


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """The command line; exits with a one-line error on a bad combination."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--table", choices=sorted(rows_lib.TABLES))
    what.add_argument("--figure", choices=["6"])
    parser.add_argument("--scale", choices=sorted(SCALES), required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--rows", nargs="+", help="a subset of the table's (or figure's) rows")
    parser.add_argument("--batch-size", type=int, default=8, help="evaluation images per step")
    for flag, what_file in (("--hrf-weights", "ADE20K encoder_epoch_20.pth"),
                            ("--resnet50-imagenet-weights", "CSAIL's resnet50-imagenet.pth"),
                            ("--vgg19-weights", "torchvision's vgg19-dcbb9e9d.pth"),
                            ("--vgg16-weights", "torchvision's vgg16-397923af.pth (PConv's loss)"),
                            ("--inception-weights", "pytorch-fid's Inception"),
                            ("--lpips-weights", "torchvision's vgg16-397923af.pth")):
        parser.add_argument(flag, help=f"{what_file} (--scale paper)")
    args = parser.parse_args(argv)
    known = rows_lib.TABLES[args.table] if args.table else rows_lib.FIGURE6
    unknown = sorted(set(args.rows or []) - set(known))
    if unknown:
        parser.error(f"--rows: {unknown} are not rows of this "
                     f"{'table' if args.table else 'figure'}; its rows are {known}")
    if SCALES[args.scale].rows is not None:
        args.rows = args.rows or [r for r in known if r in SCALES[args.scale].rows]
        if not args.rows or set(args.rows) - set(SCALES[args.scale].rows):
            parser.error(f"--scale {args.scale} trains only the rows "
                         f"{list(SCALES[args.scale].rows)}")
    return args


def main(argv: Optional[List[str]] = None) -> Dict:
    """Runs the table or the figure; returns what it wrote."""
    args = parse_args(argv)
    if args.table:
        return run_table(args.table, args.rows or rows_lib.TABLES[args.table], args)
    return run_figure6(args.rows or rows_lib.FIGURE6, args)


if __name__ == "__main__":
    main()
