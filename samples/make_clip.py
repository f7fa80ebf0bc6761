#!/usr/bin/env python3
"""Regenerates samples/clip.safetensors: an 8-frame 64x64 RGB clip with real motion (a disc
crossing a drifting colour gradient), values in [-1, 1], tensor `x` shaped (1, 3, 8, 64, 64).
Pure standard library, deterministic."""
import json
import math
import struct
import sys

T, H, W = 8, 64, 64


def value(c, t, y, x):
    cx, cy = 14 + 5 * t, 20 + 3 * t
    gradient = [math.sin((x + 2 * t) / 9.0), math.cos((y - t) / 11.0),
                math.sin((x + y) / 15.0 + t / 4.0)][c]
    disc = 1.0 / (1.0 + math.exp((math.hypot(x - cx, y - cy) - 10.0) * 1.5))
    v = 0.6 * gradient * (1 - disc) + disc * [0.9, -0.5, 0.2][c]
    return max(-1.0, min(1.0, v))


def main(path):
    vals = [value(c, t, y, x) for c in range(3) for t in range(T) for y in range(H) for x in range(W)]
    data = struct.pack('<%df' % len(vals), *vals)
    header = json.dumps({
        "__metadata__": {"description": "vvae sample: 8 frames 64x64, moving disc over a drifting gradient",
                         "layout": "B,C,T,H,W"},
        "x": {"dtype": "F32", "shape": [1, 3, T, H, W], "data_offsets": [0, len(data)]}}).encode()
    header += b' ' * ((8 - len(header) % 8) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(header)) + header + data)


if __name__ == '__main__':
    main(sys.argv[1] if len(sys.argv) > 1 else 'samples/clip.safetensors')
