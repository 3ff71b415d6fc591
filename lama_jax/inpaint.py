"""Inpainting with a converted or trained LaMa generator: the library API.

    from lama_jax import Inpainter
    inpainter = Inpainter.load("big-lama-jax")
    result = inpainter(image, mask)   # [H, W, 3] float32 in [0, 1]

As the official `bin/predict.py`: the image and mask are padded at the bottom and right to a
multiple of 8 with symmetric (edge-repeating) padding, the mask is binarised (non-zero =
hole), the generator sees concat(image * (1 - mask), mask), and the result keeps the known
pixels, takes the prediction in the hole and is cropped back to the input size.

For large photos, `inpainter(image, mask, refine=True)` runs the official multi-scale
refinement (`lama_jax.refine`) and `hd_strategy="crop"` or `"resize"` keeps big photos within
time and memory (`lama_jax.hd_strategy`); both can be combined.
"""

from __future__ import annotations

import functools
from typing import Dict, Optional, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from lama_jax.hd_strategy import HDStrategy, inpaint_large
from lama_jax.model_dir import load_model
from lama_jax.models.layers import ConvImpl
from lama_jax.models.ffc import SpectralImpl
from lama_jax.models.generator import (GeneratorConfig, build_generator, composite,
                                       generator_input, has_parts)
from lama_jax.models.variables import Variables
from lama_jax.parallel import batch_sharding, replicated
from lama_jax.refine import Refiner, RefineOptions
from lama_jax.xla_flags import accepts_options, cpu_inference_options

PAD_MODULO = 8
# The command-line tools' --spectral-impl, whose default (None) `Inpainter` resolves.
SPECTRAL_IMPL_HELP = ("FFT implementation: fft (jnp.fft), dft (matrix products, for TPU) or cpu "
                      "(FFT forward, DFT products back on small maps); by default cpu on CPUs "
                      "and fft elsewhere")


def pad_to_modulo(x: np.ndarray, modulo: int, axes: Tuple[int, int] = (0, 1)) -> np.ndarray:
    """Symmetric padding of the two (height, width) `axes` at the end up to a multiple of
    `modulo`."""
    pads = [(0, -n % modulo if d in axes else 0) for d, n in enumerate(x.shape)]
    return np.pad(x, pads, mode="symmetric")


def inpaint(generator: nn.Module, variables: Variables, image: jax.Array,
            mask: jax.Array) -> jax.Array:
    """Pure inpainting of a batch: image [B, H, W, 3] in [0, 1], mask [B, H, W, 1] in {0, 1}
    (H and W divisible by the generator's size multiple) -> composited [B, H, W, 3]."""
    predicted = generator.apply(variables, generator_input(image, mask), train=False)
    return composite(image, mask, predicted)


