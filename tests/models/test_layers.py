"""Shared layers: the kernel initialiser."""

import flax.linen as nn
import jax
import numpy as np
import pytest

from lama_jax.models.layers import lecun_normal_kernel


@pytest.mark.parametrize("shape", [(3, 3, 5, 7), (1, 1, 12, 6), (4, 4, 3, 8), (7, 7, 4, 64),
                                   (6, 2)])
def test_kernels_are_flax_lecun_normal_to_the_bit(shape):
    key = jax.random.key(7)
    ours = lecun_normal_kernel(key, shape)
    assert ours.shape == shape and ours.dtype == np.float32
    np.testing.assert_array_equal(ours, nn.initializers.lecun_normal()(key, shape))
    # Not a constant draw: the fan-in sets the spread.
    assert 0.5 < float(np.std(ours)) * np.sqrt(np.prod(shape[:-1])) < 1.5
