#!/usr/bin/env python3
"""Checks the benchmark's PyTorch definitions against the golden vectors (max |ours - ref| /
max |ref| <= 1e-4 on every tensor), so the side-by-side benchmark compares the same function.

    /usr/bin/python3 bench/torch/check_golden.py [tests/data/golden]"""
import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(__file__))
import st  # noqa: E402
import families  # noqa: E402


def rel(a, b):
    return float((a - b).abs().max() / b.abs().max())


def main(root):
    worst, failed = 0.0, False
    for case in sorted(os.listdir(root)):
        cfg_path = os.path.join(root, case, "config.json")
        if not os.path.exists(cfg_path):
            continue
        cfg = json.load(open(cfg_path))
        if cfg["family"] not in families.BUILDERS:
            print(f"{case}: family {cfg['family']} has no PyTorch definition yet, skipped")
            continue
        model = families.BUILDERS[cfg["family"]](cfg["model_args"]).double().eval()
        model.load_state_dict({k: v.double() for k, v in st.load(os.path.join(root, case, "weights.safetensors")).items()})
        io = {k: v.double() for k, v in st.load(os.path.join(root, case, "io.safetensors")).items()}
        with torch.no_grad():
            errors = families.CHECKS[cfg["family"]](model, io)
        for name, err in errors.items():
            worst = max(worst, err)
            ok = err <= 1e-4
            failed |= not ok
            print(f"{case:22s} {name:14s} {err:.2e} {'ok' if ok else 'FAIL'}")
    print(f"worst relative error {worst:.2e}")
    keys = os.path.join(root, "keys")
    failed |= not check_full_size_keys(keys if os.path.isdir(keys) else os.path.join(root, "..", "keys"))
    return 1 if failed else 0


def check_full_size_keys(keys_dir):
    """The full-size presets' parameter names and shapes equal the released models' lists."""
    ok = True
    for preset, (family, args) in families.PRESETS.items():
        path = os.path.join(keys_dir, preset + ".txt")
        if not os.path.exists(path):
            continue
        want = {}
        for line in open(path):
            if line.strip() and not line.startswith("#"):
                name, shape = line.split(" ", 1)
                want[name] = json.loads(shape)
        got = {k: list(v.shape) for k, v in families.BUILDERS[family](args).state_dict().items()}
        same = got == want
        ok &= same
        print(f"{preset:22s} {len(got)} parameters {'match the released list' if same else 'DIFFER from ' + path}")
    return ok


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "tests/data/golden"))
