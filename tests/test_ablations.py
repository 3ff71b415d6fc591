"""The ablation rows build what they claim, and the runner's scales and command line."""

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from configs import ablations
from lama_jax.model_dir import generator_abstract_variables
from lama_jax.models.variables import param_count
from lama_jax.state import build_networks

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def runner():
    """experiments/ablations.py as a module (its neighbours importable, as when run)."""
    spec = importlib.util.spec_from_file_location("ablations_runner",
                                                  ROOT / "experiments" / "ablations.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    sys.path.insert(0, str(ROOT / "experiments"))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "experiments"))
    return module


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


# The smoke scale of Table 2 and Figure 6 runs end to end in the ablations notebook's test
# (tests/test_notebooks.py).


@pytest.mark.parametrize("rows,scale,error", [
    ("t3_vgg19", "smoke", "are not rows of this table"),
    ("t2_deep_regular", "cpu", "--scale cpu trains only the rows")])
def test_unknown_rows_are_one_line(tmp_path, rows, scale, error):
    done = subprocess.run([sys.executable, "experiments/ablations.py", "--table", "2", "--rows",
                           rows, "--scale", scale, "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and error in done.stderr
    assert "Traceback" not in done.stderr


def test_cpu_scale_trains_equal_sized_generators_on_periodic_images(runner):
    counts = {}
    for name in runner.CPU_GENERATORS:
        config = runner.row_config(name, "cpu", None)
        nets = build_networks(config)
        assert nets.generator.config.kind == ablations.get_config(name).generator.kind
        assert nets.backbone is None and config.losses.l1_weight_missing > 0  # no HRFPL offline
        assert (config.data.source, config.data.crop_size, config.data.mask_size) == (
            "periodic:64", 64, 256)
        counts[name] = param_count(generator_abstract_variables(nets.generator.config))
    assert max(counts.values()) <= 1.2 * min(counts.values()), counts
    args = runner.parse_args(["--table", "2", "--scale", "cpu", "--workdir", "unused"])
    assert args.rows == ["t2_fourier", "t2_dilated", "t2_regular"]
