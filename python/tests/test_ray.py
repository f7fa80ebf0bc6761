"""vvae.ray on a local Ray cluster (2 CPUs, loopback only): the cache equals the single-process
run clip for clip, and a worker that dies mid-run is retried with nothing lost or duplicated."""

import os

import pytest

try:
    import ray
    import ray.data  # noqa: F401
except ImportError as e:  # pragma: no cover - depends on the environment
    pytest.skip(f'ray[data] is not installed ({e}): pip install "ray[data]"',
                allow_module_level=True)

import vvae
import vvae.ray
from cache_helpers import CLIPS, MODEL, comparable_index, latent_files, make_dataset, read_index


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1",
             object_store_memory=256 << 20, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def manifest(tmp_path_factory):
    return make_dataset(tmp_path_factory.mktemp("ray_clips"))


@pytest.fixture(scope="module")
def clean(manifest, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_clean") / "cache"
    vvae.encode_manifest(MODEL, manifest, out, threads=2)
    return out


def check_against_clean(out, clean):
    """Every clip once in the index, every latent there, complete and equal to the clean run's,
    and no temporary left."""
    from safetensors.numpy import load_file

    index = read_index(out)
    assert len(index) == CLIPS + 1 and {r["status"] for r in index} == {"ok"}
    assert [r["path"] for r in index] == [r["path"] for r in read_index(clean)]
    files = latent_files(out)
    assert not [f for f in files if ".tmp-" in f]
    assert files == latent_files(clean)  # byte for byte, the same file names
    for r in index:
        assert load_file(r["latents_path"])["z"].shape == (1, 4, 3, 16, 16)
    assert comparable_index(out) == comparable_index(clean)


def test_ray_cache_equals_the_single_process_run(cluster, manifest, clean, tmp_path):
    out = tmp_path / "cache"
    s = vvae.ray.encode_dataset(manifest, out, model=MODEL, num_actors=2, threads_per_actor=1)
    assert (s["encoded"], s["duplicates"], s["resumed"], s["failed"]) == (CLIPS, 1, 0, 0)
    assert s["index_path"] == str(out.resolve() / "index.csv")
    assert [r["row"] for r in s["rows"]] == list(range(CLIPS + 1))
    check_against_clean(out, clean)
    # Resumed on Ray: nothing encoded again.
    s = vvae.ray.encode_dataset(manifest, out, model=str(MODEL), num_actors=2, resume=True)
    assert (s["encoded"], s["resumed"]) == (0, CLIPS)
    check_against_clean(out, clean)


def crashing_encoder(markers: str, after_write_row: int, before_write_row: int):
    """A LatentEncoder whose process dies (os._exit, as a killed worker) the first time it
    meets two rows: once right after that clip's latent is written, once before it is encoded.
    Defined here, it travels to the actors by value."""

    def first_time(name: str) -> bool:
        try:
            fd = os.open(os.path.join(markers, name), os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    class Crashing(vvae.ray.LatentEncoder):
        def __call__(self, batch):
            rows = [int(r) for r in batch["row"]]
            if before_write_row in rows and first_time("before"):
                os._exit(3)
            out = super().__call__(batch)
            if after_write_row in rows and first_time("after"):
                os._exit(3)
            return out

    return Crashing


def test_a_worker_killed_mid_run_is_retried(cluster, manifest, clean, tmp_path):
    out, markers = tmp_path / "cache", tmp_path / "markers"
    markers.mkdir()
    s = vvae.ray.encode_dataset(manifest, out, model=MODEL, num_actors=2, batch_size=2,
                                max_retries=3, encoder=crashing_encoder(str(markers), 5, 14))
    # Both crashes happened (else this test tests nothing) ...
    assert sorted(os.listdir(markers)) == ["after", "before"]
    # ... and nothing was lost or duplicated.
    assert s["failed"] == 0 and s["encoded"] + s["resumed"] == CLIPS and s["duplicates"] == 1
    check_against_clean(out, clean)


def test_latent_encoder_in_a_pipeline_of_ones_own(cluster, manifest, clean, tmp_path):
    rows = vvae._vvae.read_manifest(str(manifest))
    ds = ray.data.from_items([{"path": r["path"], "row": r["row"], "text": r["text"]}
                              for r in rows if r["row"] < 4])
    out = ds.map_batches(vvae.ray.LatentEncoder, batch_size=2, num_cpus=1,
                         compute=ray.data.ActorPoolStrategy(size=1),
                         fn_constructor_kwargs=dict(model=str(MODEL),
                                                    out_dir=str(tmp_path / "cache"))).take_all()
    out.sort(key=lambda r: r["row"])
    clean_index = read_index(clean)
    assert [r["text"] for r in out] == [r["text"] for r in clean_index[:4]]
    for mine, theirs in zip(out, clean_index):
        assert mine["status"] == "ok" and mine["latent_key"] == theirs["latent_key"]
        assert mine["latent_shape"] == theirs["latent_shape"]
        assert mine["cache_options"] == theirs["cache_options"]
        assert open(mine["latents_path"], "rb").read() == open(theirs["latents_path"],
                                                               "rb").read()


def test_bad_arguments(manifest, tmp_path):
    with pytest.raises(TypeError, match="model"):
        vvae.ray.encode_dataset(manifest, tmp_path, model=object())
    with pytest.raises(ValueError, match="num_actors"):
        vvae.ray.encode_dataset(manifest, tmp_path, model=MODEL, num_actors=0)
    with pytest.raises(TypeError, match="unexpected"):
        vvae.ray.encode_dataset(manifest, tmp_path, model=MODEL, resolutoin="256px")
    with pytest.raises(FileNotFoundError, match="manifest"):
        vvae.ray.encode_dataset(tmp_path / "none.csv", tmp_path, model=MODEL)
    with pytest.raises(vvae.Error, match="does not exist"):
        vvae.ray.encode_dataset(manifest, tmp_path / "a" / "b", model=MODEL)
    with pytest.raises(ValueError, match="path"):
        vvae.ray.LatentEncoder(MODEL, tmp_path / "c")({"row": [0]})
    with pytest.raises(TypeError, match="max_memory"):
        vvae.ray.encode_dataset(manifest, tmp_path, model=MODEL, max_memory=1.5)
