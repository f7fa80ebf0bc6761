"""Shared fixtures: the repository's golden cases and small models."""

import os
import pathlib

import numpy as np
import pytest

# The tests run against the installed package; the data comes from the repository.
REPO = pathlib.Path(os.environ.get("VVAE_REPO", pathlib.Path(__file__).resolve().parents[2]))
GOLDEN = REPO / "tests" / "data" / "golden"

CLASS_OF_FAMILY = {"ae2d": "AutoencoderKL", "hunyuan": "AutoencoderKLHunyuanVideo",
                   "dcae": "AutoencoderDCVideo"}


def rel_err(a, b) -> float:
    """max |a - b| / max |b|, the project's parity measure."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def golden_io(case: str) -> dict:
    from safetensors.numpy import load_file

    return load_file(str(GOLDEN / case / "io.safetensors"))


@pytest.fixture(scope="session")
def ae2d():
    import vvae

    return vvae.AutoencoderKL.from_pretrained(GOLDEN / "ae2d_small")


@pytest.fixture(scope="session")
def hunyuan():
    import vvae

    return vvae.AutoencoderKLHunyuanVideo.from_pretrained(GOLDEN / "hunyuan_small")


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
