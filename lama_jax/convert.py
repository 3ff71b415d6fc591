"""Official LaMa checkpoints -> lama_jax model directories.

    python -m lama_jax.convert --checkpoint big-lama/models/best.ckpt --output big-lama-jax

Reads a PyTorch Lightning checkpoint (`state_dict` with `generator.` and optionally
`discriminator.` keys) or a bare state dict (`.pth`, `.pt`, `.npz`, `.safetensors`, with or
without the `generator.` prefix) without executing pickled code; infers the generator's
architecture from the tensor shapes (Fourier `FFCResNetGenerator` or LaMa-Regular's
pix2pixHD `GlobalGenerator`; ngf, downsamplings, blocks, global ratio, local Fourier unit);
maps every key and checks every shape; writes a model directory atomically.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from typing import Iterator, List, Optional, Tuple

from lama_jax.images import is_inside
from lama_jax.model_dir import (
    Model,
    ModelDirError,
    discriminator_abstract_variables,
    generator_abstract_variables,
    save_model,
)
from lama_jax.models.discriminator import LAYOUT as DISCRIMINATOR_LAYOUT
from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import KINDS, GeneratorConfig
from lama_jax.models.official import ConversionError
from lama_jax.models.variables import Variables
from lama_jax.state_dict import MAX_EXPANSION, CheckpointError, StateDict, load_state_dict
from lama_jax.weights import map_state_dict, strip_prefix


def infer_generator_config(sd: StateDict) -> GeneratorConfig:
    """The generator architecture whose state dict is `sd` (keys without prefix), of
    whichever registered kind recognises it (`models.generator.KINDS`)."""
    layouts = [kind.layout for kind in KINDS.values() if kind.layout is not None]
    for layout in layouts:
        if layout.detect(sd):
            return layout.infer_config(sd)
    raise ConversionError("no generator found: expected "
                          + " or ".join(layout.signature for layout in layouts))


@contextlib.contextmanager
def _unsupported_layout(what: str) -> Iterator[None]:
    """Turns what building a module from inferred shapes raises (shapes that no supported
    layout has) into a `ConversionError` naming `what`."""
    try:
        yield
    except ConversionError:
        raise
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:
        raise ConversionError(f"unsupported {what} layout ({e})") from None


def convert_generator(sd: StateDict) -> Tuple[GeneratorConfig, Variables]:
    """Architecture and variables of an official generator state dict (no prefix)."""
    with _unsupported_layout("generator"):
        cfg = infer_generator_config(sd)
        abstract = generator_abstract_variables(cfg)
    layout = KINDS[cfg.kind].layout
    return cfg, map_state_dict(sd, abstract, lambda name: layout.module_key(name, cfg),
                               layout.rewrites)


def convert_discriminator(sd: StateDict) -> Tuple[DiscriminatorConfig, Variables]:
    """Architecture and variables of an official discriminator state dict (no prefix)."""
    with _unsupported_layout("discriminator"):
        cfg = DISCRIMINATOR_LAYOUT.infer_config(sd)
        abstract = discriminator_abstract_variables(cfg)
    return cfg, map_state_dict(sd, abstract, lambda name: DISCRIMINATOR_LAYOUT.module_key(name, cfg))


def convert_checkpoint(path: str, max_expansion: float = MAX_EXPANSION) -> Model:
    """Reads an official checkpoint or state dict and converts what it holds."""
    sd = load_state_dict(path, max_expansion)
    if any(k.startswith("generator.") for k in sd):
        gen_sd, disc_sd = strip_prefix(sd, "generator."), strip_prefix(sd, "discriminator.")
        # Other training-time modules (losses, evaluators) are not part of the model.
    else:
        gen_sd, disc_sd = sd, {}
    try:
        gen_cfg, gen_vars = convert_generator(gen_sd)
        disc_cfg, disc_vars = convert_discriminator(disc_sd) if disc_sd else (None, None)
    except ConversionError as e:
        raise ConversionError(f"{path}: {e}") from None
    return Model(gen_cfg, gen_vars, disc_cfg, disc_vars, metadata={"source": path})


def main(argv: Optional[List[str]] = None) -> int:
    """CLI entry point; returns the exit code."""
    parser = argparse.ArgumentParser(prog="python -m lama_jax.convert", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="official .ckpt/.pth/.pt/.npz/.safetensors")
    parser.add_argument("--output", required=True, help="model directory to write")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing lama_jax model directory at --output")
    parser.add_argument("--max-expansion", type=float, default=MAX_EXPANSION,
                        help="refuse archive members that decompress to more than this many "
                             "times their stored size (zip bombs; default %(default)s)")
    args = parser.parse_args(argv)
    try:
        if is_inside(args.checkpoint, args.output):
            raise ModelDirError(f"{args.checkpoint}: the checkpoint is inside the output folder "
                                f"{args.output}; choose another --output")
        model = convert_checkpoint(args.checkpoint, args.max_expansion)
        save_model(args.output, model, overwrite=args.overwrite)
    except (CheckpointError, ConversionError, ModelDirError) as e:
        print(f"lama_jax.convert: error: {e}", file=sys.stderr)
        return 1
    settings = " ".join(f"{k}={v}" for k, v in model.generator_config.to_dict().items()
                        if k in ("kind", "ngf", "n_downsampling", "n_blocks", "global_ratio",
                                 "enable_lfu"))
    print(f"wrote {args.output}: generator {settings}"
          + (f"; discriminator ndf={model.discriminator_config.ndf}"
             if model.discriminator_config else "; no discriminator"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
