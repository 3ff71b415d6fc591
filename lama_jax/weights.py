"""Official PyTorch weights onto our variable trees: the generic key and shape mapping, and
the readers of the backbones' weights (the HRF loss's CSAIL ResNet50, pytorch-fid's
Inception, LPIPS's VGG16, torchvision's VGG16 and VGG19 for the other perceptual losses).

    variables = convert_file("encoder_epoch_20.pth", convert_resnet50_encoder, "the ADE20K encoder")

Files are read by `lama_jax.state_dict` (no pickled code runs); every error names the file.
`lama_jax.convert` uses `map_state_dict` for LaMa's generators and discriminator.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

from lama_jax.metrics.lpips import LPIPS
from lama_jax.models.backbones import FIDInceptionV3, ResNet50Encoder, VGGFeatures
from lama_jax.models.official import ConversionError
from lama_jax.models.variables import Variables, abstract_variables, flat_paths
from lama_jax.state_dict import StateDict, load_state_dict

# Our leaf names -> PyTorch's, per collection.
_LEAVES = {("params", "kernel"): "weight", ("params", "bias"): "bias",
           ("params", "scale"): "weight", ("batch_stats", "mean"): "running_mean",
           ("batch_stats", "var"): "running_var"}
# The ADE20K ResNet's shortcut is an nn.Sequential (conv, BN).
_RESNET_REWRITES = ((".downsample_conv.", ".downsample.0."), (".downsample_bn.", ".downsample.1."))
_IGNORED_SUFFIX = ".num_batches_tracked"



def strip_prefix(state: StateDict, prefix: str) -> StateDict:
    """The entries of `state` whose key starts with `prefix`, without it."""
    return {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}


def _torch_layout(ours: Tuple[int, ...], theirs: np.ndarray) -> np.ndarray:
    """PyTorch OIHW conv weights (and (in, out, kh, kw) transposed-conv weights) -> HWIO."""
    return np.transpose(theirs, (2, 3, 1, 0)) if len(ours) == 4 else theirs


def _listing(label: str, keys: List[str], limit: int = 8) -> str:
    more = f", ... and {len(keys) - limit} more" if len(keys) > limit else ""
    return f"{label}: {', '.join(keys[:limit])}{more}"


def map_state_dict(sd: StateDict, abstract: Variables, module_key: Callable[[str], str],
                   rewrites: Tuple[Tuple[str, str], ...] = ()) -> Variables:
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


def _resnet_module_key(name: str) -> str:
    """`layer3_0` -> `layer3.0`; stem names are unchanged."""
    return name.replace("_", ".")


def convert_resnet50_encoder(sd: StateDict, dilated: bool = True) -> Variables:
    """Variables of CSAIL's ResNet50 encoder (`ResNet50Encoder(dilated)`; the weights do not
    depend on the dilation) from the ADE20K `encoder_epoch_20.pth`, CSAIL's ImageNet
    `resnet50-imagenet.pth` (its classifier `fc` is dropped) or a LaMa training checkpoint
    (`loss_resnet_pl.impl.*`)."""
    for prefix in ("loss_resnet_pl.impl.", "module."):
        if any(k.startswith(prefix) for k in sd):
            sd = strip_prefix(sd, prefix)
    sd = {k: v for k, v in sd.items() if not k.startswith("fc.")}
    return map_state_dict(sd, abstract_variables(ResNet50Encoder(dilated), (1, 64, 64, 3)),
                          _resnet_module_key, _RESNET_REWRITES)


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
            renamed["vgg." + _vgg_key(key)] = value
    probe = (1, 32, 32, 3)
    return map_state_dict(renamed, abstract_variables(LPIPS(), probe, probe), str)


def _vgg_key(key: str) -> str:
    """torchvision's `features.N.weight` (or `N.weight`) -> our `convN.weight`."""
    return "conv" + key.removeprefix("features.")


def convert_vgg(sd: StateDict, module: VGGFeatures) -> Variables:
    """Variables of `module` (a `VGGFeatures` stack) from torchvision's ImageNet VGG weights
    (`vgg16-397923af.pth`, `vgg19-dcbb9e9d.pth`: `features.N.*`); the classifier and the convs
    after the module's last are dropped."""
    last = module.stages[-1][-1]
    index = lambda key: re.match(r"(?:features\.)?(\d+)\.", key)  # noqa: E731
    kept = {_vgg_key(k): v for k, v in sd.items() if not k.startswith("classifier.")
            and not (index(k) and int(index(k).group(1)) > last)}  # others: named as unexpected
    return map_state_dict(kept, abstract_variables(module, (1, 32, 32, 3)), str)


def convert_file(path: str, convert: Callable[[StateDict], Variables], what: str) -> Variables:
    """`convert` applied to the state dict stored in `path`, which should hold `what`; every
    error names the file."""
    sd = load_state_dict(path)
    try:
        return convert(sd)
    except ConversionError as e:
        raise ConversionError(f"{path}: does not hold {what} ({e})") from None


