"""Device mesh, shardings, and host batches as global arrays.

The mesh has axes ("data", "fsdp"). Batches are split over both axes. Every parameter,
BatchNorm statistic and optimizer leaf is sharded over "fsdp" along its largest dimension that
"fsdp" divides, else replicated; scalars are replicated.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from lama_jax.errors import ConfigError

BATCH_AXES = ("data", "fsdp")


def make_mesh(data: int = -1, fsdp: int = 1, devices: Optional[Sequence[jax.Device]] = None) -> Mesh:
    """A ("data", "fsdp") mesh over `devices` (default: all); one size may be -1 ("the rest")."""
    devices = list(devices if devices is not None else jax.devices())
    n = len(devices)
    if data == -1 and fsdp == -1:
        raise ConfigError("at most one of mesh.data and mesh.fsdp may be -1")
    if data == -1:
        data = n // fsdp
    if fsdp == -1:
        fsdp = n // data
    if data * fsdp != n:
        raise ConfigError(f"mesh {data}x{fsdp} does not use the {n} available devices; set "
                         f"--config.mesh.data and --config.mesh.fsdp so that their product is {n}")
    return jax.make_mesh((data, fsdp), BATCH_AXES, devices=devices,
                         axis_types=(jax.sharding.AxisType.Auto,) * 2)


def leaf_spec(shape: Sequence[int], fsdp_size: int) -> P:
    """Shard the largest dimension divisible by the fsdp size over "fsdp"."""
    if fsdp_size > 1:
        for dim in sorted(range(len(shape)), key=lambda d: -shape[d]):
            if shape[dim] % fsdp_size == 0 and shape[dim] >= fsdp_size:
                spec = [None] * len(shape)
                spec[dim] = "fsdp"
                return P(*spec)
    return P()


def state_shardings(mesh: Mesh, abstract_tree: Any) -> Any:
    """NamedShardings for every leaf of a (abstract) state tree."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, leaf_spec(x.shape, fsdp)), abstract_tree)


def replicated(mesh: Mesh) -> NamedSharding:
    """A sharding that keeps a full copy on every device."""
    return NamedSharding(mesh, P())


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Leading (batch) axis split over both mesh axes."""
    return NamedSharding(mesh, P(BATCH_AXES))


def with_shardings(abstract_tree: Any, shardings: Any) -> Any:
    """ShapeDtypeStructs that carry their target sharding (for sharded restore)."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        abstract_tree, shardings)


def global_batch(host_batch: Dict[str, np.ndarray], mesh: Mesh) -> Dict[str, jax.Array]:
    """This host's slice of the global batch -> global arrays sharded over the mesh."""
    sharding = batch_sharding(mesh)
    return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v))
            for k, v in host_batch.items()}
