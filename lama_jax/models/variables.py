"""Variable pytrees of our modules: abstract shapes, parameter counts and structure checks."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

Variables = Dict[str, Any]  # {"params": ..., "batch_stats": ...}


def abstract_variables(module: nn.Module, *input_shapes: Sequence[int]) -> Variables:
    """ShapeDtypeStructs of `module.init` (in its default, eval mode) on float32 inputs of
    `input_shapes`, without compiling."""
    inputs = [jax.ShapeDtypeStruct(tuple(shape), jnp.float32) for shape in input_shapes]
    return jax.eval_shape(lambda *xs: module.init(jax.random.key(0), *xs), *inputs)


def param_count(variables: Variables) -> int:
    """Number of trainable scalars (the `params` collection only, as PyTorch counts them)."""
    return int(sum(np.prod(leaf.shape) for leaf in jax.tree.leaves(variables["params"])))


def flat_paths(tree: Any) -> Dict[Tuple[str, ...], Any]:
    """`{("params", "stem", "ffc", "convl2l", "kernel"): leaf, ...}` for a nested dict tree."""
    flat, _ = jax.tree_util.tree_flatten_with_path(tree)
    return {tuple(str(k.key) for k in path): leaf for path, leaf in flat}


def mismatches(expected: Any, actual: Any) -> List[str]:
    """Human-readable differences in keys and shapes between two variable trees."""
    want, got = flat_paths(expected), flat_paths(actual)
    problems = [f"missing {'/'.join(p)}" for p in want if p not in got]
    problems += [f"unexpected {'/'.join(p)}" for p in got if p not in want]
    problems += [f"{'/'.join(p)} has shape {tuple(np.shape(got[p]))}, expected "
                 f"{tuple(want[p].shape)}" for p in want
                 if p in got and tuple(np.shape(got[p])) != tuple(want[p].shape)]
    return problems