def known_pixels_checked(images: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """`images` [B, H, W, 3] with hole pixels (`hole` [B, H, W, 1] non-zero) set to 0, after
    checking that every known pixel is finite and in [0, 1]; a hole pixel may hold anything
    (NaN too), since the result replaces it. Raises `ValueError` saying where a bad value is."""
    known = hole == 0
    bad = np.any(~((images >= 0) & (images <= 1)), axis=-1, keepdims=True) & known  # NaN too
    if bad.any():
        b, y, x, _ = np.argwhere(bad)[0]
        raise ValueError(f"{int(bad.sum())} known pixel(s) are NaN, infinite or outside [0, 1] "
                         f"(image {b}, row {y}, column {x}: {images[b, y, x].tolist()}); only "
                         f"hole pixels may be")
    return np.where(known, images, np.float32(0)).astype(np.float32)


class Inpainter:
    """A generator ready to inpaint single photos of any size.

    Compiled once per padded shape; the compiled program is reused for every later photo of
    that shape. `conv_impl` defaults to "cpu" on CPU (faster there) and "xla" elsewhere,
    `spectral_impl` to "cpu" with the "cpu" convolutions and "fft" otherwise; with "cpu"
    convolutions the program is compiled with `compiler_options`, by default those that
    `lama_jax.xla_flags.cpu_inference_options` chooses for this machine (`{}` keeps XLA's).
    With a `mesh` (see `lama_jax.parallel.make_mesh`), the weights are replicated on its
    devices and `inpaint_batch` splits batches over them.
    """

    def __init__(self, config: GeneratorConfig, variables: Variables,
                 spectral_impl: Optional[SpectralImpl] = None, dtype: Optional[jnp.dtype] = None,
                 conv_impl: Optional[ConvImpl] = None, mesh: Optional[Mesh] = None,
                 compiler_options: Optional[Dict[str, str]] = None):
        self.config = config
        self.mesh = mesh
        self.variables = jax.device_put(variables, replicated(mesh) if mesh else None)
        if conv_impl is None:
            conv_impl = "cpu" if jax.default_backend() == "cpu" else "xla"
        if spectral_impl is None:
            spectral_impl = "cpu" if conv_impl == "cpu" else "fft"
        self.generator = build_generator(config, spectral_impl=spectral_impl, conv_impl=conv_impl,
                                         dtype=dtype)
        if compiler_options is None:
            compiler_options = cpu_inference_options(dtype) if conv_impl == "cpu" else {}
        self.compiler_options = dict(compiler_options)
        if self.compiler_options and not accepts_options(self.compiler_options):
            raise ValueError(f"compiler_options {self.compiler_options}: XLA does not accept "
                             f"them (an unknown option or a bad value)")
        self._apply = jax.jit(functools.partial(inpaint, self.generator),
                              compiler_options=self.compiler_options or None)
        self.modulo = max(PAD_MODULO, config.size_multiple)
        # Refinement differentiates through the generator: XLA's convolutions (their backward
        # pass is fast everywhere). Only kinds that split at their residual blocks refine.
        self._refiner = (Refiner(build_generator(config, spectral_impl=spectral_impl,
                                                 dtype=dtype), self.modulo)
                         if has_parts(config) else None)

    @classmethod
    def load(cls, directory: str, spectral_impl: Optional[SpectralImpl] = None,
             dtype: Optional[jnp.dtype] = None, conv_impl: Optional[ConvImpl] = None,
             mesh: Optional[Mesh] = None,
             compiler_options: Optional[Dict[str, str]] = None) -> "Inpainter":
        """An inpainter for the generator of a model directory (see `lama_jax.model_dir`)."""
        model = load_model(directory)
        return cls(model.generator_config, model.generator_variables, spectral_impl, dtype,
                   conv_impl, mesh, compiler_options)

    @property
    def can_refine(self) -> bool:
        """Whether `refine=True` works: the generator splits at its residual blocks."""
        return self._refiner is not None

    def inpaint_batch(self, images: np.ndarray, holes: np.ndarray) -> np.ndarray:
        """Inpaints images [B, H, W, 3] float32 in [0, 1] where `holes` [B, H, W] are non-zero;
        returns the composited [B, H, W, 3] float32 images. With a mesh, B must be a multiple
        of its size. Known pixels must be finite and in [0, 1] (`ValueError` otherwise)."""
        _, h, w = holes.shape
        hole = (holes > 0).astype(np.float32)[..., None]  # [B, H, W, 1]
        images = known_pixels_checked(np.asarray(images), hole)
        inputs = [pad_to_modulo(x, self.modulo, axes=(1, 2)) for x in (images, hole)]
        if self.mesh is not None:
            inputs = jax.device_put(inputs, batch_sharding(self.mesh))
        return np.asarray(self._apply(self.variables, *inputs))[:, :h, :w]

    def __call__(self, image: np.ndarray, mask: np.ndarray, *, refine: bool = False,
                 n_iters: int = 15, lr: float = 0.002, min_side: int = 512,
                 max_scales: int = 3, px_budget: int = 1_800_000,
                 hd_strategy: str = "original", hd_trigger: int = 800, crop_margin: int = 128,
                 resize_limit: int = 1280) -> np.ndarray:
        """Inpaints `image` [H, W, 3] (uint8, or float in [0, 1]) where `mask` [H, W] is
        non-zero; returns the composited [H, W, 3] float32 image in [0, 1].

        `refine=True` runs the official refinement with `n_iters`, `lr`, `min_side`,
        `max_scales` and `px_budget` (see `lama_jax.refine`; the defaults are the official
        ones). `hd_strategy` ("original", "crop" or "resize") with `hd_trigger`, `crop_margin`
        and `resize_limit` chooses how a large photo is split or shrunk (see
        `lama_jax.hd_strategy`). Bad values raise `ValueError`."""
        image, mask = np.asarray(image), np.asarray(mask)
        if image.ndim != 3 or image.shape[-1] != 3:
            raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
        if mask.ndim == 3 and mask.shape[-1] == 1:
            mask = mask[..., 0]
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask shape {mask.shape} does not match image size {image.shape[:2]}")
        if image.dtype == np.uint8:
            image = image.astype(np.float32) / 255.0
        elif np.issubdtype(image.dtype, np.floating):
            image = image.astype(np.float32)
        else:
            raise ValueError(f"image must be uint8 or float in [0, 1], got {image.dtype}")
        strategy = HDStrategy(hd_strategy, hd_trigger, crop_margin, resize_limit)
        hole = mask > 0  # [H, W]
        image = known_pixels_checked(image[None], hole[None, ..., None])[0]
        if not refine:
            return inpaint_large(lambda im, h: self.inpaint_batch(im[None], h[None])[0],
                                 image, hole, strategy)
        if not self.can_refine:
            raise ValueError(f"refinement needs a generator with residual blocks (LaMa's "
                             f"Fourier, regular or dilated kinds), not {self.config.kind!r}")
        options = RefineOptions(n_iters, lr, min_side, max_scales, px_budget)
        return inpaint_large(lambda im, h: self._refiner(self.variables, im, h, options),
                             image, hole, strategy)
