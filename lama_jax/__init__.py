"""lama_jax: LaMa (Suvorov et al., WACV 2022) large-mask inpainting in JAX/Flax."""

from lama_jax.inpaint import Inpainter, inpaint

__all__ = ["Inpainter", "inpaint"]
__version__ = "0.1.0"
