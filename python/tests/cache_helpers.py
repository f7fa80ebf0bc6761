"""Generated clips and manifests for the latent cache tests (test_cache.py, test_ray.py)."""

import csv
import os
import pathlib

import numpy as np

from conftest import GOLDEN

MODEL = GOLDEN / "ae2d_small"
CLIPS = 21  # and one duplicate row: 22 rows


def clip(k: int, t: int = 3, h: int = 32, w: int = 32):
    """A smooth clip, different for every k."""
    tt, yy, xx = np.meshgrid(np.arange(t), np.arange(h), np.arange(w), indexing="ij")
    r = np.sin(xx / w * (2 + k * 0.37) + tt * 0.3 + k)
    g = np.cos(yy / h * (3 + k * 0.11) - tt * 0.2)
    b = np.sin((xx + yy) / (w + h) * 4 + k * 0.5)
    return np.stack([r, g, b])[None].astype(np.float32) * 0.8


def make_clips(folder: pathlib.Path, count: int = CLIPS) -> list:
    import vvae

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        path = folder / f"clip{k:02d}.mp4"
        vvae.write_video(path, clip(k), fps=8)
        paths.append(str(path))
    return paths


def write_manifest(path: pathlib.Path, clips: list, duplicate: int = 3) -> pathlib.Path:
    """A manifest of the clips with a caption column, clip `duplicate` named twice."""
    rows = list(clips)
    if duplicate is not None:
        rows.insert(len(rows) // 2, clips[duplicate])
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "text"])
        for i, p in enumerate(rows):
            w.writerow([p, f"caption, {i}"])
    return path


def make_dataset(folder: pathlib.Path) -> pathlib.Path:
    """The test dataset in `folder`: CLIPS clips and folder/data.csv naming them (one twice)."""
    return write_manifest(folder / "data.csv", make_clips(folder / "clips"))


def read_index(out) -> list:
    with open(os.path.join(out, "index.csv"), newline="") as f:
        return list(csv.DictReader(f))


def latent_files(out) -> dict:
    """Every file under out/latents, by its path relative to out, with its bytes."""
    files = {}
    for root, _, names in os.walk(os.path.join(out, "latents")):
        for name in names:
            full = os.path.join(root, name)
            files[os.path.relpath(full, out)] = pathlib.Path(full).read_bytes()
    return files


def comparable_index(out) -> list:
    """The index with the cache folder taken out of latents_path."""
    rows = read_index(out)
    prefix = os.path.abspath(out) + os.sep
    for r in rows:
        if r["latents_path"]:
            assert r["latents_path"].startswith(prefix), r["latents_path"]
            r["latents_path"] = r["latents_path"][len(prefix):]
    return rows
