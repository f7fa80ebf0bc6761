"""diffusers itself as the reference: small random models of diffusers' AutoencoderKL (the
Flux AE's architecture) and AutoencoderKLHunyuanVideo, saved with save_pretrained and loaded
by vvae from the folder as it is. Tolerance 1e-4 (max|diff| / max|ref|) against diffusers in
float64."""

import numpy as np
import pytest
import vvae
from conftest import rel_err

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")

TOL = 1e-4
ERRORS = {}  # what each comparison measured, printed at the end (pytest -s)


def check(name, ours, ref):
    ref = ref.detach().double().numpy() if isinstance(ref, torch.Tensor) else ref
    ours = ours.detach().double().numpy() if isinstance(ours, torch.Tensor) else ours
    err = rel_err(ours, ref)
    ERRORS[name] = err
    assert err <= TOL, f"{name}: {err:.3g}"


@pytest.fixture(scope="module", autouse=True)
def report():
    yield
    for name, err in sorted(ERRORS.items()):
        print(f"diffusers parity {name}: {err:.2e}")


def randomize(model, seed):
    """diffusers' init leaves GroupNorm at weight 1, bias 0: draw every parameter so that the
    affine parts matter too (as the golden vectors do)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                lo, hi = (0.7, 1.3) if name.endswith("weight") else (-0.2, 0.2)
                p.copy_(torch.rand(p.shape, generator=g) * (hi - lo) + lo)
            elif name.endswith("bias"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.2 - 0.1)
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=g) / fan_in**0.5)
    return model.eval()


@pytest.fixture(scope="module")
def flux_like(tmp_path_factory):
    ref = randomize(diffusers.AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, block_out_channels=(32, 64, 64),
        layers_per_block=2, latent_channels=16, norm_num_groups=32, sample_size=64,
        scaling_factor=0.3611, shift_factor=0.1159, use_quant_conv=False,
        use_post_quant_conv=False, mid_block_add_attention=True), 11)
    folder = tmp_path_factory.mktemp("flux_like")
    ref.save_pretrained(folder)
    assert (folder / "diffusion_pytorch_model.safetensors").exists()
    return ref, vvae.AutoencoderKL.from_pretrained(folder)


@pytest.fixture(scope="module")
def hunyuan_like(tmp_path_factory):
    ref = randomize(diffusers.AutoencoderKLHunyuanVideo(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(8, 16, 16, 16),
        layers_per_block=1, norm_num_groups=4, scaling_factor=0.476986,
        spatial_compression_ratio=8, temporal_compression_ratio=4,
        mid_block_add_attention=True), 12)
    folder = tmp_path_factory.mktemp("hunyuan_like")
    ref.save_pretrained(folder)
    return ref, folder


def clip(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g) * 2 - 1


def test_autoencoderkl_images(flux_like):
    ref, vae = flux_like
    x = clip((2, 3, 32, 48), 1)
    with torch.no_grad():
        r = ref.double().encode(x.double()).latent_dist
        dec = ref.decode(r.mean).sample
    ours = vae.encode(x).latent_dist
    check("AutoencoderKL mean", ours.mean, r.mean)
    check("AutoencoderKL logvar", ours.logvar, r.logvar)
    # diffusers' chunk of the moments is a strided view: vvae takes contiguous tensors only.
    check("AutoencoderKL decode", vae.decode(r.mean.float().contiguous()).sample, dec)
    assert vae.config.scaling_factor == pytest.approx(ref.config.scaling_factor)
    assert vae.config.shift_factor == pytest.approx(ref.config.shift_factor)
    # Open-Sora's convention is diffusers' pipelines' scaling.
    check("AutoencoderKL encode_latent", vae.encode_latent(x),
          (r.mean - ref.config.shift_factor) * ref.config.scaling_factor)


def test_autoencoderkl_videos_are_frames(flux_like):
    ref, vae = flux_like
    x = clip((1, 3, 3, 32, 32), 2)
    with torch.no_grad():
        frames = x.permute(0, 2, 1, 3, 4).reshape(3, 3, 32, 32).double()
        mean = ref.double().encode(frames).latent_dist.mean
    expected = mean.reshape(1, 3, 16, 8, 8).permute(0, 2, 1, 3, 4)
    check("AutoencoderKL video mean", vae.encode(x).latent_dist.mean, expected)


def test_autoencoderkl_tiling_is_diffusers(flux_like):
    # diffusers tiles frames larger than its sample_size (64 here) once enable_tiling() is
    # called; vvae reads the tile size from the folder's config and tiles the same way.
    ref, vae = flux_like
    x = clip((1, 3, 96, 160), 3)
    assert not vae.use_tiling and vae.tile_sample_min_size == 64
    untiled = vae.encode(x).latent_dist.mean
    ref.enable_tiling()
    vae.enable_tiling()
    try:
        with torch.no_grad():
            r = ref.double().encode(x.double()).latent_dist
            z = torch.rand((1, 16, 24, 40), generator=torch.Generator().manual_seed(4)) - 0.5
            dec = ref.decode(z.double()).sample
        ours = vae.encode(x).latent_dist
        check("AutoencoderKL tiled mean", ours.mean, r.mean)
        check("AutoencoderKL tiled logvar", ours.logvar, r.logvar)
        check("AutoencoderKL tiled decode", vae.decode(z).sample, dec)
        assert rel_err(np.asarray(ours.mean), np.asarray(untiled)) > 1e-3  # it did tile
    finally:
        ref.disable_tiling()
        vae.disable_tiling()


def test_autoencoderkl_sampling_with_a_torch_generator(flux_like):
    ref, vae = flux_like
    x = clip((1, 3, 16, 16), 3)
    with torch.no_grad():
        r = ref.float().encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(5))
    ours = vae.encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(5))
    check("AutoencoderKL sample", ours, r)


def test_hunyuan_untiled(hunyuan_like):
    ref, folder = hunyuan_like
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(folder)
    x = clip((1, 3, 9, 32, 32), 4)
    with torch.no_grad():
        r = ref.double().encode(x.double()).latent_dist
        dec = ref.decode(r.mean).sample
    ours = vae.encode(x).latent_dist
    check("HunyuanVideo mean", ours.mean, r.mean)
    check("HunyuanVideo logvar", ours.logvar, r.logvar)
    check("HunyuanVideo decode", vae.decode(r.mean.float().contiguous()).sample, dec)
    assert vae.config.scaling_factor == pytest.approx(0.476986)
    assert vae.config.shift_factor == 0


def test_hunyuan_framewise_as_diffusers_defaults(hunyuan_like):
    # diffusers codes clips of more than 16 frames in 16-frame tiles even with tiling off.
    ref, folder = hunyuan_like
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(folder)
    assert vae.use_framewise_encoding and not vae.use_tiling
    assert (vae.tile_sample_min_num_frames, vae.tile_sample_stride_num_frames) == (16, 12)
    x = clip((1, 3, 29, 16, 16), 5)
    with torch.no_grad():
        r = ref.double().encode(x.double()).latent_dist
        dec = ref.decode(r.mean).sample
    check("HunyuanVideo framewise mean", vae.encode(x).latent_dist.mean, r.mean)
    check("HunyuanVideo framewise decode", vae.decode(r.mean.float().contiguous()).sample, dec)
    # And off, as in diffusers.
    vae.use_framewise_encoding = vae.use_framewise_decoding = False
    ref.use_framewise_encoding = ref.use_framewise_decoding = False
    try:
        with torch.no_grad():
            r = ref.encode(x.double()).latent_dist
        check("HunyuanVideo whole-clip mean", vae.encode(x).latent_dist.mean, r.mean)
    finally:
        ref.use_framewise_encoding = ref.use_framewise_decoding = True


def test_hunyuan_spatial_tiling(hunyuan_like):
    ref, folder = hunyuan_like
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(folder)
    tiles = dict(tile_sample_min_height=32, tile_sample_min_width=32,
                 tile_sample_stride_height=24, tile_sample_stride_width=24)
    vae.enable_tiling(**tiles)
    ref.enable_tiling(**tiles)
    try:
        x = clip((1, 3, 9, 48, 56), 6)
        with torch.no_grad():
            r = ref.double().encode(x.double()).latent_dist
            dec = ref.decode(r.mean).sample
        check("HunyuanVideo tiled mean", vae.encode(x).latent_dist.mean, r.mean)
        check("HunyuanVideo tiled decode", vae.decode(r.mean.float().contiguous()).sample, dec)
    finally:
        ref.disable_tiling()
    vae.disable_tiling()
    assert not vae.use_tiling


def test_hunyuan_sampling_with_a_torch_generator(hunyuan_like):
    ref, folder = hunyuan_like
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(folder)
    x = clip((1, 3, 5, 16, 16), 7)
    with torch.no_grad():
        r = ref.float().encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(9))
    ours = vae.encode(x).latent_dist.sample(generator=torch.Generator().manual_seed(9))
    check("HunyuanVideo sample", ours, r)
