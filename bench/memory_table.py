#!/usr/bin/env python3
"""The memory estimate against the measured peak at full size (issue 16's table).

For each family's preset (random weights, as bench/bench_models.cpp writes them) and a grid of
clip shapes, tiled and not, runs `vvae encode` / `vvae decode` on a tensor file with
`--max-memory` (a cap above the plan, so the command prints its estimate; or a cap below the
untiled peak, so it tiles) and measures the child process's peak resident memory (getrusage).
Prints a Markdown table: the plan, the estimate, the measured peak, measured / estimate, and
whether a capped run stayed under its cap.

    python3 bench/memory_table.py [--vvae build/vvae] [--threads 2] [--only PRESET] [--quick]

The random checkpoints are written once to the temporary directory (vvae_bench_PRESET.safetensors,
shared with vvae_bench_models); a full run takes about half an hour on 2 cores.
"""
import argparse
import json
import os
import platform
import random
import re
import resource
import struct
import subprocess
import sys
import tempfile

# preset -> (latent channels, time ratio, space ratio, causal first frame)
FAMILIES = {
    "flux-ae": (16, 1, 8, False),
    "hunyuan-vae": (16, 4, 8, True),
    "dc-ae-f32t4c128": (128, 4, 32, False),
}

# Not a flag: runs the row on an F16 copy of the preset's random checkpoint.
F16 = "(F16 checkpoint)"

# (preset, op, clip (T, H, W), extra flags, cap as a fraction of the untiled estimate or None)
GRID = [
    ("flux-ae", "encode", (1, 256, 256), [], None),
    ("flux-ae", "encode", (1, 512, 512), [], None),
    ("flux-ae", "encode", (8, 256, 256), [], None),
    ("flux-ae", "decode", (1, 256, 256), [], None),
    ("flux-ae", "decode", (1, 512, 512), [], None),
    ("flux-ae", "decode", (8, 256, 256), [], None),
    # vvae's own spatial tiles for the 2D AE, chosen under a cap (upstream's does not tile).
    ("flux-ae", "encode", (1, 512, 512), ["--no-tiling"], None),
    ("flux-ae", "encode", (1, 512, 512), ["--no-tiling"], 0.6),
    ("flux-ae", "decode", (1, 512, 512), ["--no-tiling"], None),
    ("flux-ae", "decode", (1, 512, 512), ["--no-tiling"], 0.6),
    # An F16 copy of the checkpoint: converted as each layer packs, no float32 copy kept.
    ("flux-ae", "encode", (1, 256, 256), [F16], None),
    ("flux-ae", "decode", (1, 256, 256), [F16], None),
    ("hunyuan-vae", "encode", (9, 256, 256), [], None),
    ("hunyuan-vae", "encode", (9, 384, 384), ["--no-tiling"], None),
    ("hunyuan-vae", "encode", (9, 384, 384), [], None),
    ("hunyuan-vae", "encode", (9, 384, 384), ["--no-tiling"], 0.6),
    ("hunyuan-vae", "decode", (9, 256, 256), [], None),
    ("hunyuan-vae", "decode", (9, 384, 384), ["--no-tiling"], None),
    ("hunyuan-vae", "decode", (9, 384, 384), [], None),
    ("hunyuan-vae", "decode", (9, 384, 384), ["--no-tiling"], 0.6),
    ("dc-ae-f32t4c128", "encode", (8, 256, 256), [], None),
    ("dc-ae-f32t4c128", "encode", (8, 384, 384), ["--no-tiling"], None),
    ("dc-ae-f32t4c128", "encode", (8, 384, 384), [], None),
    ("dc-ae-f32t4c128", "encode", (8, 384, 384), ["--no-tiling"], 0.75),
    ("dc-ae-f32t4c128", "decode", (8, 256, 256), [], None),
    ("dc-ae-f32t4c128", "decode", (8, 384, 384), ["--no-tiling"], None),
    ("dc-ae-f32t4c128", "decode", (8, 384, 384), [], None),
    ("dc-ae-f32t4c128", "decode", (8, 384, 384), ["--no-tiling"], 0.75),
]
QUICK = [g for g in GRID if g[2][1] == 256]


def write_tensor(path, name, shape, seed):
    """A safetensors file with one float32 tensor of uniform values in [-1, 1]."""
    count = 1
    for d in shape:
        count *= d
    header = json.dumps({name: {"dtype": "F32", "shape": list(shape),
                                "data_offsets": [0, 4 * count]}}).encode()
    header += b" " * (-len(header) % 8)
    rng = random.Random(seed)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        chunk = 1 << 16
        for start in range(0, count, chunk):
            n = min(chunk, count - start)
            f.write(struct.pack(f"<{n}f", *(rng.uniform(-1, 1) for _ in range(n))))


