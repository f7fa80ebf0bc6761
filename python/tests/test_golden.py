"""Open-Sora's golden vectors through Python: every case, within 1e-4 (max|diff| / max|ref|)."""

import json

import numpy as np
import pytest
import vvae
from conftest import CLASS_OF_FAMILY, GOLDEN, golden_io, rel_err

CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "io.safetensors").exists())
TOL = 1e-4


def load(case, **kwargs):
    family = json.loads((GOLDEN / case / "config.json").read_text())["family"]
    return getattr(vvae, CLASS_OF_FAMILY[family]).from_pretrained(GOLDEN / case, **kwargs)


def test_every_case_is_found():
    assert len(CASES) == 7, CASES


@pytest.mark.parametrize("case", CASES)
def test_open_sora_convention(case):
    vae, io = load(case), golden_io(case)
    assert rel_err(vae.encode_latent(io["x"]), io["z"]) <= TOL
    assert rel_err(vae.decode_latent(io["z"]), io["dec"]) <= TOL


@pytest.mark.parametrize("case", [c for c in CASES if not c.startswith("dcae")])
def test_diffusers_convention_gives_the_raw_posterior(case):
    vae, io = load(case), golden_io(case)
    dist = vae.encode(io["x"]).latent_dist
    assert rel_err(dist.mean, io["mean"]) <= TOL
    assert rel_err(dist.logvar, io["logvar"]) <= TOL
    assert rel_err(dist.mode(), io["mean"]) <= TOL
    assert rel_err(dist.parameters, io["moments"]) <= TOL
    # The caller scales, as diffusers' pipelines do; decode takes the unscaled latent.
    scale, shift = vae.config.scaling_factor, vae.config.shift_factor
    assert shift != 0  # every golden Gaussian case shifts: a dropped shift cannot pass
    assert rel_err((dist.mean - shift) * scale, io["z"]) <= TOL
    assert rel_err(vae.decode(io["z"] / scale + shift).sample, io["dec"]) <= TOL


@pytest.mark.parametrize("case", [c for c in CASES if c.startswith("dcae")])
def test_dcae_latent_is_the_encoder_output(case):
    vae, io = load(case), golden_io(case)
    factor = vae.config.scaling_factor  # diffusers' direction: latent * factor = Open-Sora's z
    latent = vae.encode(io["x"]).latent
    assert rel_err(latent * factor, io["z"]) <= TOL
    assert rel_err(vae.decode(io["z"] / factor).sample, io["dec"]) <= TOL
    if case == "dcae_tiled":
        assert factor == pytest.approx(1 / 0.8)  # the case sets scaling_factor 0.8


@pytest.mark.parametrize("case", [c for c in CASES if "tiled" in c])
def test_untiled_references(case):
    vae, io = load(case), golden_io(case)
    assert vae.tiling["spatial"] and vae.tiling["temporal_encode"]
    vae.set_tiling(spatial=False, temporal=False)
    assert rel_err(vae.encode_latent(io["x"]), io["z_untiled"]) <= TOL
    assert rel_err(vae.decode_latent(io["z_untiled"]), io["dec_untiled"]) <= TOL
    vae.set_tiling(spatial=True, temporal=True)  # and back to the tiled model
    assert rel_err(vae.encode_latent(io["x"]), io["z"]) <= TOL


@pytest.mark.parametrize("case", ["hunyuan_small", "dcae_small"])
def test_single_frame(case):
    vae, io = load(case), golden_io(case)
    assert rel_err(vae.encode_latent(io["x_t1"]), io["z_t1"]) <= TOL
    assert rel_err(vae.decode_latent(io["z_t1"]), io["dec_t1"]) <= TOL


def test_torch_tensors_in_give_torch_tensors_out():
    torch = pytest.importorskip("torch")
    vae, io = load("hunyuan_small"), golden_io("hunyuan_small")
    x = torch.from_numpy(io["x"])
    dist = vae.encode(x).latent_dist
    assert isinstance(dist.mean, torch.Tensor) and isinstance(dist.logvar, torch.Tensor)
    assert rel_err(dist.mean.numpy(), io["mean"]) <= TOL
    dec = vae.decode_latent(torch.from_numpy(io["z"]))
    assert isinstance(dec, torch.Tensor) and dec.dtype == torch.float32
    assert rel_err(dec.numpy(), io["dec"]) <= TOL


def test_images_as_diffusers_autoencoderkl_takes_them(ae2d):
    io = golden_io("ae2d_small")
    frames = np.ascontiguousarray(io["x"][0].transpose(1, 0, 2, 3))  # (T, C, H, W): a batch
    dist = ae2d.encode(frames).latent_dist
    assert dist.mean.shape == (3, 4, 16, 16)
    expected = io["mean"][0].transpose(1, 0, 2, 3)
    assert rel_err(dist.mean, expected) <= TOL
    assert ae2d.decode(dist.mean).sample.shape == (3, 3, 32, 32)


def test_int_seed_draws_what_the_engine_draws(ae2d):
    x = golden_io("ae2d_small")["x"]
    dist = ae2d.encode(x).latent_dist
    draw = dist.sample(generator=7)
    scaled = ae2d.encode_latent(x, sample=True, seed=7)
    s, h = ae2d.config.scaling_factor, ae2d.config.shift_factor
    assert rel_err(s * (draw - h), scaled) <= 1e-6
    assert np.array_equal(draw, dist.sample(generator=7))
    assert not np.allclose(draw, dist.sample(generator=8))
    assert not np.allclose(draw, dist.mean)


def test_from_pretrained_picks_the_class():
    assert isinstance(vvae.from_pretrained(GOLDEN / "dcae_small"), vvae.AutoencoderDCVideo)
    vae = vvae.from_pretrained(GOLDEN / "hunyuan_small")
    assert isinstance(vae, vvae.AutoencoderKLHunyuanVideo)
    assert vae.config.latent_channels == 4 and vae.config.model_args["norm_num_groups"] == 4


def test_dcae_tiling_switches(rng):
    vae, io = load("dcae_tiled"), golden_io("dcae_tiled")
    vae.disable_tiling()
    assert not vae.tiling["spatial"] and not vae.tiling["temporal_decode"]
    assert rel_err(vae.encode_latent(io["x"]), io["z_untiled"]) <= TOL
    vae.enable_tiling(tile_size=32, tile_frames=16, overlap=0.25)  # the case's own tiles
    assert rel_err(vae.encode_latent(io["x"]), io["z"]) <= TOL
    assert "spatial tiles" in " ".join(vae.plan_encode(io["x"].shape).notes)
