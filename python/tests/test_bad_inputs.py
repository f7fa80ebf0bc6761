"""Inputs vvae cannot take get one clear TypeError or ValueError, never a crash."""

import numpy as np
import pytest
import vvae
from vvae import _vvae


def good(shape=(1, 3, 1, 16, 16)):
    return np.zeros(shape, dtype=np.float32)


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((1, 3, 1, 16, 16), dtype=np.float64), TypeError, "float32"),
        (np.zeros((1, 3, 1, 16, 16), dtype=np.int32), TypeError, "float32"),
        ([[0.0]], TypeError, "NumPy array or torch tensor"),
        ("x", TypeError, "NumPy array or torch tensor"),
        (np.zeros((3, 16, 16), dtype=np.float32), ValueError, "dimensions"),
        (np.zeros((1, 1, 3, 1, 16, 16), dtype=np.float32), ValueError, "dimensions"),
        (np.zeros((1, 16, 16, 1, 3), dtype=np.float32).transpose(0, 4, 3, 1, 2), ValueError,
         "contiguous"),
        (np.zeros((1, 3, 1, 16, 32), dtype=np.float32)[..., ::2], ValueError, "contiguous"),
        (good((1, 4, 1, 16, 16)), ValueError, "channels"),
        (good((1, 3, 1, 15, 16)), ValueError, "multiples of 2"),
        (good((1, 3, 1, 0, 16)), ValueError, "empty"),
    ],
)
def test_python_layer(ae2d, x, error, words):
    with pytest.raises(error, match=words):
        ae2d.encode_latent(x)


@pytest.mark.parametrize(
    "x, error, words",
    [
        (np.zeros((1, 3, 1, 16, 16), dtype=np.float64), TypeError, "float32"),
        (memoryview(np.zeros((1, 3, 1, 16, 16), dtype=np.float64)), TypeError, "float32"),
        (object(), TypeError, "NumPy array or torch tensor"),
        (np.zeros((3, 16, 16), dtype=np.float32), ValueError, "5 dimensions"),
        (np.zeros((1, 3, 1, 16, 32), dtype=np.float32)[..., ::2], ValueError, "C-contiguous"),
    ],
)
def test_the_engine_binding_checks_too(ae2d, x, error, words):
    # Past the Python layer: the C++ side refuses the same, for objects it sees first.
    with pytest.raises(error, match=words):
        ae2d._model("encode").encode(x)


def test_torch_inputs():
    torch = pytest.importorskip("torch")
    from conftest import GOLDEN

    vae = vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small")
    with pytest.raises(TypeError, match="float32"):
        vae.encode(torch.zeros(1, 3, 1, 16, 16, dtype=torch.float64))
    with pytest.raises(ValueError, match="contiguous"):
        vae.encode(torch.zeros(1, 3, 1, 16, 32)[..., ::2])
    with pytest.raises(ValueError, match="dimensions"):
        vae.encode(torch.zeros(16, 16))
    with pytest.raises(TypeError, match="float32"):
        vae._model("encode").encode(torch.zeros(1, 3, 1, 16, 16, dtype=torch.float16))


def test_non_finite_values(ae2d):
    x = good()
    x[0, 0, 0, 3, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ae2d.encode_latent(x)
    z = np.zeros((1, 4, 1, 8, 8), dtype=np.float32)
    z[0, 0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or infinite"):
        ae2d.decode(z)


def test_shape_rules_of_the_causal_family(hunyuan):
    with pytest.raises(ValueError, match="1 \\+ 4k frames"):
        hunyuan.encode(good((1, 3, 4, 32, 32)))
    with pytest.raises(ValueError, match="dimensions"):
        hunyuan.encode(good((1, 3, 32, 32)))  # 4-D is an image only for the image-capable


def test_loading_errors(tmp_path):
    from conftest import GOLDEN

    with pytest.raises(FileNotFoundError, match="does not download"):
        vvae.AutoencoderKL.from_pretrained("black-forest-labs/FLUX.1-dev")
    with pytest.raises(ValueError, match="AutoencoderKLHunyuanVideo"):
        vvae.AutoencoderKL.from_pretrained(GOLDEN / "hunyuan_small")
    with pytest.raises(TypeError, match="unexpected"):
        vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small", not_an_argument=1)
    with pytest.raises(ValueError, match="float32"):
        vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small", torch_dtype="float16")
    with pytest.raises(vvae.Error, match="needs its weights"):
        vvae.AutoencoderKL.from_pretrained("flux-ae")
    with pytest.raises(vvae.Error, match="unknown key"):
        vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small", model_args={"nope": 1})
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(vvae.Error, match="not valid JSON"):
        vvae.AutoencoderKL.from_pretrained(tmp_path)


def test_options(ae2d, hunyuan):
    with pytest.raises(ValueError, match="threads"):
        vvae.set_num_threads(-1)
    with pytest.raises(ValueError, match="precision"):
        _vvae.kernel_report(precision="fp16")
    with pytest.raises(ValueError, match="no temporal tiles"):
        ae2d.set_tiling(temporal=True)
    with pytest.raises(ValueError, match="no posterior"):
        from conftest import GOLDEN

        vvae.AutoencoderDCVideo.from_pretrained(GOLDEN / "dcae_small").encode_latent(
            good((1, 3, 1, 64, 64)), sample=True)
    with pytest.raises(ValueError, match="square tiles"):
        hunyuan.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=64)
    with pytest.raises(ValueError, match="no exact equivalent"):
        hunyuan.enable_tiling(tile_sample_min_height=40, tile_sample_min_width=40,
                              tile_sample_stride_height=30, tile_sample_stride_width=30,
                              tile_sample_min_num_frames=16, tile_sample_stride_num_frames=12)
