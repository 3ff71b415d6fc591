import numpy as np
import pytest
from PIL import Image

from lama_jax.data import periodic
from lama_jax.data.masks import preset
from lama_jax.data.pipeline import train_dataset
from lama_jax.data.sources import make_source


def test_images_are_pure_functions_of_seed_and_index():
    source = periodic.PeriodicImages(10, size=64, seed=3)
    a, b = source[4]["image"], source[4]["image"]
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, source[5]["image"])
    assert not np.array_equal(a, periodic.PeriodicImages(10, size=64, seed=4)[4]["image"])
    with pytest.raises(IndexError):
        source[10]


@pytest.mark.parametrize("kind", periodic.KINDS)
def test_each_kind_renders_the_same_picture_at_any_size(kind):
    for i in range(5):
        small = periodic.periodic_image(np.random.default_rng([0, i]), 64, kind)
        large = periodic.periodic_image(np.random.default_rng([0, i]), 256, kind)
        down = np.asarray(Image.fromarray(large).resize((64, 64), Image.BOX), np.float32)
        assert np.abs(small.astype(np.float32) - down).mean() < 12, i  # the same, finer
        assert small.std() > 5  # a pattern, not a flat colour


def test_held_out_splits_and_the_pipeline():
    train, validation = make_source("periodic", "train"), make_source("periodic", "validation")
    assert not np.array_equal(train[0]["image"], validation[0]["image"])
    batch = next(iter(train_dataset(train, crop_size=64, batch_size=2, seed=0,
                                    masks=preset("abl-04-256-mh-dist"))))
    assert batch["image"].shape == (2, 64, 64, 3)
    with pytest.raises(ValueError, match="unknown split"):
        make_source("periodic", "dev")
    small = make_source("periodic:64", "validation")
    assert small[0]["image"].shape == (64, 64, 3) and len(small) == len(validation)
    for bad in ("periodic:big", "periodic:4"):
        with pytest.raises(ValueError, match="whole number of pixels"):
            make_source(bad, "train")
