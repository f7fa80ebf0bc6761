"""vvae.encode_manifest: the CLI's latent cache from Python, and the per-clip writer vvae.ray
uses (LatentCacheWriter + merge_cache_index) making the same cache."""

import os
import shutil
import subprocess

import numpy as np
import pytest
import vvae
from cache_helpers import CLIPS, MODEL, comparable_index, latent_files, make_dataset, read_index
from conftest import REPO
from vvae import _vvae


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("cache_clips"))


@pytest.fixture(scope="module")
def clean(manifest, tmp_path_factory):
    """One single-process run: (its folder, its summary)."""
    out = tmp_path_factory.mktemp("clean") / "cache"
    return out, vvae.encode_manifest(MODEL, manifest, out, threads=2)


def test_encode_manifest_writes_the_cache(clean):
    from safetensors.numpy import load_file

    out, s = clean
    assert (s["encoded"], s["duplicates"], s["resumed"], s["failed"]) == (CLIPS, 1, 0, 0)
    assert s["index_path"] == os.path.join(os.path.abspath(out), "index.csv")
    index = read_index(out)
    assert len(index) == CLIPS + 1 and [r["text"] for r in index][:2] == ["caption, 0",
                                                                        "caption, 1"]
    assert {r["status"] for r in index} == {"ok"}
    assert len({r["latents_path"] for r in index}) == CLIPS  # the duplicate shares its file
    assert len(latent_files(out)) == CLIPS
    for r, row in zip(index, s["rows"]):
        assert row["latents_path"] == r["latents_path"] and row["latent_shape"] == r["latent_shape"]
        t = load_file(r["latents_path"])
        assert "x".join(map(str, t["z"].shape)) == r["latent_shape"] == "1x4x3x16x16"
        assert t["mean"].shape == t["logvar"].shape == t["z"].shape


def test_resume_takes_every_latent(clean, manifest, tmp_path):
    out, _ = clean
    copy = tmp_path / "cache"
    shutil.copytree(out, copy)
    before = latent_files(copy)
    s = vvae.encode_manifest(str(MODEL), manifest, copy, resume=True)
    assert (s["encoded"], s["resumed"], s["duplicates"]) == (0, CLIPS, 1)
    assert latent_files(copy) == before


def test_the_per_clip_writer_makes_the_same_cache(clean, manifest, tmp_path):
    """What vvae.ray's actors do, in reverse order, through two writers: the same files and
    the same index."""
    out, _ = clean
    mine = tmp_path / "cache"
    engine = _vvae.Model.load(model=str(MODEL))
    args = vvae.cache._cache_args(mine, load_args={"model": str(MODEL)})
    writers = [_vvae.LatentCacheWriter(engine, **args) for _ in range(2)]
    rows = _vvae.read_manifest(str(manifest))
    settled = []
    for k, r in enumerate(reversed(rows)):
        settled.append(writers[k % 2].encode_row(r["row"], r["path"]))
    assert {r["status"] for r in settled} == {"ok"}
    assert writers[0].options_json == writers[1].options_json
    assert not (mine / "index.csv").exists()  # the writer leaves the index alone
    index = _vvae.merge_cache_index(str(manifest), settled, str(mine), writers[0].options_json)
    assert index == os.path.join(os.path.abspath(mine), "index.csv")
    assert latent_files(mine) == latent_files(out)
    assert comparable_index(mine) == comparable_index(out)


def test_merge_refuses_rows_of_another_manifest(clean, manifest, tmp_path):
    out, s = clean
    row = dict(s["rows"][0], row=len(s["rows"]) + 5)
    with pytest.raises(vvae.Error, match="not a row of the manifest"):
        _vvae.merge_cache_index(str(manifest), [row], str(out), "{}")
    row = dict(s["rows"][0], path="/elsewhere/clip.mp4")
    with pytest.raises(vvae.Error, match="of the manifest is"):
        _vvae.merge_cache_index(str(manifest), [row], str(out), "{}")
    with pytest.raises(ValueError, match="status"):
        _vvae.merge_cache_index(str(manifest), [dict(s["rows"][0], status="done")], str(out),
                                "{}")


def test_a_failing_clip_is_recorded_and_the_run_goes_on(manifest, tmp_path):
    bad = tmp_path / "notavideo.mp4"
    bad.write_text("not a video")
    csv = tmp_path / "data.csv"
    text = manifest.read_text().splitlines()
    csv.write_text("\n".join(text[:3] + [f"{bad},broken"] + [f"{tmp_path / 'gone.mp4'},gone"])
                   + "\n")
    s = vvae.encode_manifest(MODEL, csv, tmp_path / "cache")
    assert (s["encoded"], s["failed"]) == (2, 2)
    index = read_index(tmp_path / "cache")
    assert [r["status"] for r in index] == ["ok", "ok", "failed", "failed"]
    assert index[2]["error"] and index[3]["error"] and "\n" not in index[3]["error"]


