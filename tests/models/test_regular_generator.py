"""LaMa-Regular (pix2pixHD's GlobalGenerator): conversion and outputs against an independent
NumPy transcription of the official PyTorch layers (NCHW, OIHW weights)."""

import dataclasses

import numpy as np
import pytest

from lama_jax import convert
from lama_jax.convert import convert_generator
from lama_jax.inpaint import Inpainter
from lama_jax.model_dir import generator_abstract_variables
from lama_jax.models.generator import (LAMA_REGULAR, GeneratorConfig, build_generator,
                                       generator_config_from_dict, generator_input)
from lama_jax.models.pix2pixhd import GlobalGeneratorConfig
from lama_jax.models.variables import param_count

TINY = GlobalGeneratorConfig(ngf=4, n_downsampling=2, n_blocks=2)


def test_parameter_counts_match_the_paper():
    # Summed by hand over the official layers (conv weights + biases, BN weights + biases):
    # 12,608 + 128 stem; 73,856 + 256, 295,168 + 512, 1,180,160 + 1,024 downsamplings;
    # 4,721,664 per residual block; 1,179,904 + 512, 295,040 + 256, 73,792 + 128 upsamplings;
    # 9,411 output conv. The paper rounds to 46M (9 blocks) and 74M (15 blocks).
    assert param_count(generator_abstract_variables(LAMA_REGULAR)) == 45_617_731
    deep = dataclasses.replace(LAMA_REGULAR, n_blocks=15)
    assert param_count(generator_abstract_variables(deep)) == 73_947_715


def test_fourier_settings_are_refused_for_the_regular_kind():
    with pytest.raises(ValueError, match="global_ratio=0"):
        generator_config_from_dict({"kind": "pix2pixhd_global", "global_ratio": 0.75})
    with pytest.raises(ValueError, match="unknown generator kind"):
        generator_config_from_dict({"kind": "unet"})


# ------------------------------------------------------------------------------------------
# The official module list, as PyTorch state dict keys, and its forward pass in NumPy.

def official_state_dict(cfg: GeneratorConfig, seed: int = 0):
    """Random weights under the keys of `pix2pixhd.GlobalGenerator(...).state_dict()`."""
    rng = np.random.default_rng(seed)
    sd = {}

    def conv(index, cin, cout, k, transposed=False):
        shape = (cin, cout, k, k) if transposed else (cout, cin, k, k)
        sd[f"{index}.weight"] = rng.normal(0, (cin * k * k) ** -0.5, shape).astype(np.float32)
        sd[f"{index}.bias"] = rng.normal(0, 0.1, cout).astype(np.float32)

    def bn(index, c):
        sd[f"{index}.weight"] = rng.uniform(0.5, 1.5, c).astype(np.float32)
        sd[f"{index}.bias"] = rng.normal(0, 0.1, c).astype(np.float32)
        sd[f"{index}.running_mean"] = rng.normal(0, 0.1, c).astype(np.float32)
        sd[f"{index}.running_var"] = rng.uniform(0.5, 2.0, c).astype(np.float32)
        sd[f"{index}.num_batches_tracked"] = np.array(7)

    widths = [cfg.ngf * 2 ** i for i in range(cfg.n_downsampling + 1)]
    conv("model.1", cfg.input_nc, cfg.ngf, 7)
    bn("model.2", cfg.ngf)
    i = 4
    for cin, cout in zip(widths, widths[1:]):
        conv(f"model.{i}", cin, cout, 3)
        bn(f"model.{i + 1}", cout)
        i += 3
    for _ in range(cfg.n_blocks):
        for part in (1, 5):
            conv(f"model.{i}.conv_block.{part}", widths[-1], widths[-1], 3)
            bn(f"model.{i}.conv_block.{part + 1}", widths[-1])
        i += 1
    for cin, cout in zip(widths[::-1], widths[::-1][1:]):
        conv(f"model.{i}", cin, cout, 3, transposed=True)
        bn(f"model.{i + 1}", cout)
        i += 3
    conv(f"model.{i + 1}", cfg.ngf, cfg.output_nc, 7)
    return sd


