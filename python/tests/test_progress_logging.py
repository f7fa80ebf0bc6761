"""Progress callbacks, cancellation and logging."""

import logging
import shutil

import numpy as np
import pytest
import vvae
from conftest import GOLDEN


def test_progress_counts_to_the_total(ae2d, rng):
    x = rng.uniform(-1, 1, (2, 3, 3, 16, 16)).astype(np.float32)
    reports = []
    z = ae2d.encode_latent(x, progress=lambda done, total: reports.append((done, total)))
    assert reports == [(i, 6) for i in range(1, 7)]  # one step per frame of each sample
    reports.clear()
    ae2d.decode(ae2d.encode(x).latent_dist.mode(), progress=lambda *r: reports.append(r))
    assert reports[-1] == (6, 6) and len(reports) == 6
    assert z.shape == (2, 4, 3, 8, 8)


def test_tiles_are_steps():
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(GOLDEN / "hunyuan_tiled")
    reports = []
    vae.encode_latent(np.zeros((1, 3, 17, 48, 48), np.float32),
                      progress=lambda *r: reports.append(r))
    assert reports[-1] == (8, 8)  # 2 temporal x 4 spatial tiles (the case's forward_calls)


def test_false_cancels(ae2d, rng):
    x = rng.uniform(-1, 1, (1, 3, 4, 16, 16)).astype(np.float32)
    calls = []
    with pytest.raises(vvae.Cancelled):
        ae2d.encode_latent(x, progress=lambda d, t: calls.append(d) or d < 2)
    assert calls == [1, 2]
    assert issubclass(vvae.Cancelled, vvae.Error)


def test_an_exception_in_the_callback_propagates(ae2d, rng):
    x = rng.uniform(-1, 1, (1, 3, 4, 16, 16)).astype(np.float32)

    def boom(done, total):
        raise KeyError("from the callback")

    with pytest.raises(KeyError, match="from the callback"):
        ae2d.encode_latent(x, progress=boom)
    # The model is fine afterwards.
    assert ae2d.encode_latent(x).shape == (1, 4, 4, 8, 8)


def test_load_warnings_go_to_logging(tmp_path, caplog):
    # A checkpoint with a tensor the 2D AE does not use: upstream loads it non-strictly, and
    # vvae says so through the "vvae" logger.
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(GOLDEN / "ae2d_small" / "weights.safetensors"))
    tensors["extra.weight"] = np.zeros(3, np.float32)
    save_file(tensors, str(tmp_path / "weights.safetensors"))
    shutil.copy(GOLDEN / "ae2d_small" / "config.json", tmp_path / "config.json")
    with caplog.at_level(logging.WARNING, logger="vvae"):
        vvae.AutoencoderKL.from_pretrained(tmp_path)
    assert any("extra.weight" in r.getMessage() and r.name == "vvae" for r in caplog.records)
    with pytest.raises(vvae.Error, match="unexpected"):
        vvae.AutoencoderKL.from_pretrained(tmp_path, strict=True)


def test_ctrl_c_interrupts_between_steps(ae2d, rng):
    # interrupt_main() raises SIGINT's KeyboardInterrupt in the main thread, which computes
    # here: the next step sees it, cancels the call and raises it.
    import _thread

    x = rng.uniform(-1, 1, (1, 3, 6, 16, 16)).astype(np.float32)
    calls = []

    def progress(done, total):
        calls.append(done)
        if done == 2:
            _thread.interrupt_main()

    with pytest.raises(KeyboardInterrupt):
        ae2d.encode_latent(x, progress=progress)
    assert calls == [1, 2]
