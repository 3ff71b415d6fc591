"""Export a model directory's generator for use outside Python or without lama_jax.

    python -m lama_jax.export --model big-lama-jax --output big-lama.stablehlo --size 512x512
    python -m lama_jax.export --model big-lama-jax --output big-lama-tf --format saved_model \\
        --size 512x512

The artifact computes what `Inpainter` computes for one photo: `call(image, mask)` with image
[H, W, 3] float32 in [0, 1] and mask [H, W] float32 (non-zero = hole) returns the composited
[H, W, 3] float32 (symmetric padding to the size multiple inside, the known pixels kept).

    stablehlo    a serialized `jax.export.Exported` (weights inside):
                 `jax.export.deserialize(open(PATH, "rb").read()).call(image, mask)`
    saved_model  a TensorFlow SavedModel (through `jax2tf`, weights as variables) for TF
                 Serving and TensorFlow's converters: `tf.saved_model.load(PATH)
                 .signatures["serving_default"](image=..., mask=...)["inpainted"]`

Height and width are symbolic (any size from 16 px up) for LaMa-Regular. XLA's FFT and the
DFT matrices need static sizes, so Fourier generators (LaMa, Big LaMa) export at one size,
given by --size (export once per size you serve); so do the Dilated and PConv generators,
which check their input size while they are built. The SavedModel needs TensorFlow
(`pip install lama_jax[train]`). Existing outputs are kept unless --overwrite; the artifact
appears whole or not at all.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import sys
from typing import Callable, List, Optional, Tuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import export as jax_export

from lama_jax.files import staging_dir, write_atomic
from lama_jax.inpaint import PAD_MODULO
from lama_jax.model_dir import ModelDirError, load_model
from lama_jax.models.ffc import SpectralImpl
from lama_jax.models import pix2pixhd
from lama_jax.models.ffc_resnet import FFCResNetConfig
from lama_jax.models.generator import GeneratorConfig, build_generator, generator_input
from lama_jax.models.variables import Variables

PROG = "lama_jax.export"
FORMATS = ("stablehlo", "saved_model")
InpaintFn = Callable[[Variables, jax.Array, jax.Array], jax.Array]


class ExportError(ValueError):
    """An export that cannot be made as asked; the message says why and what to do."""


def fixed_size_reason(config: GeneratorConfig) -> Optional[str]:
    """Why the generator of `config` exports at one size only, or None when its height and
    width can stay symbolic (LaMa-Regular's kind)."""
    if isinstance(config, FFCResNetConfig):
        return "XLA's FFT and the DFT matrices need static sizes"
    if config.kind != pix2pixhd.KIND:
        return f"generator kind {config.kind!r} checks its input size while it is built"
    return None


def smallest_side(config: GeneratorConfig) -> int:
    """The smallest height and width an artifact takes: the generator's own, and at least its
    padding modulo (so that a symmetric pad never exceeds the side) and 16 px."""
    return max(config.min_side, _modulo(config), 2 * PAD_MODULO)


def _modulo(config: GeneratorConfig) -> int:
    return max(PAD_MODULO, config.size_multiple)


def _symmetric_pad(x: jax.Array, axis: int, modulo: int) -> jax.Array:
    """Symmetric padding of `axis` at the end to a multiple of `modulo`, as a gather (which
    also works for symbolic sizes); the pad must not exceed the axis's size."""
    n = x.shape[axis]
    i = jnp.arange(n + (-n) % modulo)
    return jnp.take(x, jnp.where(i < n, i, 2 * n - 1 - i), axis=axis)


def inpaint_function(config: GeneratorConfig, spectral_impl: SpectralImpl = "fft") -> InpaintFn:
    """The exported computation: (variables, image [H, W, 3], mask [H, W]) -> [H, W, 3]."""
    generator = build_generator(config, spectral_impl=spectral_impl)
    modulo = _modulo(config)

    def inpaint(variables: Variables, image: jax.Array, mask: jax.Array) -> jax.Array:
        h, w = image.shape[:2]
        hole = (mask != 0)[..., None]  # [H, W, 1]
        x = jnp.concatenate([jnp.where(hole, 0.0, image), hole.astype(image.dtype)], axis=-1)
        x = _symmetric_pad(_symmetric_pad(x, 0, modulo), 1, modulo)  # [Hp, Wp, 4]
        predicted = generator.apply(variables, generator_input(x[None, ..., :3],
                                                               x[None, ..., 3:]))
        return jnp.where(hole, predicted[0, :h, :w], image)  # [H, W, 3]

    return inpaint


def input_shapes(config: GeneratorConfig, size: Optional[Tuple[int, int]]
                 ) -> Tuple[jax.ShapeDtypeStruct, jax.ShapeDtypeStruct]:
    """The image and mask arguments: of `size` (height, width), or symbolic ("h", "w"), at
    least `smallest_side`. `ExportError` if the generator needs a size and has none."""
    least = smallest_side(config)
    if size is None:
        reason = fixed_size_reason(config)
        if reason:
            raise ExportError(f"this generator exports at one size ({reason}): add --size HxW")
        image = jax_export.symbolic_shape("h, w, 3", constraints=(f"h >= {least}",
                                                                  f"w >= {least}"))
        mask = jax_export.symbolic_shape("h, w", scope=image[0].scope)
    else:
        if min(size) < least:
            raise ExportError(f"--size {size[0]}x{size[1]} is too small for this generator: "
                              f"each side must be at least {least} px")
        image, mask = (*size, 3), size
    return jax.ShapeDtypeStruct(image, jnp.float32), jax.ShapeDtypeStruct(mask, jnp.float32)


def export_stablehlo(config: GeneratorConfig, variables: Variables,
                     size: Optional[Tuple[int, int]], spectral_impl: SpectralImpl = "fft"
                     ) -> jax_export.Exported:
    """The `jax.export` artifact of `call(image, mask)`, the weights inside; for every
    platform JAX lowers to here (CPU, CUDA, TPU)."""
    inpaint = inpaint_function(config, spectral_impl)
    weights = jax.tree.map(np.asarray, variables)
    return jax_export.export(jax.jit(lambda image, mask: inpaint(weights, image, mask)),
                             platforms=("cpu", "cuda", "tpu"))(*input_shapes(config, size))


def save_saved_model(path: str, config: GeneratorConfig, variables: Variables,
                     size: Optional[Tuple[int, int]], spectral_impl: SpectralImpl = "fft"
                     ) -> None:
    """Writes a TensorFlow SavedModel with the signature `serving_default(image, mask) ->
    {"inpainted"}` to the folder `path`, through a temporary folder and a rename (a folder
    already at `path` is replaced only once the new one is complete)."""
    import tensorflow as tf  # training extra; only this format needs it
    from jax.experimental import jax2tf

    input_shapes(config, size)  # the same checks as the StableHLO export
    least = smallest_side(config)
    converted = jax2tf.convert(
        inpaint_function(config, spectral_impl),
        polymorphic_shapes=None if size else [None, "(h, w, 3)", "(h, w)"],
        polymorphic_constraints=() if size else (f"h >= {least}", f"w >= {least}"),
        native_serialization_platforms=("cpu", "cuda", "tpu"), with_gradient=False)
    module = tf.Module()
    module.weights = tf.nest.map_structure(tf.Variable, jax.tree.map(np.asarray, variables))
    hw = size or (None, None)

    @tf.function(autograph=False, input_signature=[tf.TensorSpec((*hw, 3), tf.float32, "image"),
                                                   tf.TensorSpec(hw, tf.float32, "mask")])
    def serve(image, mask):
        return {"inpainted": converted(module.weights, image, mask)}

    module.serve = serve
    if os.path.lexists(path) and not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ExportError(f"{path}: exists and is not a SavedModel folder; refusing to replace it")
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = staging_dir(parent, prefix=f".{os.path.basename(path)}.tmp-")
    old = staging + "-old"
    try:
        tf.saved_model.save(module, staging, signatures={"serving_default": serve})
        if os.path.lexists(path):
            os.rename(path, old)
        os.rename(staging, path)
    finally:
        for leftover in (staging, old):
            shutil.rmtree(leftover, ignore_errors=True)


def _size(text: str) -> Tuple[int, int]:
    match = re.fullmatch(r"(\d+)x(\d+)", text)
    if not match:
        raise argparse.ArgumentTypeError(f"expected HEIGHTxWIDTH in pixels, e.g. 512x512, not "
                                         f"{text!r}")
    return int(match[1]), int(match[2])


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog=f"python -m {PROG}", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="model directory (from lama_jax.convert)")
    parser.add_argument("--output", required=True,
                        help="the artifact: a file (stablehlo) or a new folder (saved_model)")
    parser.add_argument("--format", choices=FORMATS, default="stablehlo")
    parser.add_argument("--size", type=_size, metavar="HxW",
                        help="the one input size (required for Fourier generators)")
    parser.add_argument("--spectral-impl", choices=("fft", "dft"), default="fft",
                        help="how the Fourier units compute: fft (XLA's FFT) or dft (matrix "
                             "products, faster on TPUs)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)

    def fail(message: str) -> int:
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 1

    if os.path.lexists(args.output) and not args.overwrite:
        return fail(f"{args.output}: exists; choose another --output or pass --overwrite")
    try:
        model = load_model(args.model)
    except ModelDirError as e:
        return fail(str(e))
    config, variables = model.generator_config, model.generator_variables
    try:
        input_shapes(config, args.size)
    except ExportError as e:
        return fail(f"{args.model}: {e}")
    try:
        if args.format == "stablehlo":
            if os.path.isdir(args.output):
                return fail(f"{args.output}: is a folder; --format stablehlo writes a file")
            exported = export_stablehlo(config, variables, args.size, args.spectral_impl)
            write_atomic(args.output, exported.serialize())
        elif importlib.util.find_spec("tensorflow") is None:
            return fail("--format saved_model needs TensorFlow: pip install 'lama_jax[train]'")
        else:
            save_saved_model(args.output, config, variables, args.size, args.spectral_impl)
    except ExportError as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{args.output}: cannot write ({e.strerror or e})")
    shape = "HxW (symbolic)" if args.size is None else f"{args.size[0]}x{args.size[1]}"
    print(f"wrote {args.output} ({args.format}, input {shape})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
