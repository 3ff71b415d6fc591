"""Inpainting with a converted or trained LaMa generator: the library API.

    from lama_jax import Inpainter
    inpainter = Inpainter.load("big-lama-jax")
    result = inpainter(image, mask)   # [H, W, 3] float32 in [0, 1]

As the official `bin/predict.py`: the image and mask are padded at the bottom and right to a
multiple of 8 with symmetric (edge-repeating) padding, the mask is binarised (non-zero =
hole), the generator sees concat(image * (1 - mask), mask), and the result keeps the known
pixels, takes the prediction in the hole and is cropped back to the input size.
"""

from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from lama_jax.model_dir import load_model
from lama_jax.models.ffc import ConvImpl, SpectralImpl
from lama_jax.models.generator import Generator, GeneratorConfig, composite, generator_input
from lama_jax.models.variables import Variables

PAD_MODULO = 8


def pad_to_modulo(x: np.ndarray, modulo: int) -> np.ndarray:
    """Symmetric padding of axes 0 and 1 at the end up to a multiple of `modulo`."""
    h, w = x.shape[:2]
    pads = [(0, -h % modulo), (0, -w % modulo)] + [(0, 0)] * (x.ndim - 2)
    return np.pad(x, pads, mode="symmetric")


def inpaint(generator: Generator, variables: Variables, image: jax.Array,
            mask: jax.Array) -> jax.Array:
    """Pure inpainting of a batch: image [B, H, W, 3] in [0, 1], mask [B, H, W, 1] in {0, 1}
    (H and W divisible by 8) -> composited [B, H, W, 3]."""
    predicted = generator.apply(variables, generator_input(image, mask), train=False)
    return composite(image, mask, predicted)


class Inpainter:
    """A generator ready to inpaint single photos of any size.

    Compiled once per padded shape; the compiled program is reused for every later photo of
    that shape. `conv_impl` defaults to "shift_sum" on CPU (faster there) and "xla" elsewhere.
    """

    def __init__(self, config: GeneratorConfig, variables: Variables,
                 spectral_impl: SpectralImpl = "fft", dtype: Optional[jnp.dtype] = None,
                 conv_impl: Optional[ConvImpl] = None):
        self.config = config
        self.variables = jax.device_put(variables)
        if conv_impl is None:
            conv_impl = "shift_sum" if jax.default_backend() == "cpu" else "xla"
        self.generator = Generator(config, spectral_impl=spectral_impl, conv_impl=conv_impl,
                                   dtype=dtype)
        self._apply = jax.jit(functools.partial(inpaint, self.generator))

    @classmethod
    def load(cls, directory: str, spectral_impl: SpectralImpl = "fft",
             dtype: Optional[jnp.dtype] = None,
             conv_impl: Optional[ConvImpl] = None) -> "Inpainter":
        """An inpainter for the generator of a model directory (see `lama_jax.model_dir`)."""
        model = load_model(directory)
        return cls(model.generator_config, model.generator_variables, spectral_impl, dtype,
                   conv_impl)

    def __call__(self, image: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """Inpaints `image` [H, W, 3] (uint8, or float in [0, 1]) where `mask` [H, W] is
        non-zero; returns the composited [H, W, 3] float32 image in [0, 1]."""
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
        h, w = mask.shape
        hole = (mask > 0).astype(np.float32)[..., None]  # [H, W, 1]
        result = self._apply(self.variables, pad_to_modulo(image, PAD_MODULO)[None],
                             pad_to_modulo(hole, PAD_MODULO)[None])
        return np.asarray(result)[0, :h, :w]
