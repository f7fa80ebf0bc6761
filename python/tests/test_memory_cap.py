"""max_memory= (issue 16): a cap above the configured plan keeps it (the same numbers), a cap
between the least plan and the configured one runs the fitting tiling and says so, a cap below
everything raises ValueError naming the smallest cap, and a bad cap is refused."""

import re

import numpy as np
import pytest
import vvae
from conftest import GOLDEN

SHAPE = (1, 3, 25, 192, 192)  # activations well above the rounding of sizes in GiB


def mib(text, pattern):
    """The size in bytes that `pattern` (with a group for the number and unit) finds in text."""
    m = re.search(pattern, text)
    assert m, text
    value, unit = float(m.group(1)), m.group(2)
    return int(value * {"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[unit])


@pytest.fixture(scope="module")
def untiled():
    vae = vvae.AutoencoderKLHunyuanVideo.from_pretrained(GOLDEN / "hunyuan_tiled")
    vae.set_tiling(spatial=False, temporal=False)
    return vae


def test_a_cap_above_the_plan_keeps_it(untiled):
    x = np.random.default_rng(3).uniform(-1, 1, SHAPE).astype(np.float32)
    z = untiled.encode_latent(x, max_memory="64G")
    assert "the configured plan fits" in untiled.last_plan
    assert np.array_equal(z, untiled.encode_latent(x))
    x_rec = untiled.decode_latent(z, max_memory=64 << 30)
    assert "the configured plan fits" in untiled.last_plan
    assert np.array_equal(x_rec, untiled.decode_latent(z))


def test_a_cap_below_the_plan_tiles_and_below_everything_raises(untiled):
    x = np.random.default_rng(4).uniform(-1, 1, SHAPE).astype(np.float32)
    untiled.encode_latent(x, max_memory="64G")
    configured = mib(untiled.last_plan, r"fits \(~([\d.]+) (KiB|MiB|GiB)")
    with pytest.raises(ValueError, match="raise the cap to at least") as refused:
        untiled.encode_latent(x, max_memory="1M")
    least = mib(str(refused.value), r"at least ([\d.]+) (KiB|MiB|GiB)")
    assert least < configured
    z = untiled.encode_latent(x, max_memory=(least + configured) // 2)
    # The tiling it says it ran gives the same bits when set by hand; it is not the untiled run.
    said = re.search(r"running with (no spatial tiles|spatial tiles of (\d+) px), "
                     r"(no temporal tiles|temporal tiles of (\d+) frames)", untiled.last_plan)
    assert said, untiled.last_plan
    by_hand = vvae.AutoencoderKLHunyuanVideo.from_pretrained(GOLDEN / "hunyuan_tiled")
    by_hand.set_tiling(spatial=said.group(2) is not None, temporal=said.group(4) is not None,
                       tile_size=int(said.group(2)) if said.group(2) else None,
                       tile_frames=int(said.group(4)) if said.group(4) else None)
    assert np.array_equal(z, by_hand.encode_latent(x))
    assert not np.array_equal(z, untiled.encode_latent(x))


@pytest.mark.parametrize("cap, error", [("lots", ValueError), (0, ValueError), (-5, ValueError),
                                        (1.5, TypeError), (True, TypeError)])
def test_a_bad_cap_is_refused(untiled, cap, error):
    x = np.zeros(SHAPE, np.float32)
    with pytest.raises(error):
        untiled.encode_latent(x, max_memory=cap)
