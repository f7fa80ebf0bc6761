"""A dataset encoded into vvae's latent cache on a Ray cluster (`pip install "ray[data]"`).

    import ray, vvae.ray
    ray.init()
    summary = vvae.ray.encode_dataset("data.csv", "cache/", model="models/ae2d-tiny",
                                      num_actors=8, threads_per_actor=4, resolution="256px")

or, inside a pipeline of your own, the callable class that loads the model once per actor:

    ds = ray.data.from_items([{"row": i, "path": p} for i, p in enumerate(paths)])
    rows = ds.map_batches(vvae.ray.LatentEncoder, batch_size=4, num_cpus=4,
                          compute=ray.data.ActorPoolStrategy(size=8),
                          fn_constructor_kwargs=dict(model="models/ae2d-tiny", out_dir="cache/",
                                                     threads=4, resolution="256px"))

Every actor writes into the one cache folder the CLI and vvae.encode_manifest write (the same
content keys, latent file names, locks and atomic renames: include/vvae/latent_cache.hpp), so
a clip encoded by Ray, by `vvae encode --manifest` or by a Slurm shard is the same file, and
`resume` skips it whoever wrote it. An actor that dies mid-run is restarted by Ray and its batch
retried: a latent it had renamed into place is complete, a temporary it left is removed, and
the clip is encoded again otherwise. encode_dataset then writes OUT/index.csv with the engine's
own index writer (the CLI's format).
"""

import os
import warnings
from typing import Optional

from . import _vvae
from .cache import _cache_args, _check_manifest, _load_model

# The columns every output row has, after the input batch's own.
OUTPUT_COLUMNS = ("latents_path", "latent_shape", "status", "error", "latent_key",
                  "cache_options", "resumed", "seconds", "cache_options_json")


class LatentEncoder:
    """For `ray.data.Dataset.map_batches(LatentEncoder, fn_constructor_kwargs=...)`.

    Constructor: model (a model folder, checkpoint or preset path: it is loaded once per actor;
    weights=, precision=, conv_algorithm= as from_pretrained), out_dir (the cache folder, shared
    by every actor), threads (per actor, default 1), and the clip options of
    vvae.encode_manifest: resume, num_frames, frame_interval, fps_max, resolution, size,
    sample, seed, format, and max_memory (a cap on each actor's process, as encode_manifest's).

    A call takes a batch (a dict of columns) with a `path` column, and `row` (the clip's 0-based
    manifest row; needed to merge the index, encode_dataset gives it), and returns the batch's
    columns with OUTPUT_COLUMNS added: status "ok" (latents_path, latent_shape "1x16x3x32x32") or
    "failed" (error), latent_key, cache_options (the options' id, as index.csv), resumed (the
    latent was there already), seconds, and cache_options_json (what the index writer needs).
    """

    def __init__(self, model, out_dir, *, threads: int = 1, weights=None,
                 precision: str = "fp32", conv_algorithm: str = "auto", resume: bool = False,
                 num_frames: Optional[int] = None, frame_interval: int = 1,
                 fps_max: Optional[float] = None, resolution: Optional[str] = None,
                 size: Optional[tuple] = None, sample: bool = False, seed: int = 0,
                 format: str = "safetensors", max_memory=None):
        if int(threads) < 0:
            raise ValueError("threads must be >= 0 (0: all cores)")
        _vvae.set_num_threads(int(threads))
        self._engine, load_args = _load_model(model, weights, precision, conv_algorithm)
        args = _cache_args(out_dir, resume=resume, num_frames=num_frames,
                           frame_interval=frame_interval, fps_max=fps_max,
                           resolution=resolution, size=size, sample=sample, seed=seed,
                           format=format, load_args=load_args, max_memory=max_memory)
        self._writer = _vvae.LatentCacheWriter(self._engine, **args)
        self._options_json = self._writer.options_json
        self._options_id = _vvae.cache_options_id(self._options_json)

    def __call__(self, batch: dict) -> dict:
        if "path" not in batch:
            raise ValueError(f"a batch needs a 'path' column; it has {sorted(batch)}")
        paths = [str(p) for p in batch["path"]]
        rows = [int(r) for r in batch["row"]] if "row" in batch else [-1] * len(paths)
        out = {k: list(v) for k, v in batch.items()}
        for c in OUTPUT_COLUMNS:
            out[c] = []
        for row, path in zip(rows, paths):
            r = self._writer.encode_row(max(row, 0), path)
            for c in OUTPUT_COLUMNS[:5]:
                out[c].append(r[c])
            out["cache_options"].append(self._options_id)
            out["resumed"].append(bool(r["resumed"]))
            out["seconds"].append(float(r["seconds"]))
            out["cache_options_json"].append(self._options_json)
        return out


