import numpy as np
import pytest

from lama_jax.models.official import ConversionError
from lama_jax.weights import convert_fid_inception
from lama_jax.metrics.fid import bilinear_matrix, frechet_distance, pool3_features
from lama_jax.models.variables import param_count


def test_inception_has_pytorch_fids_parameters_without_the_classifier(inception_state_dict,
                                                                     inception_variables):
    fc = sum(v.size for k, v in inception_state_dict.items() if k.startswith("fc."))
    assert fc == 2048 * 1008 + 1008
    assert param_count(inception_variables) == 23_850_960 - fc


@pytest.mark.parametrize("images, features", [("images", "pool3_features"),
                                              ("images_large", "pool3_features_large")])
def test_pool3_features_match_pytorch_fid(load_npz, inception_variables, images, features):
    io = load_npz("fid_io.npz")  # 80x96 (resized up to 299) and 320x360 (resized down)
    out = np.asarray(pool3_features(inception_variables, io[images]))
    ref = io[features]
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


def test_bilinear_matrix_is_pytorchs_align_corners_false():
    # Up 2 -> 4: sources at -0.25 (clamped to 0), 0.25, 0.75, 1.25.
    np.testing.assert_allclose(bilinear_matrix(4, 2),
                               [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]])
    # Down 4 -> 2 (no antialiasing): sources at 0.5 and 2.5.
    np.testing.assert_allclose(bilinear_matrix(2, 4), [[0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5]])
    np.testing.assert_array_equal(bilinear_matrix(5, 5), np.eye(5))


def test_frechet_distance_matches_pytorch_fid(load_npz):
    io = load_npz("fid_io.npz")
    assert frechet_distance(io["set_a"], io["set_b"]) == pytest.approx(
        float(io["frechet_distance"]), rel=1e-6)


def test_frechet_distance_of_shifted_set_is_squared_shift():
    x = np.random.default_rng(0).standard_normal((500, 6))
    shift = np.array([1.0, -2.0, 0, 0, 0.5, 0])
    assert frechet_distance(x, x) == pytest.approx(0.0, abs=1e-6)
    assert frechet_distance(x, x + shift) == pytest.approx(float(shift @ shift), rel=1e-6)


def test_inception_conversion_names_missing_keys(inception_state_dict):
    sd = dict(inception_state_dict)
    del sd["Mixed_7c.branch_pool.conv.weight"]
    with pytest.raises(ConversionError, match="missing: Mixed_7c.branch_pool.conv.weight"):
        convert_fid_inception(sd)
