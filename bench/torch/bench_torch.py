#!/usr/bin/env python3
"""Times one full-size preset in PyTorch (fp32, torch.no_grad(), a fixed thread count), one
direction, one clip shape, one memory layout; prints one JSON line like vvae_bench_models.

    /usr/bin/python3 bench/torch/bench_torch.py flux-ae decode 1,3,1,256,256 \
        --layout channels_last --threads 2 --repeat 3
Run one layout per process so the peak RSS is that layout's own."""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(__file__))
import families  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("preset")
    p.add_argument("direction", choices=["encode", "decode"])
    p.add_argument("shape")
    p.add_argument("--layout", choices=["contiguous", "channels_last"], default="contiguous")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first (0 for runs of minutes)")
    a = p.parse_args()

    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    family, args = families.PRESETS[a.preset]
    model = families.BUILDERS[family](args).eval()
    # Channels-last for the 2-D family's weights, channels-last-3d for the 3-D families'.
    cl = torch.channels_last if family == "ae2d" else torch.channels_last_3d
    fmt = cl if a.layout == "channels_last" else torch.contiguous_format
    model = model.to(memory_format=fmt)
    clip = [int(v) for v in a.shape.split(",")]
    x = torch.rand(clip) * 2 - 1
    with torch.no_grad():
        if a.direction == "decode":
            x = families.latent_like(a.preset, clip)
        times = []
        for r in range(a.warmup + a.repeat):
            start = time.perf_counter()
            if a.direction == "encode":
                model.encode(x)
            else:
                model.decode(x)
            if r >= a.warmup:
                times.append(time.perf_counter() - start)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    print(json.dumps({"preset": a.preset, "direction": a.direction, "input": clip, "layout": a.layout,
                      "threads": a.threads, "runs": a.repeat, "warmup": a.warmup, "torch": torch.__version__, "seconds": statistics.median(times),
                      "peak_rss_mib": round(rss, 1)}))


if __name__ == "__main__":
    main()
