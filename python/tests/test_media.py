"""Videos in and out, latent files, reconstruction."""

import json

import numpy as np
import pytest
import vvae
from conftest import GOLDEN, REPO


def gradient_clip(t=5, h=32, w=48):
    """A smooth clip that survives H.264 closely: horizontal ramps moving over time."""
    tt, yy, xx = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    r = np.sin(xx / w * 3 + tt * 0.3)
    g = np.cos(yy / h * 3 - tt * 0.2)
    b = np.sin((xx + yy) / (w + h) * 4)
    return np.stack([r, g, b])[None].astype(np.float32) * 0.8


def test_write_then_read_a_video(tmp_path):
    x = gradient_clip()
    path = tmp_path / "clip.mp4"
    vvae.write_video(path, x, fps=12)
    y, info = vvae.read_video(path)
    assert y.shape == x.shape and y.dtype == np.float32
    assert info["fps"] == pytest.approx(12) and info["video"]["codec"] == "h264"
    assert info["indices"] == list(range(5))
    assert np.abs(y - x).mean() < 0.03  # lossy, but close
    metrics = vvae.clip_metrics(x, y)[0]
    assert metrics["psnr"] > 30 and len(metrics["ssim_frames"]) == 5


def test_read_video_frames_and_size(tmp_path):
    path = tmp_path / "clip.mkv"
    vvae.write_video(path, gradient_clip(t=9, h=48, w=64), fps=8)
    y, info = vvae.read_video(path, num_frames=4, size=(32, 32))
    assert y.shape == (1, 3, 4, 32, 32)
    assert info["resize_crop"]["height"] == 32
    # With a model the count is made valid for it: 1 + 4k frames for the causal VAE.
    hv = vvae.AutoencoderKLHunyuanVideo.from_pretrained(GOLDEN / "hunyuan_small")
    y, info = vvae.read_video(path, model=hv)
    assert y.shape[2] == 9 and y.shape[3] % 8 == 0
    torch = pytest.importorskip("torch")
    y, _ = vvae.read_video(path, num_frames=2, framework="torch")
    assert isinstance(y, torch.Tensor) and y.shape[2] == 2


def test_png_and_bad_outputs(tmp_path):
    x = gradient_clip(t=1)
    vvae.write_video(tmp_path / "frame.png", x)
    y, info = vvae.read_video(tmp_path / "frame.png")
    assert y.shape == x.shape and info["video"]["still_image"]
    with pytest.raises(ValueError, match="one frame"):
        vvae.write_video(tmp_path / "frames.png", gradient_clip(t=2))
    with pytest.raises(ValueError, match="format"):
        vvae.write_video(tmp_path / "clip.xyz", x)
    with pytest.raises(vvae.Error):
        vvae.read_video(tmp_path / "missing.mp4")


def test_latent_files_are_safetensors(tmp_path, hunyuan, rng):
    from safetensors.torch import load_file

    x = rng.uniform(-1, 1, (1, 3, 5, 16, 16)).astype(np.float32)
    z = hunyuan.encode_latent(x)
    dist = hunyuan.encode(x).latent_dist
    path = tmp_path / "clip.latent.safetensors"
    vvae.save_latent(path, z, dist.mean, dist.logvar, model=hunyuan, input_shape=x.shape,
                     metadata={"note": "test"})
    tensors = load_file(str(path))
    assert set(tensors) == {"z", "mean", "logvar"}
    np.testing.assert_array_equal(tensors["z"].numpy(), z)
    back = vvae.load_latent(path)
    np.testing.assert_array_equal(back["mean"], dist.mean)
    meta = back["metadata"]
    assert meta["family"] == "hunyuan" and meta["note"] == "test"
    assert json.loads(meta["input_shape"]) == list(x.shape)
    # And the file decodes as `vvae decode` would.
    np.testing.assert_allclose(hunyuan.decode_latent(back["z"]), hunyuan.decode_latent(z),
                               atol=1e-6)


def test_reconstruct_the_bundled_sample(tmp_path):
    vae = vvae.AutoencoderKL.from_pretrained(REPO / "models" / "ae2d-tiny")
    result = vvae.reconstruct(vae, REPO / "samples" / "clip.mp4", tmp_path, num_frames=4,
                              latents=True)
    assert result["ok"] and not result["resumed"] and result["frames"] == 4
    # The model card's quality on this sample is 26.6 dB / 0.73 over all 33 frames.
    assert 20 < result["psnr"] < 40 and 0.4 < result["ssim"] < 1
    assert any(o.startswith("recn/") for o in result["outputs"])
    assert (tmp_path / "latents" / "clip.latent.safetensors").exists()
    again = vvae.reconstruct(vae, REPO / "samples" / "clip.mp4", tmp_path, num_frames=4,
                             latents=True)
    assert again["resumed"] and again["psnr"] == pytest.approx(result["psnr"])
