"""A dataset encoded once into a latent cache: `vvae encode --manifest` from Python.

The cache is the CLI's (include/vvae/latent_cache.hpp): OUT/latents/<options id>/<k0k1>/<key>.
safetensors (or .pt with format="opensora"), one per clip, keyed by the content of the source,
the model and the options, and OUT/index.csv with every manifest row, its latents_path,
latent_shape, status and error. vvae.ray spreads the same work over a Ray cluster.
"""

import os
from typing import Callable, Optional

from . import _vvae

_FORMATS = ("safetensors", "opensora")


def _model_files(load_args: dict):
    """What the CLI counts as the model's files: (weights files, every input file)."""
    weights, inputs = [], []
    model = load_args.get("model") or ""
    if model:
        if os.path.isdir(model):
            weights.append(os.path.join(model, "weights.safetensors"))
            inputs += [os.path.join(model, "config.json"), os.path.join(model, "weights.safetensors")]
        elif os.path.isfile(model):
            weights.append(model)
            inputs.append(model)
    for key in ("weights", "config"):
        if load_args.get(key):
            inputs.append(load_args[key])
    if load_args.get("weights"):
        weights.append(load_args["weights"])
    return weights, inputs


def _load_model(model, weights=None, precision: str = "fp32", conv_algorithm: str = "auto"):
    """(engine model, load args) for a model folder / checkpoint / preset path, or a loaded vvae
    autoencoder (from_pretrained)."""
    if isinstance(model, (str, os.PathLike)):
        path = os.fspath(model)
        if path not in _vvae.preset_names() and not os.path.exists(path):
            raise FileNotFoundError(
                f"model {path!r} is neither a local model folder, a checkpoint nor a preset "
                f"({', '.join(_vvae.preset_names())})")
        load_args = dict(model=path, weights=os.fspath(weights) if weights else "",
                         precision=precision, conv_algorithm=conv_algorithm)
        return _vvae.Model.load(**load_args), load_args
    if weights is not None:
        raise ValueError("weights= goes with a model path, not with a loaded model")
    if hasattr(model, "_model") and hasattr(model, "_load_args"):
        return model._model("encode"), dict(model._load_args)
    raise TypeError("model must be a model folder, checkpoint or preset path, or a vvae "
                    f"autoencoder (vvae.from_pretrained), got {type(model).__name__}")


def _cache_args(out_dir, *, resume=False, num_frames=None, frame_interval=1, fps_max=None,
                resolution=None, size=None, sample=False, seed=0, format="safetensors",
                shard=None, load_args=None, max_memory=None) -> dict:
    """The engine's cache options, checked, as keyword arguments."""
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if num_frames is not None and int(num_frames) < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if int(frame_interval) < 1:
        raise ValueError(f"frame_interval must be >= 1, got {frame_interval}")
    if fps_max is not None and float(fps_max) <= 0:
        raise ValueError(f"fps_max must be > 0, got {fps_max}")
    if size is not None and (len(size) != 2 or int(size[0]) < 1 or int(size[1]) < 1):
        raise ValueError(f"size must be (height, width), got {size!r}")
    if size is not None and resolution:
        raise ValueError("give resolution or size, not both")
    if max_memory is not None and (isinstance(max_memory, bool)
                                   or not isinstance(max_memory, (int, str))):
        raise TypeError("max_memory must be None, a byte count (int) or a size such as '8G'")
    if shard is not None and not isinstance(shard, str):
        shard = f"{int(shard[0])}/{int(shard[1])}"
    load_args = load_args or {}
    weights_files, inputs = _model_files(load_args)
    height, width = (0, 0) if size is None else (int(size[0]), int(size[1]))
    return dict(out_dir=os.fspath(out_dir), resume=bool(resume), num_frames=int(num_frames or 0),
                frame_interval=int(frame_interval), fps_max=float(fps_max or 0),
                resolution=resolution or "", height=height, width=width, sample=bool(sample),
                seed=int(seed), format=format, shard=shard or "",
                precision=load_args.get("precision", "fp32"),
                conv_algorithm=load_args.get("conv_algorithm", "auto"),
                weights_files=weights_files, inputs=inputs, max_memory=max_memory)


def _check_manifest(manifest) -> str:
    path = os.fspath(manifest)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"manifest {path!r} does not exist (a CSV with a 'path' column)")
    return path


def encode_manifest(model, manifest, out_dir, *, resume: bool = False,
                    num_frames: Optional[int] = None, frame_interval: int = 1,
                    fps_max: Optional[float] = None, resolution: Optional[str] = None,
                    size: Optional[tuple] = None, sample: bool = False, seed: int = 0,
                    format: str = "safetensors", shard=None, threads: Optional[int] = None,
                    weights=None, precision: str = "fp32", conv_algorithm: str = "auto",
                    progress: Optional[Callable] = None, max_memory=None) -> dict:
    """`vvae encode --manifest MANIFEST -o OUT_DIR`: encodes every clip of the CSV into the cache
    folder (one latent per clip) and merges out_dir/index.csv; the same files as the CLI.

    model: a model folder, checkpoint or preset path (weights=, precision=, conv_algorithm= as
    from_pretrained), or a loaded vvae autoencoder. resume: skip clips whose latent is there,
    complete, for the same source, model and options. num_frames, frame_interval, fps_max,
    resolution (Open-Sora's buckets: "256px", "360p", ...) or size=(H, W): as `reconstruct`.
    sample/seed: a draw of the posterior instead of its mode. format: "safetensors" or
    "opensora" (.pt per clip and out_dir/train.csv). shard: "i/n", (i, n) or "auto" (Slurm).
    threads: the threads of this call (default: as vvae.set_num_threads). progress: called
    after each clip with (row, done, total), row a dict as in the result; an exception it raises
    (or Ctrl-C) stops the run between clips, keeping the latents written. max_memory (bytes, or
    a size such as "8G"): a cap on the process's resident memory; each clip runs the tiling that
    fits (its row's plan says which), and the cap is part of the cache key.

    Returns {"rows": [...], "encoded", "resumed", "duplicates", "failed", "index_path",
    "wall_seconds"}; each row: row, path, status ("ok" or "failed"), latents_path,
    latent_shape ("1x16x3x32x32"), error, latent_key, resumed, duplicate, seconds, notes,
    warnings, plan (what max_memory chose, else ""). A clip that fails is recorded with its
    error and the run goes on.
    """
    engine, load_args = _load_model(model, weights, precision, conv_algorithm)
    args = _cache_args(out_dir, resume=resume, num_frames=num_frames,
                       frame_interval=frame_interval, fps_max=fps_max, resolution=resolution,
                       size=size, sample=sample, seed=seed, format=format, shard=shard,
                       load_args=load_args, max_memory=max_memory)
    path = _check_manifest(manifest)
    if progress is not None and not callable(progress):
        raise TypeError("progress must be callable (row, done, total)")
    previous = None
    if threads is not None:
        if int(threads) < 0:
            raise ValueError("threads must be >= 0 (0: all cores)")
        previous = _vvae.num_threads()
        _vvae.set_num_threads(int(threads))
    try:
        return _vvae.encode_manifest(engine, path, progress=progress, **args)
    finally:
        if previous is not None:
            _vvae.set_num_threads(previous)
