"""The notebooks of experiments/notebooks run top to bottom, offline, through their parameters
cells (papermill), and are stored without outputs."""

import json
import pathlib
import subprocess
import sys

import nbformat
import numpy as np
import papermill
import pytest
from PIL import Image

from lama_jax.data.sources import sample_photos
from lama_jax.model_dir import load_model
from lama_jax.notebook import MaskCanvas
from tests.gcs_server import GcsServer
from tests.helpers import TEST_XLA_FLAGS

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "experiments" / "notebooks"
# The train notebook's demo recipe shrunk (as tests/test_train.py's tiny config).
TINY_TRAINING = {"data.eval_records": 2, "data.crop_size": 64, "generator.ngf": 8,
                 "generator.n_blocks": 1, "discriminator.ndf": 8,
                 "losses.hrf_perceptual_weight": 0}


@pytest.fixture(autouse=True)
def kernel_environment(monkeypatch, tmp_path_factory):
    """The kernels see two CPU devices and a compilation cache of this test session's own
    (the train notebook's tests compile the same programs)."""
    monkeypatch.setenv("XLA_FLAGS", f"--xla_force_host_platform_device_count=2 {TEST_XLA_FLAGS}")
    monkeypatch.setenv("LAMA_JAX_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "jax_cache"))


def _run(name: str, tmp_path: pathlib.Path, **parameters) -> str:
    """Executes notebook `name` with `parameters`; returns the text of its outputs."""
    executed = tmp_path / f"{name}_executed.ipynb"
    papermill.execute_notebook(str(NOTEBOOKS / f"{name}.ipynb"), str(executed),
                               parameters=parameters, cwd=str(NOTEBOOKS), kernel_name="python3",
                               progress_bar=False)
    text = []
    for cell in nbformat.read(str(executed), as_version=4).cells:
        for output in cell.get("outputs", []):
            text.append(output.get("text", "") + str(output.get("data", {}).get("text/plain", "")))
    return "\n".join(text)


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path):
    notebook = nbformat.read(str(path), as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert code and all(c.outputs == [] and c.execution_count is None for c in code)
    assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1


def test_inpaint_notebook_converts_draws_and_inpaints(tmp_path, reference):
    work = tmp_path / "inpaint"
    text = _run("inpaint", tmp_path, CHECKPOINT=str(reference / "tiny_best.ckpt"),
                WORK=str(work), SAMPLE=0, DEVICE="cpu")
    assert "no strokes drawn" in text and "s per image on cpu" in text
    photo = np.asarray(Image.fromarray(sample_photos()[0]["image"]).convert("RGB"))
    result = np.asarray(Image.open(work / "result.png"))
    h, w = photo.shape[:2]
    hole = np.zeros((h, w), bool)
    hole[h // 3: h // 2, w // 3: 2 * w // 3] = True
    np.testing.assert_array_equal(result[~hole], photo[~hole])  # known pixels kept
    assert np.abs(result[hole].astype(int) - photo[hole]).mean() > 0
    assert load_model(str(work / "model")).generator_config.kind == "ffc_resnet"


def test_train_notebook_trains(tmp_path):
    workdir = tmp_path / "run"
    text = _run("train", tmp_path, STEPS=2, CONFIG="demo", WORKDIR=str(workdir),
                TENSORBOARD=False, OVERRIDES=TINY_TRAINING)
    assert "(a new run)" in text and "mesh: {'data': 2, 'fsdp': 1}" in text
    assert "trained to step 2" in text
    assert load_model(str(workdir / "model")).generator_config.ngf == 8
    assert any(p.name.startswith("events.out.tfevents") for p in workdir.iterdir())
    # Resuming after a restart: test_train_notebook_keeps_its_run_in_cloud_storage.


def test_train_notebook_keeps_its_run_in_cloud_storage(tmp_path, monkeypatch):
    # A gs:// workdir, served offline by tests/gcs_server.py through the real clients
    # (TensorFlow's file system, tensorstore, google-cloud-storage): a restarted runtime resumes
    # from it, and an unreadable checkpoint is moved aside there as it is locally.
    common = dict(CONFIG="demo", WORKDIR="gs://lama-runs/demo", TENSORBOARD=False,
                  OVERRIDES={**TINY_TRAINING, "checkpoint_every": 2})
    with GcsServer(tmp_path, "lama-runs") as gcs:
        for name, value in gcs.environ.items():
            monkeypatch.setenv(name, value)
        text = _run("train", tmp_path, STEPS=3, **common)
        assert "gs://lama-runs/demo (a new run)" in text and "trained to step 3" in text
        # Checkpoint 3 loses its array data. A restarted runtime (a fresh kernel, the same
        # cells) moves it aside, resumes from 2 and writes a new checkpoint 3.
        lost = [o for o in gcs.objects("lama-runs")
                if o.startswith("demo/checkpoints/3/state/ocdbt.process_0/d/")]
        for name in lost:
            gcs.storage.delete_file("lama-runs", name)
        text = _run("train", tmp_path, STEPS=3, **common)
        assert "(resuming from step 3)" in text
        assert "checkpoint 3 in gs://lama-runs/demo/checkpoints cannot be restored" in text
        assert "moved the unreadable checkpoint 3 to gs://lama-runs/demo/unreadable_" in text
        assert "resumed from step 2" in text and "trained to step 3" in text
        objects = gcs.objects("lama-runs")
        model = subprocess.run(
            [sys.executable, "-c", "from lama_jax.model_dir import load_model; "
             "print(load_model('gs://lama-runs/demo/model').metadata['step'])"],
            capture_output=True, text=True, timeout=300)
    assert lost and {"demo/checkpoints/2/", "demo/checkpoints/3/"} <= set(objects)
    kept = [o for o in objects if o.startswith("demo/unreadable_checkpoints/3-")]
    assert any(o.endswith("/_CHECKPOINT_METADATA") for o in kept)  # moved, not deleted
    assert any(o.startswith("demo/events.out.tfevents") for o in objects)
    assert model.returncode == 0 and model.stdout.split()[-1] == "3", model.stderr[-2000:]


def test_ablations_notebook_runs_the_smoke_scale_and_shows_it(tmp_path):
    results = tmp_path / "ablations"
    text = _run("ablations", tmp_path, WORKDIR=str(results), ROWS=["t2_fourier"])
    assert "Base, Fourier (27M, 9 blocks)" in text
    (row,) = json.loads((results / "table2.json").read_text())["rows"]
    assert row["row"] == "t2_fourier" and row["paper"]["wide"] == [2.21, 0.135]
    assert row["images_seen"] == 16 and row["parameters"] > 0 and row["wall_time_s"] > 0
    for kind in ("narrow", "wide"):
        assert row[kind]["images"] == 8 and 0 < row[kind]["ssim"] < 1 and row[kind]["psnr"] > 0
        assert row[kind]["fid"] is None and row[kind]["lpips"] is None  # no metric networks
    # Figure 6 reused the trained row (one training run, one event file) at 80 and 160 px.
    assert len(list((results / "rows" / "t2_fourier").glob("events.out.tfevents*"))) == 1
    curve = json.loads((results / "figure6.json").read_text())["curves"]["t2_fourier"]
    assert [p["resolution"] for p in curve] == [80, 160]
    for name in ("figure6.png", "figure6_examples_80.png", "figure6_examples_160.png"):
        assert (results / name).read_bytes()[:4] == b"\x89PNG", name


def test_mask_canvas_draws_round_strokes_at_the_photos_resolution():
    photo = np.zeros((300, 1200, 3), np.uint8)
    canvas = MaskCanvas(photo, brush=20, max_side=600)  # shown at half size
    assert (canvas.canvas.width, canvas.canvas.height) == (600, 150)
    canvas.press(100, 50)
    canvas.drag(200, 50)  # photo pixels (200, 100) -> (400, 100), 20 px wide
    canvas.release(200, 50)
    canvas.drag(300, 120)  # no button held: nothing drawn
    rows, cols = np.nonzero(canvas.mask)
    assert (rows.min(), rows.max()) == (90, 109) and (cols.min(), cols.max()) == (190, 409)
    assert canvas.mask[100, 300] == 1 and canvas.mask[91, 191] == 0  # round caps
    canvas.clear()
    assert not canvas.mask.any()