def write_f16_copy(src, dst):
    """The checkpoint with every F32 tensor stored as F16 (numpy's round to nearest even)."""
    import numpy as np

    with open(src, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out_header, chunks, offset = {}, [], 0
    for name, e in header.items():
        if name == "__metadata__":
            out_header[name] = e
            continue
        begin, end = e["data_offsets"]
        values = np.frombuffer(data[begin:end], dtype="<f4").astype("<f2").tobytes()
        out_header[name] = {"dtype": "F16", "shape": e["shape"],
                            "data_offsets": [offset, offset + len(values)]}
        chunks.append(values)
        offset += len(values)
    text = json.dumps(out_header).encode()
    text += b" " * (-len(text) % 8)
    with open(dst + ".tmp", "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for c in chunks:
            f.write(c)
    os.replace(dst + ".tmp", dst)


def latent_shape(preset, clip):
    channels, tr, sr, causal = FAMILIES[preset]
    t, h, w = clip
    frames = 1 + (t - 1) // tr if causal else t // tr
    return (1, channels, frames, h // sr, w // sr)


def measure_alone(cmd):
    """The peak RSS of cmd alone: measured by a fresh Python process that only runs it."""
    probe = ("import resource, subprocess, sys, json\n"
             "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
             "print(json.dumps([p.returncode, p.stdout + p.stderr,\n"
             "  resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0]))\n")
    out = subprocess.run([sys.executable, "-c", probe] + cmd, capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out)


def estimate_line(output):
    for line in output.splitlines():
        if line.startswith("--max-memory"):
            return line
    return ""


def mib(text):
    m = re.search(r"~([0-9.]+) (MiB|GiB)", text)
    if not m:
        return None
    return float(m.group(1)) * (1024 if m.group(2) == "GiB" else 1)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vvae", default="build/vvae")
    ap.add_argument("--bench", default="build/bench/vvae_bench_models")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", help="one preset")
    ap.add_argument("--quick", action="store_true", help="the 256^2 rows only")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="vvae_memory_table_")
    grid = [g for g in (QUICK if a.quick else GRID) if not a.only or g[0] == a.only]
    cpu = platform.processor() or platform.machine()
    print(f"<!-- {a.vvae}, {a.threads} threads, {cpu} -->")
    print("| model | op | clip | options | plan | estimate | measured | measured / estimate |"
          " cap | under the cap |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    untiled = {}
    failures = 0
    for preset, op, clip, flags, cap_fraction in grid:
        weights = os.path.join(tempfile.gettempdir(), f"vvae_bench_{preset}.safetensors")
        if not os.path.exists(weights):  # vvae_bench_models writes the preset's random weights
            subprocess.run([a.bench, preset, "encode", "1,3,1,64,64", "--plan-only"], check=True,
                           capture_output=True)
        shown = " ".join(flags) or "default"
        if F16 in flags:
            f16 = os.path.join(work, f"{preset}_f16.safetensors")
            if not os.path.exists(f16):
                write_f16_copy(weights, f16)
            weights, flags = f16, [f for f in flags if f != F16]
        t, h, w = clip
        if op == "encode":
            shape, name = (1, 3, t, h, w), "x"
        else:
            shape, name = latent_shape(preset, clip), "z"
        src = os.path.join(work, f"{name}_{'x'.join(map(str, shape))}.safetensors")
        if not os.path.exists(src):
            write_tensor(src, name, shape, 1)
        key = (preset, op, clip)
        if cap_fraction is not None and key in untiled:
            cap_mib = int(untiled[key] * cap_fraction)
        else:
            cap_mib = 1 << 20  # 1 TiB: above any plan, so the configured one runs
        out = os.path.join(work, "out.safetensors")
        cmd = [a.vvae, op, "--model", preset, "--weights", weights, "--input", src, "--tensor",
               name, "-o", out, "--threads", str(a.threads), "--max-memory", f"{cap_mib}M"] + flags
        rc, text, peak = measure_alone(cmd)
        if os.path.exists(out):
            os.remove(out)
        line = estimate_line(text)
        if rc != 0 or not line:
            print(f"| {preset} | {op} | {t}x{h}x{w} | {shown} | failed: "
                  f"{text.strip().splitlines()[-1] if text.strip() else rc} | | | | | |")
            failures += 1
            continue
        capped = cap_fraction is not None
        if capped:
            m = re.search(r"running with (.*) \((\d+ tiles?), ~([0-9.]+ \w+)\)", line)
            plan = f"{m.group(1)}, {m.group(2)}" if m else line
            est = mib(line.split("running with", 1)[1]) if m else None
        else:
            m = re.search(r"\((~[0-9.]+ \w+), (\d+ tiles?)\)", line)
            plan = m.group(2) if m else line
            est = mib(line)
            if "--no-tiling" in flags:
                untiled[key] = est
        ratio = peak / est if est else float("nan")
        cap_text = f"{cap_mib} MiB" if capped else "-"
        under = ("yes" if peak <= cap_mib else "**no**") if capped else "-"
        if capped and peak > cap_mib or abs(ratio - 1) > 0.10:
            failures += 1
        print(f"| {preset} | {op} | {t}x{h}x{w} | {shown} | {plan} | "
              f"{est:.0f} MiB | {peak:.0f} MiB | {ratio:.3f} | {cap_text} | {under} |",
              flush=True)
    print(f"\n{failures} row(s) outside +-10% of the estimate or above their cap")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
