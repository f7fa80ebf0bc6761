#!/usr/bin/env python3
"""Regenerates samples/clip.mp4, the bundled sample clip: 33 frames of 144x256 at 12 fps, a
camera moving over `chelsea`, a photograph scikit-image ships (Debian's python3-skimage; CC0,
Stefan van der Walt): a pan left to right with a slow zoom in. The bundled model
(models/ae2d-tiny) never saw this image in training, so the demo shows a reconstruction of
unseen content. Frames are rendered by tools/train/data.py (an image pyramid and bilinear
sampling, as the training clips) and encoded to H.264 at crf 18 by `vvae convert`.

    /usr/bin/python3 samples/make_clip.py build/vvae [samples/clip.mp4]

Deterministic (the mp4 bytes depend on the libx264 version)."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tools", "train"))

import torch  # noqa: E402

import data  # noqa: E402
import safetensors_io  # noqa: E402

T, H, W, FPS = 33, 144, 256, 12
IMAGE = data.HELDOUT_IMAGES[0]  # ("chelsea", licence, weight)


def render():
    """(1, 3, T, H, W) in [-1, 1]: the window's centre pans 2.8 px per frame to the right while
    the scale (source pixels per output pixel) falls from 1.5 to 1.25."""
    image = data.Image(*IMAGE)
    frames = []
    for t in range(T):
        scale = 1.5 * 0.99432**t
        cx = 195 + 2.8 * t
        cy = image.height / 2
        frames.append(image.frame(cx, cy, scale, (H, W), flip=False))
    return torch.stack(frames, dim=1)[None]


def main(vvae, out):
    with tempfile.TemporaryDirectory() as tmp:
        tensor = os.path.join(tmp, "clip.safetensors")
        safetensors_io.save(tensor, {"x": render()}, {"fps": FPS, "layout": "B,C,T,H,W"})
        subprocess.run([vvae, "convert", tensor, "-o", out, "--crf", "18", "--fps", str(FPS)],
                       check=True)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "clip.mp4"))