def test_bad_inputs(manifest, tmp_path):
    with pytest.raises(FileNotFoundError, match="manifest"):
        vvae.encode_manifest(MODEL, tmp_path / "missing.csv", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match="model"):
        vvae.encode_manifest(tmp_path / "nomodel", manifest, tmp_path / "out")
    with pytest.raises(ValueError, match="format"):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "out", format="npz")
    with pytest.raises(ValueError, match="num_frames"):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "out", num_frames=0)
    with pytest.raises(TypeError, match="model"):
        vvae.encode_manifest(42, manifest, tmp_path / "out")
    with pytest.raises(vvae.Error, match="does not exist"):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "no" / "such" / "out")
    (tmp_path / "index.csv").write_text("a,b\n1,2\n")
    with pytest.raises(vvae.Error, match="not an index vvae wrote"):
        vvae.encode_manifest(MODEL, manifest, tmp_path)
    assert (tmp_path / "index.csv").read_text() == "a,b\n1,2\n"  # never replaced
    with pytest.raises(ValueError):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "out", shard="3/2")


def test_progress_sees_every_row_and_can_stop_the_run(manifest, tmp_path):
    seen = []
    vvae.encode_manifest(MODEL, manifest, tmp_path / "a",
                         progress=lambda row, done, total: seen.append((row["row"], done, total)))
    assert [d for _, d, _ in seen] == list(range(1, CLIPS + 2))
    assert {t for _, _, t in seen} == {CLIPS + 1}

    def stop(row, done, total):
        if done == 3:
            raise KeyError("stop here")

    with pytest.raises(KeyError, match="stop here"):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "b", progress=stop)
    assert not (tmp_path / "b" / "index.csv").exists()  # no index of a run that stopped
    assert len(latent_files(tmp_path / "b")) == 3  # what was written stays, complete
    s = vvae.encode_manifest(MODEL, manifest, tmp_path / "b", resume=True)
    assert (s["resumed"], s["encoded"]) == (3, CLIPS - 3)


def _cli():
    cli = os.environ.get("VVAE_CLI") or str(REPO / "build" / "vvae")
    if not os.access(cli, os.X_OK):
        return None
    help_text = subprocess.run([cli, "encode", "--help"], capture_output=True, text=True).stdout
    return cli if "--manifest" in help_text else None


def test_python_equals_the_cli(clean, manifest, tmp_path):
    cli = _cli()
    if cli is None:
        pytest.skip("no vvae program with encode --manifest (build it: scripts/build, or set "
                    "VVAE_CLI)")
    out, _ = clean
    subprocess.run([cli, "encode", "--manifest", str(manifest), "-m", str(MODEL), "-o",
                    str(tmp_path / "cache"), "-q", "--threads", "1"], check=True)
    assert latent_files(tmp_path / "cache") == latent_files(out)
    assert comparable_index(tmp_path / "cache") == comparable_index(out)
    # np: the same z, to the bit, whatever the thread count.
    from safetensors.numpy import load_file

    for r in read_index(out)[:3]:
        rel = os.path.relpath(r["latents_path"], os.path.abspath(out))
        np.testing.assert_array_equal(load_file(r["latents_path"])["z"],
                                      load_file(str(tmp_path / "cache" / rel))["z"])


def test_a_memory_cap_fits_each_clip_and_keys_the_cache(clean, manifest, tmp_path):
    """max_memory=: each row says the plan it ran; a cap above every plan keeps the latents
    (bit for bit) under keys of their own, and a cap that is no size is refused."""
    from safetensors.numpy import load_file

    out, _ = clean
    s = vvae.encode_manifest(MODEL, manifest, tmp_path / "cache", threads=2, max_memory="64G")
    assert (s["encoded"], s["failed"]) == (CLIPS, 0)
    for row in s["rows"]:
        if not row["duplicate"]:
            assert row["plan"].startswith("--max-memory 64.0 GiB: the configured plan fits"), row
    clean_index, capped_index = read_index(out), read_index(tmp_path / "cache")
    for a, b in zip(clean_index, capped_index):
        assert a["latent_key"] != b["latent_key"]
        np.testing.assert_array_equal(load_file(a["latents_path"])["z"],
                                      load_file(b["latents_path"])["z"])
    with pytest.raises(TypeError):
        vvae.encode_manifest(MODEL, manifest, tmp_path / "other", max_memory=1.5)
