"""Videos, images, latent files and reconstruction (vvae's media library, FFmpeg)."""

from __future__ import annotations

import logging
import os
from typing import Optional

from . import _vvae
from ._arrays import add_time, check_array

logger = logging.getLogger("vvae")


def _engine_model(model):
    """The engine's model behind a vvae autoencoder (or None)."""
    if model is None or isinstance(model, _vvae.Model):
        return model
    if hasattr(model, "_model"):
        return model._model("encode")
    raise TypeError(f"model must be a vvae autoencoder, got {type(model).__name__}")


def _log_clip(meta: dict) -> None:
    for note in meta.get("notes", []):
        logger.info("%s: %s", meta.get("source", ""), note)
    for warning in meta.get("warnings", []):
        logger.warning("%s: %s", meta.get("source", ""), warning)


def read_video(path, num_frames: Optional[int] = None, resolution: Optional[str] = None, *,
               size: Optional[tuple] = None, frame_interval: int = 1,
               fps_max: Optional[float] = None, model=None, framework: str = "numpy"):
    """Reads a video or image as Open-Sora's loader does: (x, info), x (1, 3, T, H, W) float32 in
    [-1, 1].

    num_frames: frames taken at the sampling interval (frame_interval times ceil(fps / fps_max)),
    from frame 0; resolution: one of Open-Sora's names ("256px", "720p", "512px_ar1:1", ...),
    resize-cropped to its closest aspect-ratio bucket; size: (H, W) to resize-crop to exactly.
    With `model`, the frame count and size are made valid for it (frames dropped at the end, the
    frame cropped to its compression). framework: "numpy" or "torch".
    info: source, fps, indices, interval, resize_crop, bucket, video (the file's own), notes.
    """
    height, width = (0, 0) if size is None else (int(size[0]), int(size[1]))
    if size is not None and (height <= 0 or width <= 0):
        raise ValueError(f"size must be (H, W) with positive sides, got {size}")
    x, meta = _vvae.load_clip(os.fspath(path), _engine_model(model),
                              num_frames=int(num_frames or 0), frame_interval=int(frame_interval),
                              fps_max=float(fps_max or 0), resolution=resolution or "",
                              height=height, width=width, framework=framework)
    _log_clip(meta)
    return x, meta


def write_video(path, x, fps: float = 16, *, crf: int = 23, batch: int = 0) -> None:
    """Writes x (B, 3, T, H, W) or (3, T, H, W), values in [-1, 1], as Open-Sora's save_sample:
    an H.264 .mp4 / .mkv / .mov, or a .png for one frame. The file appears only once complete."""
    if getattr(x, "ndim", None) == 4:
        x = x[None]
    x = check_array(x, "x")
    _vvae.write_video(os.fspath(path), x, fps=float(fps), crf=int(crf), batch=int(batch))


def clip_metrics(a, b) -> list:
    """PSNR and SSIM of clips b against a (both (B, 3, T, H, W) in [-1, 1]) on the 8-bit frames
    save_sample makes, one dict per clip: psnr, ssim (means over frames) and per frame."""
    return _vvae.clip_metrics(check_array(a, "a"), check_array(b, "b"))


def reconstruct(model, path, out_dir, num_frames: Optional[int] = None,
                resolution: Optional[str] = None, *, size: Optional[tuple] = None,
                frame_interval: int = 1, fps_max: Optional[float] = None, sample: bool = False,
                seed: int = 0, fps: Optional[float] = None, crf: int = 23, compare: bool = False,
                latents: bool = False) -> dict:
    """`vvae reconstruct` for one clip: reads it, encodes, decodes, writes orig/, recn/ (and
    compare/, latents/) under out_dir, and returns its result with psnr and ssim. A clip an
    earlier run completed with the same settings is not redone (result["resumed"])."""
    height, width = (0, 0) if size is None else (int(size[0]), int(size[1]))
    # No output may replace what the run reads: the model's files too.
    load_args = getattr(model, "_load_args", {})
    inputs = [load_args[k] for k in ("model", "weights", "config") if load_args.get(k)]
    files = []
    for item in inputs:
        if os.path.isdir(item):
            files += [os.path.join(item, f) for f in os.listdir(item)]
        else:
            files.append(item)
    result = _vvae.reconstruct_clip(
        _engine_model(model), os.fspath(path), os.fspath(out_dir),
        num_frames=int(num_frames or 0), frame_interval=int(frame_interval),
        fps_max=float(fps_max or 0), resolution=resolution or "", height=height, width=width,
        sample=sample, seed=int(seed), fps=float(fps or 0), crf=int(crf), compare=compare,
        latents=latents, model_label=str(inputs[0]) if inputs else "", inputs=files)
    for note in result["notes"]:
        logger.info("%s: %s", result["path"], note)
    for warning in result["warnings"]:
        logger.warning("%s: %s", result["path"], warning)
    return result


def save_latent(path, z, mean=None, logvar=None, *, model=None, metadata: Optional[dict] = None,
                input_shape: Optional[tuple] = None, sampled: bool = False, seed: int = 0) -> None:
    """Writes a latent file as `vvae encode` does: z (and mean, logvar), float32, with the
    model's metadata when `model` is given; readable by safetensors.torch.load_file."""
    def five(t, name):
        if t is None:
            return None
        t = check_array(t, name, (4, 5))
        return add_time(t) if t.ndim == 4 else t

    meta = {str(k): str(v) for k, v in (metadata or {}).items()}
    _vvae.write_latent_file(os.fspath(path), _engine_model(model), five(z, "z"),
                            five(mean, "mean"), five(logvar, "logvar"), metadata=meta,
                            input_shape=list(input_shape) if input_shape else None,
                            sampled=sampled, seed=int(seed))


def load_latent(path, name: str = "", framework: str = "numpy") -> dict:
    """Reads a latent file: {"z", "mean", "logvar" (None when absent), "metadata"}."""
    return _vvae.read_latent_file(os.fspath(path), name, framework)


__all__ = ["read_video", "write_video", "clip_metrics", "reconstruct", "save_latent",
           "load_latent"]
