#!/usr/bin/env python3
"""Runs vvae and PyTorch side by side on the full-size presets (random weights), same machine,
same thread count, and prints the BENCHMARKS.md tables.

    /usr/bin/python3 bench/run_benchmarks.py [--build build] [--threads 2] [--repeat 3]
                                             [--only flux-ae] [--no-torch]

PyTorch results are cached per machine and torch version in bench/results/torch-cache.json
(they take minutes); vvae results are always measured afresh. Everything measured is appended
to bench/results/<date>.json."""
import argparse
import datetime
import hashlib
import json
import os
import platform
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))

# (preset, direction, clip shape, vvae modes, timed runs). Runs of a minute or more are timed
# once (vvae after an untimed warm-up, PyTorch without one: its first-call overhead is small
# next to minutes).
CASES = [
    ("flux-ae", "encode", "1,3,1,256,256", ["fp32", "bf16", "winograd"], 3),
    ("flux-ae", "decode", "1,3,1,256,256", ["fp32", "bf16", "winograd"], 3),
    ("flux-ae", "encode", "1,3,1,512,512", ["fp32", "bf16", "winograd"], 1),
    ("flux-ae", "decode", "1,3,1,512,512", ["fp32", "bf16", "winograd"], 1),
    ("hunyuan-vae", "encode", "1,3,9,256,256", ["fp32", "bf16"], 1),
    ("hunyuan-vae", "decode", "1,3,9,256,256", ["fp32", "bf16"], 1),
    ("dc-ae-f32t4c128", "encode", "1,3,8,256,256", ["fp32", "bf16"], 1),
    ("dc-ae-f32t4c128", "decode", "1,3,8,256,256", ["fp32", "bf16"], 1),
]
# Peak memory against clip length with tiling on (vvae alone).
FLAT_CASES = [("hunyuan-vae", d, f"1,3,{t},128,128", ["--tile-frames", "16"]) for d in ("encode", "decode")
              for t in (17, 33, 65)]

# --smoke: the runner itself on the small golden test models (CI), once each, no PyTorch.
GOLDEN = os.path.join(os.path.dirname(HERE), "tests", "data", "golden")
SMOKE_CASES = [(os.path.join(GOLDEN, m), d, shape, ["fp32", "bf16", "winograd"], 1)
               for m, shape in (("ae2d_small", "1,3,2,32,32"), ("hunyuan_small", "1,3,5,32,32"),
                                ("dcae_small", "1,3,8,64,64"))
               for d in ("encode", "decode")]
SMOKE_FLAT = [(os.path.join(GOLDEN, "hunyuan_small"), "decode", f"1,3,{t},32,32", ["--tile-frames", "16"])
              for t in (17, 33)]

MODE_FLAGS = {"fp32": [], "bf16": ["--precision", "bf16"], "winograd": ["--conv-algo", "winograd"]}


def machine_id():
    cpu = ""
    try:
        cpu = next(l for l in open("/proc/cpuinfo") if l.startswith("model name")).split(":", 1)[1].strip()
    except (OSError, StopIteration):
        pass
    return f"{platform.node()}|{cpu}|{os.cpu_count()}"


def run_json(cmd):
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {out.stderr.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def vvae(build, preset, direction, shape, mode, extra, threads, repeat, smoke=False):
    cmd = [os.path.join(build, "bench", "vvae_bench_models"), preset, direction, shape,
           "--threads", str(threads), "--repeat", str(repeat)] + MODE_FLAGS[mode] + extra
    if smoke:
        cmd.append("--smoke")
    return run_json(cmd)


def torch_run(preset, direction, shape, layout, threads, repeat, cache):
    key = hashlib.sha1(json.dumps([machine_id(), preset, direction, shape, layout, threads]).encode()).hexdigest()
    if key not in cache:
        cmd = ["/usr/bin/python3", os.path.join(HERE, "torch", "bench_torch.py"), preset, direction, shape,
               "--layout", layout, "--threads", str(threads), "--repeat", str(repeat),
               "--warmup", "1" if repeat > 1 else "0"]
        cache[key] = run_json(cmd)
    return cache[key]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--build", default="build")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default=None, help="run only this preset")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--smoke", action="store_true",
                   help="check the runner: small test models, one run each, no PyTorch, no results file")
    a = p.parse_args()
    cases, flat_cases = (SMOKE_CASES, SMOKE_FLAT) if a.smoke else (CASES, FLAT_CASES)
    if a.smoke:
        a.no_torch = True

    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    cache_path = os.path.join(HERE, "results", "torch-cache.json")
    cache = json.load(open(cache_path)) if os.path.exists(cache_path) else {}
    rows, flat = [], []
    for preset, direction, shape, modes, runs in cases:
        if a.only and preset != a.only:
            continue
        repeat = min(runs, a.repeat)
        row = {"preset": preset, "direction": direction, "shape": shape, "vvae": {}, "torch": {}}
        for mode in modes:
            row["vvae"][mode] = vvae(a.build, preset, direction, shape, mode, [], a.threads, repeat, a.smoke)
            print(json.dumps(row["vvae"][mode]), file=sys.stderr)
        if not a.no_torch:
            for layout in ("contiguous", "channels_last"):
                row["torch"][layout] = torch_run(preset, direction, shape, layout, a.threads, repeat, cache)
                json.dump(cache, open(cache_path, "w"), indent=1)
                print(json.dumps(row["torch"][layout]), file=sys.stderr)
        rows.append(row)
    for preset, direction, shape, extra in flat_cases:
        if a.only and preset != a.only:
            continue
        flat.append(vvae(a.build, preset, direction, shape, "fp32", extra, a.threads, 1, a.smoke))
        print(json.dumps(flat[-1]), file=sys.stderr)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    if not a.smoke:
        json.dump({"machine": machine_id(), "threads": a.threads, "rows": rows, "flat": flat},
                  open(os.path.join(HERE, "results", f"{stamp}.json"), "w"), indent=1)
    print_tables(rows, flat, a.threads)


