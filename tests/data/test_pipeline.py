import logging

import numpy as np
import pytest
from PIL import Image

from lama_jax.data.masks import TRAIN_PRESET, preset
from lama_jax.data.pipeline import DecodedShard, eval_dataset, train_dataset
from lama_jax.data.sources import ImageFolder, decode_rgb8, make_source, sample_photos
from lama_jax.images import ImageError

CROP = 64  # the training preset's boxes need at least 2 * margin + 30 px


def _take(ds, n, state=None):
    it = iter(ds)
    if state is not None:
        it.set_state(state)
    return [next(it) for _ in range(n)], it.get_state()


def _train(source, **kw):
    args = dict(crop_size=CROP, batch_size=4, seed=3, masks=preset(TRAIN_PRESET))
    args.update(kw)
    return train_dataset(source, **args)


def _equal(a, b):
    return all(np.array_equal(x[k], y[k]) for x, y in zip(a, b) for k in ("image", "mask"))


def test_batches_are_float_and_shaped():
    (batch,), _ = _take(_train(sample_photos()), 1)
    assert batch["image"].shape == (4, CROP, CROP, 3) and batch["image"].dtype == np.float32
    assert batch["mask"].shape == (4, CROP, CROP, 1) and set(np.unique(batch["mask"])) <= {0.0, 1.0}
    assert 0 <= batch["image"].min() and batch["image"].max() <= 1


def test_deterministic_and_independent_of_worker_count():
    a, _ = _take(_train(sample_photos(), worker_count=0), 4)
    b, _ = _take(_train(sample_photos(), worker_count=0), 4)
    c, _ = _take(_train(sample_photos(), worker_count=2), 4)
    assert _equal(a, b) and _equal(a, c)
    d, _ = _take(_train(sample_photos(), seed=4), 4)
    assert not _equal(a, d)


@pytest.mark.parametrize("workers", [0, 2])
def test_resume_from_iterator_state_continues_exactly(workers):
    straight, _ = _take(_train(sample_photos(), worker_count=workers), 8)  # crosses an epoch
    _, state = _take(_train(sample_photos(), worker_count=workers), 3)
    resumed, _ = _take(_train(sample_photos(), worker_count=workers), 5, state)
    assert _equal(straight[3:], resumed)


def _constant_source(n):
    return [{"image": np.full((70, 70, 3), i, np.uint8), "name": f"r{i}"} for i in range(n)]


def test_two_processes_read_disjoint_shards():
    seen = []
    for index in range(2):
        batches, _ = _take(_train(_constant_source(10), shard_index=index, shard_count=2,
                                  batch_size=5), 2)
        seen.append({int(round(v * 255)) for b in batches for v in b["image"][:, 0, 0, 0]})
    assert seen[0] == {0, 2, 4, 6, 8} and seen[1] == {1, 3, 5, 7, 9}


def _write_bad_folder(root):
    root.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)).save(root / "rgb.jpg")
    Image.fromarray(rng.integers(0, 256, (50, 60), dtype=np.uint8)).save(root / "gray.png")
    Image.fromarray(rng.integers(0, 256, (50, 60, 4), dtype=np.uint8)).save(root / "rgba.png")
    Image.fromarray(rng.integers(0, 256, (50, 60, 3), dtype=np.uint8)).convert("P").save(root / "pal.png")
    Image.fromarray(rng.integers(0, 65536, (50, 60), dtype=np.uint16)).save(root / "deep.png")
    (root / "sub").mkdir()
    Image.fromarray(rng.integers(0, 256, (12, 20, 3), dtype=np.uint8)).save(root / "sub" / "tiny.webp")
    (root / "corrupt.jpg").write_bytes(b"\xff\xd8\xff garbage")
    (root / "notes.txt").write_text("not an image")


def test_bad_and_unusual_files(tmp_path, caplog):
    _write_bad_folder(tmp_path / "photos")
    source = ImageFolder(str(tmp_path / "photos"))
    assert len(source) == 7  # the .txt is not listed
    for record in source:
        if "corrupt" not in record["path"]:
            image = decode_rgb8(record)
            assert image.ndim == 3 and image.shape[-1] == 3 and image.dtype == np.uint8
    with caplog.at_level(logging.WARNING):
        batches, _ = _take(_train(source, batch_size=7), 3)
    assert sum(int(b["skipped"].sum()) for b in batches) == 3  # once per epoch
    assert any("corrupt.jpg" in r.getMessage() for r in caplog.records)
    assert all(b["image"].shape == (7, CROP, CROP, 3) for b in batches)  # tiny.webp upscaled


def test_source_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such folder"):
        make_source(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(ValueError, match="no .* images"):
        make_source(f"folder:{tmp_path}")
    with pytest.raises(ValueError, match="unknown data source"):
        make_source("s3://bucket")
    with pytest.raises(ValueError, match="empty"):
        DecodedShard(_constant_source(1), shard_index=1, shard_count=2)


def test_eval_set_is_fixed():
    ds = eval_dataset(sample_photos(), size=CROP, batch_size=4, masks=preset("random_thick_256"),
                      num_records=6)
    first, second = list(ds), list(ds)
    assert [b["image"].shape[0] for b in first] == [4, 2]
    assert _equal(first, second)


def test_a_source_with_no_decodable_record_fails_first_and_once(tmp_path, caplog):
    for i in range(20):
        (tmp_path / f"p{i:02d}.jpg").write_bytes(b"not a photo")
    with caplog.at_level(logging.WARNING), pytest.raises(ImageError) as error:
        train_dataset(ImageFolder(str(tmp_path)), crop_size=32, batch_size=2, seed=0,
                      masks=preset(TRAIN_PRESET))
    assert str(error.value).startswith("none of the 20 records of shard 0 of 1 can be decoded "
                                       f"(the first: {tmp_path / 'p00.jpg'}: cannot decode")
    assert "skipping" not in caplog.text  # no warning per file before the error
