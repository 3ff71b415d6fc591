import numpy as np
import pytest

from lama_jax.weights import convert_lpips
from lama_jax.metrics.lpips import default_heads, lpips


def test_lpips_matches_the_official_vgg_metric(load_npz, lpips_variables):
    io = load_npz("lpips_vgg_io.npz")
    np.testing.assert_allclose(lpips(lpips_variables, io["image0"], io["image1"]), io["lpips"],
                               atol=1e-5)
    assert float(lpips(lpips_variables, io["image0"], io["image0"])[0]) == pytest.approx(0.0, abs=1e-7)


def test_shipped_heads_are_the_official_v01_vgg_heads(load_npz):
    io = load_npz("lpips_vgg_io.npz")
    heads = default_heads()
    assert sorted(heads) == [f"lin{k}.model.1.weight" for k in range(5)]
    for k in range(5):
        np.testing.assert_array_equal(heads[f"lin{k}.model.1.weight"],
                                      io[f"linear_heads/lin{k}.model.1.weight"])


def test_heads_in_the_weights_file_take_precedence(load_npz, vgg16_state_dict):
    # torchvision's full vgg16 file (features + classifier) plus heads named as the lpips
    # package names them (`lins.k`): doubled heads double the distance.
    io = load_npz("lpips_vgg_io.npz")
    sd = {f"features.{k}": v for k, v in vgg16_state_dict.items()}
    sd["classifier.0.weight"] = np.zeros((4, 25088), np.float32)
    sd.update({f"lins.{k}.model.1.weight": 2 * v
               for k, v in enumerate(default_heads().values())})
    doubled = convert_lpips(sd, default_heads())
    np.testing.assert_allclose(lpips(doubled, io["image0"], io["image1"]), 2 * io["lpips"],
                               atol=2e-5)
