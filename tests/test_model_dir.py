import json

import jax
import numpy as np
import pytest

from lama_jax import convert, predict
from lama_jax.model_dir import FORMAT, MANIFEST, Model, ModelDirError, load_model, save_model
from lama_jax.models.generator import LAMA_REGULAR, build_generator
from lama_jax.models.variables import abstract_variables


@pytest.fixture()
def model_dir(reference, tmp_path):
    out = tmp_path / "model"
    assert convert.main(["--checkpoint", str(reference / "tiny_best.ckpt"), "--output", str(out)]) == 0
    return out


@pytest.mark.parametrize("edit,message", [
    (lambda m: [m], "holds a JSON list, not the manifest object"),
    (lambda m: {**m, "generator": 3}, "'generator' must be an object"),
    (lambda m: {**m, "generator": {**m["generator"], "ngff": 16}}, "did you mean 'ngf'"),
    (lambda m: {**m, "generator": {**m["generator"], "ngf": "16"}}, "ngf must be int, got '16'"),
    (lambda m: {**m, "discriminator": {**m["discriminator"], "n_layers": 2.5}},
     "n_layers must be int"),
    (lambda m: {**m, "metadata": []}, "'metadata' must be an object"),
])
def test_manifests_of_the_wrong_shape_are_one_line(model_dir, tmp_path, capsys, edit, message):
    path = model_dir / MANIFEST
    manifest = json.loads(path.read_text())
    assert manifest["format"] == FORMAT
    path.write_text(json.dumps(edit(manifest)))
    with pytest.raises(ModelDirError, match=message):
        load_model(str(model_dir))
    (tmp_path / "a.png").write_bytes(b"")  # never read: the model fails first
    assert predict.main(["--model", str(model_dir), "--input", str(tmp_path / "a.png"),
                         "--mask", str(tmp_path / "a.png"), "--output", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and MANIFEST in err and message.split("'")[0] in err


def test_model_directories_written_before_the_kinds_had_their_own_configs_load(tmp_path):
    # A LaMa-Regular manifest as the single GeneratorConfig wrote it, Fourier settings off.
    abstract = abstract_variables(build_generator(LAMA_REGULAR), (1, 64, 64, 4))
    variables = jax.tree.map(lambda a: np.zeros(a.shape, a.dtype), abstract)
    save_model(str(tmp_path / "m"), Model(LAMA_REGULAR, variables))
    path = tmp_path / "m" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["generator"].update(global_ratio=0.0, enable_lfu=False)
    path.write_text(json.dumps(manifest))
    assert load_model(str(tmp_path / "m")).generator_config == LAMA_REGULAR
