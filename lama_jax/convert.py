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
import dataclasses
import re
import sys
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from lama_jax.images import is_inside
from lama_jax.metrics.lpips import LPIPS
from lama_jax.model_dir import (
    Model,
    ModelDirError,
    discriminator_abstract_variables,
    generator_abstract_variables,
    save_model,
)
from lama_jax.models.backbones import FIDInceptionV3, ResNet50Dilated
from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import GeneratorConfig
from lama_jax.models.variables import Variables, abstract_variables, flat_paths
from lama_jax.state_dict import MAX_EXPANSION, CheckpointError, StateDict, load_state_dict


class ConversionError(ValueError):
    """A state dict that does not map onto our modules; the message lists every problem."""


# Our leaf names -> PyTorch's, per collection.
_LEAVES = {("params", "kernel"): "weight", ("params", "bias"): "bias",
           ("params", "scale"): "weight", ("batch_stats", "mean"): "running_mean",
           ("batch_stats", "var"): "running_var"}
# Our submodule names are PyTorch's except where PyTorch uses nn.Sequential indices.
_KEY_REWRITES = ((".convg2g.conv1.", ".convg2g.conv1.0."), (".convg2g.bn1.", ".convg2g.conv1.1."),
                 (".downsample_conv.", ".downsample.0."), (".downsample_bn.", ".downsample.1."))
# pix2pixHD's ResnetBlock: conv_block = [pad, conv, BN, ReLU, pad, conv, BN].
_RESNET_BLOCK_REWRITES = ((".conv1.", ".conv_block.1."), (".bn1.", ".conv_block.2."),
                          (".conv2.", ".conv_block.5."), (".bn2.", ".conv_block.6."))
_IGNORED_SUFFIX = ".num_batches_tracked"


def _weight(sd: StateDict, key: str, ndim: int = 4) -> np.ndarray:
    """`sd[key]`, checked to be an `ndim`-D tensor: the tensors architecture inference reads."""
    value = sd.get(key)
    if value is None:
        raise ConversionError(f"missing {key}, which the architecture is read from")
    if value.ndim != ndim:
        raise ConversionError(f"{key} has shape {tuple(value.shape)}; a {ndim}-D weight was "
                              f"expected")
    return value


def _strip(state: StateDict, prefix: str) -> StateDict:
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


# ------------------------------------------------------------------------------------------
# Architecture inference.

def infer_generator_config(sd: StateDict) -> GeneratorConfig:
    """The generator architecture whose state dict is `sd` (keys without prefix): LaMa's
    `FFCResNetGenerator` or pix2pixHD's `GlobalGenerator` (LaMa-Regular)."""
    if "model.1.ffc.convl2l.weight" in sd:
        return _infer_ffc_config(sd)
    if any(re.match(r"model\.\d+\.conv_block\.1\.weight$", k) for k in sd):
        return _infer_pix2pixhd_config(sd)
    raise ConversionError("no generator found: expected the key 'model.1.ffc.convl2l.weight' of "
                          "LaMa's FFCResNetGenerator or 'model.N.conv_block.1.weight' of "
                          "LaMa-Regular's GlobalGenerator")


def _module_indices(sd: StateDict) -> List[int]:
    return sorted({int(m.group(1)) for k in sd if (m := re.match(r"model\.(\d+)\.", k))})


def _output_channels(sd: StateDict, out_conv_index: int) -> int:
    key = f"model.{out_conv_index}.weight"
    return int(_weight(sd, key).shape[0]) if key in sd else 3


def _infer_ffc_config(sd: StateDict) -> GeneratorConfig:
    stem = _weight(sd, "model.1.ffc.convl2l.weight")
    indices = _module_indices(sd)
    n_down = sum(1 for i in indices if f"model.{i}.ffc.convl2l.weight" in sd and i >= 2)
    blocks = [i for i in indices if any(k.startswith(f"model.{i}.conv1.ffc.") for k in sd)]
    if not blocks:
        raise ConversionError("no residual blocks found (keys 'model.N.conv1.ffc.*')")
    first = f"model.{blocks[0]}.conv1.ffc."
    dim = _weight(sd, first + "convl2l.weight").shape[1] + (
        _weight(sd, first + "convg2l.weight").shape[1] if first + "convg2l.weight" in sd else 0)
    global_channels = (_weight(sd, first + "convl2g.weight").shape[0]
                       if first + "convl2g.weight" in sd else 0)
    cfg = GeneratorConfig(input_nc=int(stem.shape[1]), ngf=int(stem.shape[0]),
                          n_downsampling=n_down, n_blocks=len(blocks),
                          global_ratio=global_channels / dim,
                          enable_lfu=first + "convg2g.lfu.conv_layer.weight" in sd)
    return dataclasses.replace(
        cfg, output_nc=_output_channels(sd, _ffc_module_index("out_conv", cfg)))


