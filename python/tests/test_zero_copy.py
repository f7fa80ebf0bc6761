"""Tensors cross the binding without copies, both ways."""

import gc

import numpy as np
import pytest
import vvae
from vvae import _vvae


def address(a) -> int:
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return a.data_ptr()


def test_numpy_input_is_viewed_in_place(rng):
    x = rng.standard_normal((1, 3, 2, 8, 8), dtype=np.float32)
    y = _vvae._view_roundtrip(x, 5)
    assert isinstance(y, np.ndarray)
    assert np.shares_memory(x, y) and address(y) == address(x)
    x[0, 0, 0, 0, 0] = 42.0  # one buffer: a write shows through
    assert y[0, 0, 0, 0, 0] == 42.0


def test_torch_input_is_viewed_in_place():
    torch = pytest.importorskip("torch")
    x = torch.randn(1, 3, 2, 8, 8)
    y = _vvae._view_roundtrip(x, 5)
    assert isinstance(y, torch.Tensor) and y.data_ptr() == x.data_ptr()


def test_a_view_keeps_its_input_alive(rng):
    x = rng.standard_normal((1, 3, 1, 4, 4), dtype=np.float32)
    expected = x.copy()
    y = _vvae._view_roundtrip(x, 5)
    del x
    gc.collect()
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("framework", ["numpy", "torch"])
def test_outputs_are_vvae_memory_not_copies(ae2d, rng, framework):
    x = rng.uniform(-1, 1, (1, 3, 2, 16, 16)).astype(np.float32)
    if framework == "torch":
        torch = pytest.importorskip("torch")
        x = torch.from_numpy(x)
    engine_address, z = _vvae._output_address(ae2d._model("encode"), x)
    assert address(z) == engine_address  # the array is over the engine's tensor
    if framework == "numpy":
        assert not z.flags.owndata and z.base is not None and z.flags.writeable


def test_outputs_outlive_the_model(rng):
    from conftest import GOLDEN

    vae = vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small")
    x = rng.uniform(-1, 1, (1, 3, 1, 16, 16)).astype(np.float32)
    z = vae.encode_latent(x)
    expected = z.copy()
    del vae
    gc.collect()
    np.testing.assert_array_equal(z, expected)
    z += 1  # and they are the caller's to write
    np.testing.assert_allclose(z, expected + 1)


def test_inputs_are_left_as_they_were(hunyuan, rng):
    x = rng.uniform(-1, 1, (1, 3, 5, 16, 16)).astype(np.float32)
    before = x.copy()
    z = hunyuan.encode_latent(x)
    hunyuan.decode_latent(z)
    np.testing.assert_array_equal(x, before)


def test_read_only_arrays_are_accepted(ae2d, rng):
    x = rng.uniform(-1, 1, (1, 3, 1, 16, 16)).astype(np.float32)
    x.flags.writeable = False
    assert ae2d.encode_latent(x).shape == (1, 4, 1, 8, 8)


def test_requires_grad_tensors_are_detached(ae2d):
    torch = pytest.importorskip("torch")
    x = torch.rand(1, 3, 1, 16, 16, requires_grad=True)
    z = ae2d.encode_latent(x)
    assert isinstance(z, torch.Tensor) and not z.requires_grad