def _conv(x, w, b, stride=1, pad=0):
    x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    k = w.shape[-1]
    ho, wo = (x.shape[2] - k) // stride + 1, (x.shape[3] - k) // stride + 1
    out = np.zeros((x.shape[0], w.shape[0], ho, wo))
    for i in range(k):
        for j in range(k):
            patch = x[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
            out += np.einsum("nchw,oc->nohw", patch, w[:, :, i, j])
    return out + b[None, :, None, None]


def _conv_transpose(x, w, b):
    """ConvTranspose2d(k=3, stride=2, padding=1, output_padding=1) by its definition: every
    input pixel scatters its kernel-weighted copy to 2*(y, x) + (i, j) - padding."""
    n, _, h, wd = x.shape
    full = np.zeros((n, w.shape[1], 2 * (h - 1) + 3 + 1, 2 * (wd - 1) + 3 + 1))
    for i in range(3):
        for j in range(3):
            full[:, :, i:i + 2 * h - 1:2, j:j + 2 * wd - 1:2] += np.einsum(
                "nchw,co->nohw", x, w[:, :, i, j])
    return full[:, :, 1:1 + 2 * h, 1:1 + 2 * wd] + b[None, :, None, None]


def _bn(x, sd, index):
    scale = sd[f"{index}.weight"] / np.sqrt(sd[f"{index}.running_var"] + 1e-5)
    return ((x - sd[f"{index}.running_mean"][None, :, None, None]) * scale[None, :, None, None]
            + sd[f"{index}.bias"][None, :, None, None])


def _reflect(x, p):
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)), mode="reflect")


def official_forward(sd, cfg: GeneratorConfig, x):
    """Eval-mode GlobalGenerator on NCHW float64 input."""
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    w = lambda i: (sd[f"{i}.weight"].astype(np.float64), sd[f"{i}.bias"])  # noqa: E731
    y = relu(_bn(_conv(_reflect(x, 3), *w("model.1")), sd, "model.2"))
    i = 4
    for _ in range(cfg.n_downsampling):
        y = relu(_bn(_conv(y, *w(f"model.{i}"), stride=2, pad=1), sd, f"model.{i + 1}"))
        i += 3
    for _ in range(cfg.n_blocks):
        r = relu(_bn(_conv(_reflect(y, 1), *w(f"model.{i}.conv_block.1")), sd,
                     f"model.{i}.conv_block.2"))
        y = y + _bn(_conv(_reflect(r, 1), *w(f"model.{i}.conv_block.5")), sd,
                    f"model.{i}.conv_block.6")
        i += 1
    for _ in range(cfg.n_downsampling):
        y = relu(_bn(_conv_transpose(y, *w(f"model.{i}")), sd, f"model.{i + 1}"))
        i += 3
    return 1 / (1 + np.exp(-_conv(_reflect(y, 3), *w(f"model.{i + 1}"))))


# ------------------------------------------------------------------------------------------

def test_converted_weights_give_the_official_outputs():
    sd = official_state_dict(TINY)
    cfg, variables = convert_generator(sd)
    assert cfg == TINY
    rng = np.random.default_rng(1)
    x = rng.random((2, 20, 28, 4), dtype=np.float32)  # [B, H, W, 4]
    ours = np.asarray(build_generator(cfg).apply(variables, x))
    theirs = official_forward(sd, TINY, x.transpose(0, 3, 1, 2).astype(np.float64))
    np.testing.assert_allclose(ours, theirs.transpose(0, 2, 3, 1), atol=1e-5, rtol=0)


def test_cli_conversion_to_inpainting(tmp_path):
    sd = official_state_dict(TINY, seed=2)
    np.savez(tmp_path / "lama_regular.npz", **{f"generator.{k}": v for k, v in sd.items()})
    out = tmp_path / "model"
    assert convert.main(["--checkpoint", str(tmp_path / "lama_regular.npz"),
                         "--output", str(out)]) == 0
    rng = np.random.default_rng(3)
    image = rng.random((24, 32, 3), dtype=np.float32)
    mask = (rng.random((24, 32)) > 0.5).astype(np.float32)
    result = Inpainter.load(str(out))(image, mask)
    x = np.asarray(generator_input(image[None], mask[None, ..., None]))
    predicted = official_forward(sd, TINY, x.transpose(0, 3, 1, 2).astype(np.float64))
    expected = np.where(mask[..., None] > 0, predicted[0].transpose(1, 2, 0), image)
    np.testing.assert_allclose(result, expected, atol=1e-5, rtol=0)