def _infer_pix2pixhd_config(sd: StateDict) -> GeneratorConfig:
    stem = _weight(sd, "model.1.weight")
    blocks = [i for i in _module_indices(sd) if f"model.{i}.conv_block.1.weight" in sd]
    # Stem (pad, conv, BN, ReLU), then conv, BN, ReLU per downsampling.
    n_down, rest = divmod(blocks[0] - 4, 3)
    if rest or n_down < 0:
        raise ConversionError(f"unexpected GlobalGenerator layout: first residual block at "
                              f"model.{blocks[0]}")
    cfg = GeneratorConfig(kind="pix2pixhd_global", input_nc=int(stem.shape[1]),
                          ngf=int(stem.shape[0]), n_downsampling=n_down, n_blocks=len(blocks),
                          global_ratio=0.0)
    return dataclasses.replace(
        cfg, output_nc=_output_channels(sd, _pix2pixhd_module_index("out_conv", cfg)))


def infer_discriminator_config(sd: StateDict) -> DiscriminatorConfig:
    """The `NLayerDiscriminator` architecture whose state dict is `sd` (keys without prefix)."""
    if "model0.0.weight" not in sd:
        raise ConversionError("no discriminator found: expected the key 'model0.0.weight'")
    first = _weight(sd, "model0.0.weight")
    n_models = len({k.split(".")[0] for k in sd if re.match(r"model\d+\.", k)})
    return DiscriminatorConfig(input_nc=int(first.shape[1]), ndf=int(first.shape[0]),
                               n_layers=n_models - 2)


# ------------------------------------------------------------------------------------------
# Key mapping.

def _ffc_module_index(name: str, cfg: GeneratorConfig) -> int:
    """Our FFC generator's top-level submodule -> its index in the official `model` Sequential."""
    first_up = 2 + cfg.n_downsampling + cfg.n_blocks + 1  # after the ConcatTupleLayer
    if name == "stem":
        return 1
    if name == "out_conv":
        return first_up + 3 * cfg.n_downsampling + 1
    kind, i = name.rsplit("_", 1)
    offsets = {"down": 2, "block": 2 + cfg.n_downsampling}
    if kind in offsets:
        return offsets[kind] + int(i)
    return first_up + 3 * int(i) + (1 if kind == "up_bn" else 0)


def _pix2pixhd_module_index(name: str, cfg: GeneratorConfig) -> int:
    """The same for the GlobalGenerator: (conv, BN, ReLU) triples around the residual blocks."""
    first_up = 4 + 3 * cfg.n_downsampling + cfg.n_blocks
    if name in ("stem", "stem_bn"):
        return {"stem": 1, "stem_bn": 2}[name]
    if name == "out_conv":
        return first_up + 3 * cfg.n_downsampling + 1
    kind, i = name.rsplit("_", 1)
    if kind == "block":
        return 4 + 3 * cfg.n_downsampling + int(i)
    bn = 1 if kind.endswith("_bn") else 0
    return (4 if kind.startswith("down") else first_up) + 3 * int(i) + bn


# Per generator kind: our top-level submodule -> official index, and inner-name rewrites.
_GENERATOR_LAYOUTS = {"ffc_resnet": (_ffc_module_index, _KEY_REWRITES),
                      "pix2pixhd_global": (_pix2pixhd_module_index, _RESNET_BLOCK_REWRITES)}


def _discriminator_module_key(name: str) -> str:
    """Our discriminator submodule (`model3_bn`) -> the official one (`model3.1`)."""
    block, part = name.split("_")
    return f"{block}.{ {'conv': 0, 'bn': 1}[part] }"


def _torch_layout(ours: Tuple[int, ...], theirs: np.ndarray) -> np.ndarray:
    """PyTorch OIHW conv weights (and (in, out, kh, kw) transposed-conv weights) -> HWIO."""
    return np.transpose(theirs, (2, 3, 1, 0)) if len(ours) == 4 else theirs


def _listing(label: str, keys: List[str], limit: int = 8) -> str:
    more = f", ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{label}: {', '.join(keys[:limit])}{more}"


def map_state_dict(sd: StateDict, abstract: Variables, module_key,
                   rewrites: Tuple[Tuple[str, str], ...] = _KEY_REWRITES) -> Variables:
    """Fills the `abstract` variable tree from the official `sd`, or raises listing every
    missing, unexpected and misshapen key. `module_key` names the official module of each of
    our top-level submodules; `rewrites` then rename inner submodules."""
    values: Dict[Tuple[str, ...], np.ndarray] = {}
    used, missing, misshapen = set(), [], []
    for path, leaf in flat_paths(abstract).items():
        collection, top, *inner, leaf_name = path
        key = ".".join([module_key(top), *inner, _LEAVES[(collection, leaf_name)]])
        for ours, theirs in rewrites:
            key = key.replace(ours, theirs)
        if key not in sd:
            missing.append(key)
            continue
        used.add(key)
        if sd[key].ndim != len(leaf.shape):
            misshapen.append(f"{key} {tuple(sd[key].shape)}")
            continue
        value = _torch_layout(leaf.shape, np.asarray(sd[key], np.float32))
        if value.shape != tuple(leaf.shape):
            misshapen.append(f"{key} {tuple(sd[key].shape)}")
            continue
        values[path] = value
    unexpected = sorted(k for k in sd if k not in used and not k.endswith(_IGNORED_SUFFIX))
    problems = [_listing(label, keys) for label, keys in
                (("missing", missing), ("unexpected", unexpected), ("misshapen", misshapen)) if keys]
    if problems:
        raise ConversionError("; ".join(problems))
    tree: Dict[str, Any] = {}
    for path, value in values.items():
        node = tree
        for p in path[:-1]:
            node = node.setdefault(p, {})
        node[path[-1]] = value
    return tree


