"""The ablation rows build what they claim, and the runner's smoke scale runs end to end."""

import json
import os
import pathlib
import subprocess
import sys

from configs import ablations
from lama_jax.model_dir import generator_abstract_variables
from lama_jax.state import build_networks

ROOT = pathlib.Path(__file__).resolve().parents[1]


def test_every_row_builds_the_model_and_losses_it_claims():
    claims = {  # row: (generator kind, blocks, perceptual term, dilated HRF encoder, masks)
        "t2_fourier": ("ffc_resnet", 9, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t2_dilated": ("pix2pixhd_multidilated", 9, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t2_regular": ("pix2pixhd_global", 9, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t2_shallow_fourier": ("ffc_resnet", 6, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t2_deep_regular": ("pix2pixhd_global", 15, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t2_pconv": ("pconv_unet", None, "pconv", None, "abl-04-256-mh-dist"),
        "t3_hrfpl_ade20k": ("pix2pixhd_global", 9, "hrf_perceptual", True, "abl-04-256-mh-dist"),
        "t3_resnet50dilated_imagenet": ("pix2pixhd_global", 9, "hrf_perceptual", True,
                                        "abl-04-256-mh-dist"),
        "t3_resnet50_imagenet": ("pix2pixhd_global", 9, "hrf_perceptual", False,
                                 "abl-04-256-mh-dist"),
        "t3_vgg19": ("pix2pixhd_global", 9, "vgg19_perceptual", None, "abl-04-256-mh-dist"),
        "t3_no_perceptual": ("pix2pixhd_global", 9, None, None, "abl-04-256-mh-dist"),
        "t3_no_feature_matching": ("pix2pixhd_global", 9, "hrf_perceptual", True,
                                   "abl-04-256-mh-dist"),
        "t4_narrow_masks": ("pix2pixhd_global", 9, "hrf_perceptual", True, "abl-02-thin-bb"),
        "t4_wide_masks": ("pix2pixhd_global", 9, "hrf_perceptual", True, "abl-04-256-mh-dist"),
    }
    assert set(claims) == set(ablations.ROWS)
    for name, (kind, blocks, term, dilated, masks) in claims.items():
        config = ablations.get_config(name)
        nets = build_networks(config)
        assert nets.generator.config.kind == kind, name
        assert getattr(nets.generator.config, "n_blocks", None) == blocks, name
        assert (nets.backbone.term if nets.backbone else None) == term, name
        if dilated is not None:
            assert nets.backbone.module.dilated == dilated, name
        assert config.data.mask_preset == masks, name
        assert (config.losses.get("feature_matching_weight") == 0) == (name == "t3_no_feature_matching")
    # The Dilated row's blocks: four quarter-width convolutions (dilations 2^i, checked on an
    # impulse in tests/models/test_multidilated.py).
    dilated = build_networks(ablations.get_config("t2_dilated")).generator.config
    assert dilated.dilation_num == 4 and dilated.min_side == 72
    block = generator_abstract_variables(dilated)["params"]["block_0"]["conv1"]
    assert {k: v["kernel"].shape for k, v in block.items()} == {
        f"dil_{i}": (3, 3, 128, 512) for i in range(4)}


def _run(args, tmp_path):
    # The second run loads the first one's compiled programs from a persistent cache.
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
           "JAX_COMPILATION_CACHE_DIR": str(tmp_path / "jax_cache"),
           "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0.5"}
    done = subprocess.run([sys.executable, "experiments/ablations.py", *args, "--scale", "smoke",
                           "--workdir", str(tmp_path / "run")], cwd=ROOT, capture_output=True,
                          text=True, timeout=900, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_smoke_scale_of_table_2_and_figure_6_runs_end_to_end(tmp_path):
    _run(["--table", "2", "--rows", "t2_fourier"], tmp_path)
    tmp_path = tmp_path / "run"
    table = json.loads((tmp_path / "table2.json").read_text())
    (row,) = table["rows"]
    assert row["row"] == "t2_fourier" and row["paper"]["wide"] == [2.21, 0.135]
    assert row["images_seen"] == 16 and row["parameters"] > 0 and row["wall_time_s"] > 0
    for kind in ("narrow", "wide"):
        assert row[kind]["images"] == 8 and 0 < row[kind]["ssim"] < 1
    assert "| Base, Fourier (27M, 9 blocks) | ablv2_work_ffc075.yaml |" in (
        tmp_path / "table2.md").read_text()
    trained = (tmp_path / "rows" / "t2_fourier" / "wall_time_s.json").read_text()

    # Figure 6 reuses the trained row (no retraining) and scores it at 80 and 160 px.
    _run(["--figure", "6", "--rows", "t2_fourier"], tmp_path.parent)
    assert (tmp_path / "rows" / "t2_fourier" / "wall_time_s.json").read_text() == trained
    curve = json.loads((tmp_path / "figure6.json").read_text())["curves"]["t2_fourier"]
    assert [p["resolution"] for p in curve] == [80, 160]
    assert (tmp_path / "figure6.png").read_bytes()[:4] == b"\x89PNG"


def test_unknown_rows_are_one_line(tmp_path):
    done = subprocess.run([sys.executable, "experiments/ablations.py", "--table", "2", "--rows",
                           "t3_vgg19", "--scale", "smoke", "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "are not rows of this table" in done.stderr
    assert "Traceback" not in done.stderr
