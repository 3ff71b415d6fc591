import numpy as np
import pytest

from lama_jax import Inpainter
from lama_jax.convert import convert_generator
from lama_jax.inpaint import pad_to_modulo
from lama_jax.xla_flags import NO_YNNPACK


@pytest.fixture(scope="module")
def tiny_inpainter(load_npz):
    return Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")))


def test_matches_official_predict_on_250x300(tiny_inpainter, load_npz):
    io = load_npz("tiny_io_250x300.npz")
    out = tiny_inpainter(io["image"], io["mask"])
    assert out.shape == (250, 300, 3) and out.dtype == np.float32
    err = float(np.abs(out - io["inpainted"]).max())
    assert err <= 1e-4, err


def test_dft_impl_matches_official(load_npz):
    io = load_npz("tiny_io_60x90_stages.npz")
    inpainter = Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")),
                          spectral_impl="dft")
    np.testing.assert_allclose(inpainter(io["image"], io["mask"]), io["inpainted"], atol=1e-4)


def test_compiler_options_keep_the_outputs(load_npz):
    # Eigen's matrix products (YNNPACK off, the choice on x86 CPUs without AVX-512) and XLA's
    # defaults give the same inpainting to float32 rounding.
    io = load_npz("tiny_io_250x300.npz")
    outputs = []
    for options in ({}, NO_YNNPACK):
        inpainter = Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")),
                              conv_impl="cpu", compiler_options=options)
        assert inpainter.compiler_options == options
        outputs.append(inpainter(io["image"], io["mask"]))
        assert float(np.abs(outputs[-1] - io["inpainted"]).max()) <= 1e-4
    np.testing.assert_allclose(outputs[0], outputs[1], atol=1e-5)


def test_unknown_compiler_options_are_a_clear_error(load_npz):
    with pytest.raises(ValueError, match="compiler_options .*xla_cpu_no_such_option"):
        Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")),
                  compiler_options={"xla_cpu_no_such_option": "1"})


def test_uint8_input_and_nonbinary_mask(tiny_inpainter, load_npz):
    io = load_npz("tiny_io_60x90_stages.npz")
    image8 = (io["image"] * 255).round().astype(np.uint8)
    out8 = tiny_inpainter(image8, (io["mask"] * 200).astype(np.uint8))  # non-zero = hole
    outf = tiny_inpainter(image8.astype(np.float32) / 255, io["mask"])
    np.testing.assert_allclose(out8, outf, atol=1e-6)
    known = io["mask"] == 0
    np.testing.assert_allclose(out8[known], image8[known] / 255, atol=1e-6)


def test_compiled_once_per_padded_shape(load_npz):
    inpainter = Inpainter(*convert_generator(load_npz("tiny_generator_state.npz")))
    rng = np.random.default_rng(0)
    for h, w in [(57, 90), (60, 89), (64, 96)]:  # all pad to 64x96
        inpainter(rng.random((h, w, 3), dtype=np.float32), rng.random((h, w)) > 0.5)
    assert inpainter._apply._cache_size() == 1
    inpainter(rng.random((30, 30, 3), dtype=np.float32), rng.random((30, 30)) > 0.5)
    assert inpainter._apply._cache_size() == 2


def test_bad_shapes_are_clear_errors(tiny_inpainter):
    with pytest.raises(ValueError, match="mask shape"):
        tiny_inpainter(np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9)))
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        tiny_inpainter(np.zeros((8, 8), np.uint8), np.zeros((8, 8)))


def test_pad_to_modulo_is_symmetric():
    x = np.arange(6).reshape(2, 3)
    np.testing.assert_array_equal(pad_to_modulo(x, 4), np.pad(x, ((0, 2), (0, 1)), "symmetric"))
