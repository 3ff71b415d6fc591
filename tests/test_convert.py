import json

import numpy as np
import pytest

from lama_jax import convert
from lama_jax.convert import (ConversionError, convert_checkpoint, convert_discriminator,
                              convert_generator)
from lama_jax.model_dir import MANIFEST, load_model
from lama_jax.models.discriminator import DiscriminatorConfig
from lama_jax.models.generator import BIG_LAMA, LAMA_DILATED, LAMA_FOURIER
from tests.helpers import state_dict_from_key_table


@pytest.mark.parametrize("table,expected", [("big_lama_generator_keys.tsv", BIG_LAMA),
                                            ("lama_fourier_generator_keys.tsv", LAMA_FOURIER),
                                            ("dilated_generator_keys.tsv", LAMA_DILATED)])
def test_released_architectures_are_inferred(reference, table, expected):
    cfg, variables = convert_generator(state_dict_from_key_table(reference / table))
    assert cfg == expected
    assert "batch_stats" in variables


def test_discriminator_architecture_is_inferred(reference):
    cfg, _ = convert_discriminator(state_dict_from_key_table(reference / "discriminator_keys.tsv"))
    assert cfg == DiscriminatorConfig()


def test_bad_keys_fail_with_one_message_listing_them(load_npz):
    sd = load_npz("tiny_generator_state.npz")
    del sd["model.2.bn_l.running_mean"]
    sd["model.3.ffc.convl2l.weight"] = np.zeros((64, 32, 5, 5), np.float32)
    sd["model.99.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(ConversionError) as err:
        convert_generator(sd)
    message = str(err.value)
    assert "\n" not in message
    assert "missing: model.2.bn_l.running_mean" in message
    assert "unexpected: model.99.extra.weight" in message
    assert "misshapen: model.3.ffc.convl2l.weight (64, 32, 5, 5)" in message


def test_bare_state_dicts_with_and_without_prefix(tmp_path, load_npz):
    sd = load_npz("tiny_generator_state.npz")
    np.savez(tmp_path / "bare.npz", **sd)
    np.savez(tmp_path / "prefixed.npz", **{f"generator.{k}": v for k, v in sd.items()})
    a, b = convert_checkpoint(str(tmp_path / "bare.npz")), convert_checkpoint(str(tmp_path / "prefixed.npz"))
    assert a.generator_config == b.generator_config and a.discriminator_config is None
    np.testing.assert_array_equal(a.generator_variables["params"]["stem"]["ffc"]["convl2l"]["kernel"],
                                  sd["model.1.ffc.convl2l.weight"].transpose(2, 3, 1, 0))


def test_cli_converts_lightning_checkpoint(reference, tmp_path, capsys):
    out = tmp_path / "model"
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out)]) == 0
    model = load_model(str(out))
    assert model.generator_config.ngf == 16 and model.generator_config.n_blocks == 2
    assert model.discriminator_config == DiscriminatorConfig(ndf=16)
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["generator"]["global_ratio"] == 0.75
    # A second run does not replace it unless asked; --overwrite does.
    before = (out / "generator.msgpack").stat().st_mtime_ns
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out)]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (out / "generator.msgpack").stat().st_mtime_ns == before
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out),
                         "--overwrite"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary leftovers


def test_cli_never_replaces_a_folder_that_is_not_a_model(reference, tmp_path, capsys):
    precious = tmp_path / "photos"
    precious.mkdir()
    (precious / "holiday.jpg").write_bytes(b"mine")
    code = convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"),
                         "--output", str(precious), "--overwrite"])
    assert code == 1
    assert "not a lama_jax model directory" in capsys.readouterr().err
    assert (precious / "holiday.jpg").read_bytes() == b"mine"


def test_cli_reports_bad_checkpoint_on_one_line(tmp_path, capsys):
    bad = tmp_path / "broken.ckpt"
    bad.write_bytes(b"\x00" * 10)
    assert convert.main(["--checkpoint", str(bad), "--output", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "broken.ckpt" in err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("damage,message", [
    (lambda sd: sd.pop("model.5.conv1.ffc.convl2l.weight"),
     "missing model.5.conv1.ffc.convl2l.weight, which the architecture is read from"),
    (lambda sd: sd.update({"model.1.ffc.convl2l.weight": np.zeros(16, np.float32)}),
     r"model.1.ffc.convl2l.weight has shape \(16,\); a 4-D weight was expected"),
    (lambda sd: sd.update({"model.8.weight": np.zeros((16, 32), np.float32)}),
     r"misshapen: model.8.weight \(16, 32\)"),  # a 2-D tensor where a conv weight belongs
    (lambda sd: sd.update({"model.5.conv1.ffc.convl2g.weight": np.zeros((1, 1, 3, 3), np.float32)}),
     "generator"),  # a global ratio that no layout has
])
def test_damaged_generators_fail_on_one_line(tmp_path, load_npz, capsys, damage, message):
    sd = load_npz("tiny_generator_state.npz")
    damage(sd)
    np.savez(tmp_path / "damaged.npz", **sd)
    assert convert.main(["--checkpoint", str(tmp_path / "damaged.npz"),
                         "--output", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "damaged.npz" in err and "Traceback" not in err, err
    assert __import__("re").search(message, err), err


def test_a_wrong_architecture_message_fits_on_a_screen(tmp_path, load_npz):
    sd = load_npz("tiny_generator_state.npz")
    wrong = {k: (np.zeros((*v.shape[:-1], v.shape[-1] + 1), v.dtype) if v.ndim == 4 else v)
             for k, v in sd.items()}  # every convolution misshapen
    with pytest.raises(ConversionError) as err:
        convert_generator(wrong)
    assert len(str(err.value)) < 80 * 25 and "and " in str(err.value)


def test_convert_never_deletes_its_source_or_foreign_files(reference, tmp_path, capsys):
    out = tmp_path / "model"
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out)]) == 0
    inside = out / "best.ckpt"
    inside.write_bytes((reference / "tiny_best.ckpt").read_bytes())
    assert convert.main(["--checkpoint", str(inside), "--output", str(out), "--overwrite"]) == 1
    assert "the checkpoint is inside the output folder" in capsys.readouterr().err
    # Converting another file over a model directory that holds something else is refused too.
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out),
                         "--overwrite"]) == 1
    assert "also holds best.ckpt" in capsys.readouterr().err
    assert inside.read_bytes() == (reference / "tiny_best.ckpt").read_bytes()
