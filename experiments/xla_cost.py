"""What XLA says a compiled program costs, for the experiment scripts beside this file."""

from __future__ import annotations


def compiled_flops(compiled) -> float:
    """XLA's cost-analysis FLOP count of a `jax.stages.Compiled` (NaN where it gives none)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost  # a list in older jaxlibs
    return float(cost.get("flops", float("nan"))) if cost else float("nan")