def executed_percent(v):
    """Share of the FMA peak by the FLOPs the primitives really run (fused upsample-convolutions
    run fewer than the direct convolution they stand for)."""
    if not v.get("fma_peak_gflops") or not v.get("seconds"):
        return 0.0
    return 100.0 * v.get("executed_conv_gflop", v["conv_gflop"]) / v["seconds"] / v["fma_peak_gflops"]


def print_tables(rows, flat, threads):
    print(f"| model | op | clip | PyTorch contiguous | PyTorch channels-last | vvae fp32 | speed-up | "
          f"conv share | % of FMA peak (direct FLOPs) | % of FMA peak (executed FLOPs) | RSS PyTorch | RSS vvae | RSS ratio |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vvae"]["fp32"]
        t = r["torch"]
        base = min((x["seconds"] for x in t.values()), default=None)
        base_rss = min((x["peak_rss_mib"] for x in t.values()), default=None)
        fmt = lambda x: f"{x:.2f} s" if x is not None else "-"
        print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {fmt(t.get('contiguous', {}).get('seconds'))} | "
              f"{fmt(t.get('channels_last', {}).get('seconds'))} | {v['seconds']:.2f} s | "
              f"{(base / v['seconds']) if base else 0:.2f}x | {v['seconds'] / v['conv_seconds'] if v['conv_seconds'] else 0:.2f}x | "
              f"{v['percent_of_peak']:.0f}% | {executed_percent(v):.0f}% | {base_rss or 0:.0f} MiB | {v['peak_rss_mib']:.0f} MiB | "
              f"{(v['peak_rss_mib'] / base_rss) if base_rss else 0:.2f} |")
    print()
    print("| model | op | clip | mode | vvae | speed-up vs PyTorch | effective GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        base = min((x["seconds"] for x in r["torch"].values()), default=None)
        for mode, v in r["vvae"].items():
            print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {mode} | {v['seconds']:.2f} s | "
                  f"{(base / v['seconds']) if base else 0:.2f}x | {v['gflops']:.0f} |")
    print()
    print("| model | op | clip | process before the model | weights | largest activation | peak live activations | "
          "scratchpad | bound: process + weights + 3 x largest + scratchpad | peak RSS vvae | within bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vvae"]["fp32"]
        bound = v["baseline_rss_mib"] + v["weights_mib"] + 3 * v["largest_activation_mib"] + v["scratchpad_mib"]
        print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {v['baseline_rss_mib']:.0f} MiB | "
              f"{v['weights_mib']:.0f} MiB | "
              f"{v['largest_activation_mib']:.0f} MiB | {v['peak_activations_mib']:.0f} MiB | "
              f"{v['scratchpad_mib']:.0f} MiB | {bound:.0f} MiB | {v['peak_rss_mib']:.0f} MiB | "
              f"{'yes' if v['peak_rss_mib'] <= bound else 'no'} |")
    if flat:
        print()
        print("| model | op | clip (tiled, 16-frame tiles) | peak RSS |")
        print("|---|---|---|---|")
        for v in flat:
            print(f"| {v['model']} | {v['direction']} | {v['input']} | {v['peak_rss_mib']:.0f} MiB |")


if __name__ == "__main__":
    main()