def encode_dataset(manifest, out, *, model, num_actors: int = 2, threads_per_actor: int = 1,
                   batch_size: int = 1, max_retries: Optional[int] = None, weights=None,
                   precision: str = "fp32", conv_algorithm: str = "auto",
                   ray_remote_args: Optional[dict] = None, encoder=None, **clip_options) -> dict:
    """`vvae encode --manifest MANIFEST -o OUT` on the Ray cluster of ray.init(): the clips are
    spread over num_actors actors (LatentEncoder, threads_per_actor threads and CPUs each,
    batch_size clips a task), then OUT/index.csv is merged as the CLI merges it.

    clip_options: resume, num_frames, frame_interval, fps_max, resolution, size, sample, seed,
    format, max_memory (as vvae.encode_manifest; max_memory caps each actor's process). max_retries: restarts of a dead actor and retries of its
    task; None keeps Ray Data's default (a dead actor is restarted and its task retried without
    bound), an int bounds both (a clip that kills its worker every time then fails the run).
    ray_remote_args: more of map_batches' arguments. encoder: a LatentEncoder subclass to run
    instead.

    Rows with the same file are encoded once and share its latent (as the CLI). Returns the
    summary vvae.encode_manifest returns: rows (in manifest order), encoded, resumed,
    duplicates, failed, index_path, wall_seconds.
    """
    import time

    import ray

    start = time.monotonic()
    unknown = set(clip_options) - {"resume", "num_frames", "frame_interval", "fps_max",
                                   "resolution", "size", "sample", "seed", "format",
                                   "max_memory"}
    if unknown:
        raise TypeError(f"encode_dataset() got unexpected arguments {sorted(unknown)}")
    if int(num_actors) < 1:
        raise ValueError(f"num_actors must be >= 1, got {num_actors}")
    if int(threads_per_actor) < 1:
        raise ValueError(f"threads_per_actor must be >= 1, got {threads_per_actor}")
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError("model must be a model folder, checkpoint or preset path (each actor "
                        f"loads it), got {type(model).__name__}")
    path = _check_manifest(manifest)
    out = os.fspath(out)
    fmt = clip_options.get("format", "safetensors")
    # The options and the folder, checked here before any actor starts.
    _cache_args(out, **clip_options)
    table = _vvae.read_manifest(path)
    if not table:
        raise ValueError(f"manifest {path!r} has no rows")
    _vvae.prepare_cache_folder(out, fmt, [path] + [r["path"] for r in table])

    # One task per file: a file that several rows name is encoded once (its key is the same).
    first_of = {}
    for r in table:
        first_of.setdefault(os.path.realpath(r["path"]), r["row"])
    unique = [table[row] for row in sorted(set(first_of.values()))]
    ds = ray.data.from_items([{"row": r["row"], "path": r["path"]} for r in unique])
    remote = {}
    if max_retries is not None:
        remote.update(max_restarts=int(max_retries), max_task_retries=int(max_retries))
    remote.update(ray_remote_args or {})
    kwargs = dict(model=os.fspath(model),
                  out_dir=os.path.abspath(out), threads=int(threads_per_actor), weights=weights,
                  precision=precision, conv_algorithm=conv_algorithm, **clip_options)
    with warnings.catch_warnings():
        if max_retries is not None and not ray_remote_args:
            # Ray Data (2.60) warns on any remote argument passed by keyword, yet has no named
            # parameter for restarts: its actor pool reads max_restarts / max_task_retries from
            # exactly these (and defaults them to -1, unbounded).
            warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        results = ds.map_batches(encoder or LatentEncoder, fn_constructor_kwargs=kwargs,
                                 compute=ray.data.ActorPoolStrategy(size=int(num_actors)),
                                 batch_size=int(batch_size),
                                 num_cpus=int(threads_per_actor), **remote).take_all()

    by_row = {}
    for r in results:
        row = int(r["row"])
        if row in by_row:
            raise RuntimeError(f"internal: row {row} came back twice from the actors")
        by_row[row] = r
    missing = [r["row"] for r in unique if r["row"] not in by_row]
    if missing:
        raise RuntimeError(f"internal: rows {missing[:10]} did not come back from the actors")
    options = {r["cache_options_json"] for r in by_row.values()}
    if len(options) != 1:
        raise RuntimeError("the actors disagree on the cache options (different model files or "
                           "options on different machines?): " + " / ".join(sorted(options)))

    rows, counts = [], dict(encoded=0, resumed=0, duplicates=0, failed=0)
    for t in table:
        first = by_row[first_of[os.path.realpath(t["path"])]]
        duplicate = first["row"] != t["row"]
        row = {"row": t["row"], "path": t["path"], "status": first["status"],
               "latents_path": first["latents_path"], "latent_shape": first["latent_shape"],
               "error": first["error"], "latent_key": first["latent_key"],
               "resumed": bool(first["resumed"]), "duplicate": duplicate,
               "seconds": 0.0 if duplicate else float(first["seconds"])}
        rows.append(row)
        if row["status"] == "failed":
            counts["failed"] += 1
        elif duplicate:
            counts["duplicates"] += 1
        elif row["resumed"]:
            counts["resumed"] += 1
        else:
            counts["encoded"] += 1
    index = _vvae.merge_cache_index(path, rows, out, options.pop(), fmt)
    return dict(rows=rows, index_path=index, wall_seconds=time.monotonic() - start, **counts)
