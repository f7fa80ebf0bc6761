#!/usr/bin/env python3
"""Regenerates samples/clip.mp4, the bundled sample clip: 33 frames of 144x256 at 12 fps with
real motion (a bouncing disc, a spinning bar, a panning checkerboard floor, drifting stripes),
drawn procedurally, written as a (1, 3, T, H, W) tensor in [-1, 1] and encoded to H.264 by
`vvae convert` at crf 18.

    python3 samples/make_clip.py build/vvae [samples/clip.mp4]

Pure standard library; deterministic (the mp4 bytes depend on the libx264 version)."""
import json
import math
import os
import struct
import subprocess
import sys
import tempfile

T, H, W, FPS = 33, 144, 256, 12


def smoothstep(edge, width, d):
    """1 inside (d < edge), 0 outside, with a soft edge of `width` pixels."""
    return 1.0 / (1.0 + math.exp((d - edge) / width))


def frame(t):
    disc_x = 30 + 6.0 * t
    disc_y = 70 - 40 * abs(math.sin(t * 0.3))
    angle = t * 0.15
    bar_x, bar_y = 196.0, 46.0
    ca, sa = math.cos(angle), math.sin(angle)
    pixels = []
    for y in range(H):
        for x in range(W):
            # Sky: a vertical gradient with drifting diagonal stripes.
            s = 0.5 + 0.5 * math.sin((0.8 * x + 0.6 * y) / 7.0 - 0.45 * t)
            rgb = [0.35 + 0.25 * y / H + 0.10 * s, 0.55 + 0.15 * s, 0.85 - 0.20 * y / H]
            # Floor: a checkerboard panning left, below y = 104.
            if y >= 104:
                check = ((x + 3 * t) // 16 + (y - 104) // 10) % 2
                shade = 0.25 + 0.5 * check
                rgb = [shade * 0.9, shade * 0.8, shade * 0.6]
            # A spinning bar.
            dx, dy = x - bar_x, y - bar_y
            along, across = dx * ca + dy * sa, -dx * sa + dy * ca
            bar = smoothstep(26, 0.7, abs(along)) * smoothstep(4, 0.7, abs(across))
            rgb = [c * (1 - bar) + 0.97 * bar for c in rgb]
            # A bouncing disc with a highlight.
            d = math.hypot(x - disc_x, y - disc_y)
            disc = smoothstep(17, 0.8, d)
            light = 0.25 * smoothstep(6, 2.0, math.hypot(x - disc_x + 6, y - disc_y + 6))
            tone = [0.90 + light, 0.22 + light, 0.18 + light]
            rgb = [c * (1 - disc) + k * disc for c, k in zip(rgb, tone)]
            pixels.append([min(1.0, max(0.0, c)) for c in rgb])
    return pixels


def main(vvae, out):
    frames = [frame(t) for t in range(T)]
    values = [2.0 * frames[t][i][c] - 1.0 for c in range(3) for t in range(T) for i in range(H * W)]
    data = struct.pack('<%df' % len(values), *values)
    header = json.dumps({
        "__metadata__": {"fps": str(FPS), "layout": "B,C,T,H,W"},
        "x": {"dtype": "F32", "shape": [1, 3, T, H, W], "data_offsets": [0, len(data)]}}).encode()
    header += b' ' * ((8 - len(header) % 8) % 8)
    with tempfile.TemporaryDirectory() as tmp:
        tensor = os.path.join(tmp, 'clip.safetensors')
        with open(tensor, 'wb') as f:
            f.write(struct.pack('<Q', len(header)) + header + data)
        subprocess.run([vvae, 'convert', tensor, '-o', out, '--crf', '18', '--fps', str(FPS)],
                       check=True)


if __name__ == '__main__':
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else 'samples/clip.mp4')
