"""The paper's ablations as named configs, one per row of Tables 2-4 (and the models of Figure 6):

    python -m lama_jax.main --config=configs/ablations.py:t2_dilated --workdir=/tmp/t2_dilated \
        --config.losses.hrf_weights_path=/path/to/encoder_epoch_20.pth

Every row is LaMa-Fourier's official recipe (configs/lama_fourier.py) with the one change the
official config it mirrors makes (the Partial Convolutions baseline, an extra row of Table 2,
is configs/pconv.py) (`ROWS[name].official`, in advimman/lama
configs/training/; see shared/reference/OFFICIAL_ABLATIONS.md). `experiments/ablations.py`
trains and scores them as tables. The paper's numbers are Places FID / LPIPS: narrow and wide
evaluation masks in Tables 2 and 4, segmentation masks in Table 3 (whose detectron2 masks are
not public: we compare on the narrow and wide sets instead).
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Optional, Tuple

import ml_collections

from configs import lama_fourier, pconv
from lama_jax.models.generator import LAMA_DILATED, LAMA_FOURIER, LAMA_REGULAR

Paper = Optional[Tuple[float, Optional[float]]]  # (FID, LPIPS); None where the paper has none


@dataclasses.dataclass(frozen=True)
class Row:
    """One row: its label in the paper, the official config, the paper's numbers and the change
    from LaMa-Fourier's recipe."""

    table: str  # "2", "3" or "4"
    label: str
    official: str
    change: Callable[[ml_collections.ConfigDict], None]
    narrow: Paper = None
    wide: Paper = None
    segmentation: Paper = None
    base: Callable[[], ml_collections.ConfigDict] = lama_fourier.get_config  # the recipe changed


def _generator(preset, **changes) -> Callable[[ml_collections.ConfigDict], None]:
    def change(c):
        c.generator = ml_collections.ConfigDict(dataclasses.replace(preset, **changes).to_dict())
    return change


def _regular_with(**losses) -> Callable[[ml_collections.ConfigDict], None]:
    def change(c):
        _generator(LAMA_REGULAR)(c)
        c.losses.update(losses)
    return change


def _regular_with_masks(preset: str) -> Callable[[ml_collections.ConfigDict], None]:
    def change(c):
        _generator(LAMA_REGULAR)(c)
        c.data.mask_preset = preset
    return change


ROWS: Dict[str, Row] = {
    # Table 2: generator architecture.
    "t2_fourier": Row("2", "Base, Fourier (27M, 9 blocks)", "ablv2_work_ffc075.yaml",
                      _generator(LAMA_FOURIER), (0.63, 0.090), (2.21, 0.135)),
    "t2_dilated": Row("2", "Base, Dilated (46M, 9 blocks)", "ablv2_work_md.yaml",
                      _generator(LAMA_DILATED), (0.66, 0.089), (2.30, 0.136)),
    "t2_regular": Row("2", "Base, Regular (46M, 9 blocks)", "ablv2_work.yaml",
                      _generator(LAMA_REGULAR), (0.60, 0.089), (3.51, 0.139)),
    "t2_shallow_fourier": Row("2", "Shallow, Fourier (19M, 6 blocks)",
                              "ablv2_work_ffc075.yaml + generator.n_blocks=6",
                              _generator(LAMA_FOURIER, n_blocks=6), (0.72, 0.094), (2.31, 0.138)),
    "t2_deep_regular": Row("2", "Deep, Regular (74M, 15 blocks)",
                           "ablv2_work.yaml + generator.n_blocks=15",
                           _generator(LAMA_REGULAR, n_blocks=15), (0.63, 0.090), (2.62, 0.137)),
    "t2_pconv": Row("2", "Partial Convolutions U-Net (33M; a baseline, not in Table 2)",
                    "Liu et al. 2018 (configs/pconv.py)", lambda c: None, base=pconv.get_config),
    # Table 3: the perceptual loss, on LaMa-Regular.
    "t3_hrfpl_ade20k": Row("3", "HRFPL: ResNet50, ADE20K segmentation, dilated", "ablv2_work.yaml",
                           _regular_with(), segmentation=(5.69, 0.059)),
    "t3_resnet50dilated_imagenet": Row(
        "3", "ResNet50, ImageNet classification, dilated", "ablv2_work_no_segmpl_csdilirpl.yaml",
        _regular_with(hrf_perceptual_weight=1.0), segmentation=(5.87, 0.059)),
    "t3_resnet50_imagenet": Row(
        "3", "ResNet50, ImageNet classification, not dilated", "ablv2_work_no_segmpl_csirpl.yaml",
        _regular_with(hrf_perceptual_weight=0.3, hrf_arch="resnet50"), segmentation=(6.00, 0.061)),
    # The official weight 0.03 applies to a sum over each GPU's 10 images; ours to the mean.
    "t3_vgg19": Row("3", "VGG19, ImageNet classification", "ablv2_work_no_segmpl_vgg.yaml",
                    _regular_with(hrf_perceptual_weight=0.0, vgg19_perceptual_weight=0.3),
                    segmentation=(6.29, 0.063)),
    "t3_no_perceptual": Row("3", "No perceptual loss", "ablv2_work_no_segmpl.yaml",
                            _regular_with(hrf_perceptual_weight=0.0), segmentation=(6.46, 0.065)),
    "t3_no_feature_matching": Row("3", "HRFPL without feature matching (not in the paper)",
                                  "ablv2_work_no_fm.yaml",
                                  _regular_with(feature_matching_weight=0.0)),
    # Table 4: training masks, on LaMa-Regular.
    "t4_narrow_masks": Row("4", "LaMa-Regular trained on narrow masks (abl-02-thin-bb)",
                           "ablv2_work_small_holes.yaml", _regular_with_masks("abl-02-thin-bb"),
                           (0.68, 0.091), (5.41, None)),
    "t4_wide_masks": Row("4", "LaMa-Regular trained on wide masks (abl-04-256-mh-dist)",
                         "ablv2_work.yaml", _regular_with_masks("abl-04-256-mh-dist"),
                         (0.60, 0.089), (3.51, 0.139)),
}
TABLES = {t: [name for name, row in ROWS.items() if row.table == t] for t in ("2", "3", "4")}
# Figure 6: FID against the test resolution of models trained at 256 px.
FIGURE6 = ["t2_fourier", "t2_regular", "t2_dilated", "t2_deep_regular"]
# Rows whose perceptual backbone needs CSAIL's ImageNet ResNet50 instead of the ADE20K one.
IMAGENET_RESNET_ROWS = ("t3_resnet50dilated_imagenet", "t3_resnet50_imagenet")


def get_config(arg=None):
    """The training config of row `arg` (one of `ROWS`)."""
    if arg not in ROWS:
        raise ValueError(f"configs/ablations.py: name a row, e.g. configs/ablations.py:t2_dilated; "
                         f"the rows are {sorted(ROWS)}")
    config = ROWS[arg].base()
    ROWS[arg].change(config)
    return config
