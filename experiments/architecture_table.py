"""The architecture side of the paper's Table 2 (Fourier vs regular convolutions, depth).

    python experiments/architecture_table.py

For each generator of Table 2, prints its parameter count (from
`jax.eval_shape`, nothing compiled) and the XLA cost-analysis FLOPs of one 256 px and one
512 px inference pass (compiled, not run), beside the paper's parameter count and its Places
FID / LPIPS with narrow and wide masks. The quality columns come from the paper: reproducing
them means training each row (`configs/lama_fourier.py`, `configs/lama_regular.py` with the
block counts below, the Dilated generator `pix2pixhd_multidilated`) and scoring it with
`python -m lama_jax.evaluate`.
"""

from __future__ import annotations

import dataclasses

import jax
import numpy as np

from lama_jax.model_dir import generator_abstract_variables
from lama_jax.models.generator import (LAMA_DILATED, LAMA_FOURIER, LAMA_REGULAR, GeneratorConfig,
                                       build_generator)
from lama_jax.models.variables import param_count
from xla_cost import compiled_flops  # experiments/xla_cost.py

# (row, generator, paper: params in millions, narrow FID / LPIPS, wide FID / LPIPS)
ROWS = [
    ("Base, Fourier", LAMA_FOURIER, "27", "0.63 / 0.090", "2.21 / 0.135"),
    ("Base, Dilated", LAMA_DILATED, "46", "0.66 / 0.089", "2.30 / 0.136"),
    ("Base, Regular", LAMA_REGULAR, "46", "0.60 / 0.089", "3.51 / 0.139"),
    ("Shallow, Fourier (6 blocks)", dataclasses.replace(LAMA_FOURIER, n_blocks=6), "19",
     "0.72 / 0.094", "2.31 / 0.138"),
    ("Deep, Regular (15 blocks)", dataclasses.replace(LAMA_REGULAR, n_blocks=15), "74",
     "0.63 / 0.090", "2.62 / 0.137"),
]


def inference_gflops(config: GeneratorConfig, size: int) -> float:
    """XLA's FLOP count of one eval-mode generator pass on a size x size image."""
    variables = generator_abstract_variables(config)
    x = jax.ShapeDtypeStruct((1, size, size, config.input_nc), np.float32)
    return compiled_flops(jax.jit(build_generator(config).apply).lower(variables, x).compile()) / 1e9


def main() -> None:
    """Prints the table."""
    print("| model | params (ours) | params (paper, M) | GFLOP @256 | GFLOP @512 "
          "| paper narrow FID / LPIPS | paper wide FID / LPIPS |")
    print("|---|---:|---:|---:|---:|---|---|")
    for name, config, paper_params, narrow, wide in ROWS:
        params = param_count(generator_abstract_variables(config))
        flops = [inference_gflops(config, size) for size in (256, 512)]
        print(f"| {name} | {params:,} | {paper_params} | {flops[0]:.0f} | {flops[1]:.0f} "
              f"| {narrow} | {wide} |", flush=True)


if __name__ == "__main__":
    main()