def convert_generator(sd: StateDict) -> Tuple[GeneratorConfig, Variables]:
    """Architecture and variables of an official generator state dict (no prefix)."""
    try:
        cfg = infer_generator_config(sd)
        abstract = generator_abstract_variables(cfg)
    except ConversionError:
        raise
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:  # no supported layout
        raise ConversionError(f"unsupported generator layout ({e})") from None
    index, rewrites = _GENERATOR_LAYOUTS[cfg.kind]
    variables = map_state_dict(sd, abstract, lambda name: f"model.{index(name, cfg)}", rewrites)
    return cfg, variables


def convert_discriminator(sd: StateDict) -> Tuple[DiscriminatorConfig, Variables]:
    """Architecture and variables of an official discriminator state dict (no prefix)."""
    cfg = infer_discriminator_config(sd)
    try:
        abstract = discriminator_abstract_variables(cfg)
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:
        raise ConversionError(f"unsupported discriminator layout ({e})") from None
    variables = map_state_dict(sd, abstract, _discriminator_module_key)
    return cfg, variables


def _resnet_module_key(name: str) -> str:
    """`layer3_0` -> `layer3.0`; stem names are unchanged."""
    return name.replace("_", ".")


def convert_resnet50dilated(sd: StateDict) -> Variables:
    """Variables of the ADE20K ResNet50-dilated encoder (the HRF perceptual loss backbone)
    from `encoder_epoch_20.pth` or a LaMa training checkpoint (`loss_resnet_pl.impl.*`)."""
    for prefix in ("loss_resnet_pl.impl.", "module."):
        if any(k.startswith(prefix) for k in sd):
            sd = _strip(sd, prefix)
    return map_state_dict(sd, abstract_variables(ResNet50Dilated(), (1, 64, 64, 3)),
                          _resnet_module_key)


def convert_fid_inception(sd: StateDict) -> Variables:
    """Variables of pytorch-fid's FID Inception from `pt_inception-2015-12-05-6726825d.pth`
    (its unused 1008-way classifier `fc` is dropped)."""
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    return map_state_dict(sd, abstract_variables(FIDInceptionV3(), (1, 299, 299, 3)), str)


_LPIPS_HEAD = re.compile(r"lins?\.?(\d)\.model\.1\.weight")


def convert_lpips(sd: StateDict, heads: Optional[StateDict] = None) -> Variables:
    """Variables of LPIPS v0.1 (VGG16) from torchvision's `vgg16` weights (`features.N.*`, or
    `N.*` for `vgg16().features` alone; the classifier is dropped) and the learned linear
    heads (`lin{k}.model.1.weight` or `lins.{k}.model.1.weight`), taken from `sd` when it
    holds them and from `heads` otherwise."""
    renamed: StateDict = {}
    for key, value in [*(heads or {}).items(), *sd.items()]:  # `sd`'s heads come last and win
        head = _LPIPS_HEAD.fullmatch(key)
        if head:
            renamed[f"lin{head.group(1)}.weight"] = value
        elif not key.startswith("classifier."):
            renamed["vgg.conv" + key.removeprefix("features.")] = value
    probe = (1, 32, 32, 3)
    return map_state_dict(renamed, abstract_variables(LPIPS(), probe, probe), str)


def convert_file(path: str, convert: Callable[[StateDict], Variables], what: str) -> Variables:
    """`convert` applied to the state dict stored in `path`, which should hold `what`; every
    error names the file."""
    sd = load_state_dict(path)
    try:
        return convert(sd)
    except ConversionError as e:
        raise ConversionError(f"{path}: does not hold {what} ({e})") from None


def convert_checkpoint(path: str, max_expansion: float = MAX_EXPANSION) -> Model:
    """Reads an official checkpoint or state dict and converts what it holds."""
    sd = load_state_dict(path, max_expansion)
    if any(k.startswith("generator.") for k in sd):
        gen_sd, disc_sd = _strip(sd, "generator."), _strip(sd, "discriminator.")
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
    g = model.generator_config
    print(f"wrote {args.output}: generator ngf={g.ngf} n_downsampling={g.n_downsampling} "
          f"n_blocks={g.n_blocks} global_ratio={g.global_ratio} lfu={g.enable_lfu}"
          + (f"; discriminator ndf={model.discriminator_config.ndf}"
             if model.discriminator_config else "; no discriminator"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
