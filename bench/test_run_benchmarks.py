#!/usr/bin/env python3
"""Tests of bench/run_benchmarks.py that need no peer installed (ctest bench_runner_unit):

    python3 bench/test_run_benchmarks.py BUILD_DIR

- the peer cache key separates machines that share a brand string (the AVX-512 and the AVX2
  "AMD EPYC"), thread counts and peer versions, and a cached result is served only under its key;
- modes the CPU (or VVAE_MAX_ISA) cannot run are reported skipped, with vvae's reason, by the
  runner (under VVAE_MAX_ISA=avx2: bf16, and nothing else);
- a vvae mode that crashes is recorded as failed, not fatal to the run;
- --out takes the results (and nothing is written into bench/results)."""
import copy
import json
import os
import subprocess
import sys
import tempfile
import types
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import run_benchmarks as rb  # noqa: E402

BUILD = None

ZEN4 = {"cpu": "AMD EPYC", "cpu_family": "25", "cpu_model": "17", "stepping": "1",
        "isa": ["avx", "avx2", "avx512_bf16", "avx512bw", "avx512dq", "avx512f", "avx512vl", "fma"],
        "cpus": 2, "threads": 2, "arch": "x86_64", "env": {}}
ZEN3 = dict(ZEN4, cpu_model="1", isa=["avx", "avx2", "fma"])


def fake_peers(machine, versions=None, cache=None):
    """A Peers with the given machine and versions, no interpreter started."""
    p = rb.Peers.__new__(rb.Peers)
    p.a = types.SimpleNamespace(threads=2, peers=list(rb.PEERS))
    p.machine = machine
    p.versions = versions or {"venv": {"python": "3.11.2", "torch": "2.13.0+cpu", "onnxruntime": "1.32.0",
                                       "openvino": "2026.4.1", "onnx": "1.23.2"},
                              "debian": {"python": "3.11.2", "torch": "1.13.0a0"}}
    p.why_not = {}
    p.status = {peer: p._status(peer) for peer in rb.PEERS}
    p.cache = cache if cache is not None else {}
    p.cache_path = os.devnull
    p.save_cache = lambda: None
    return p


CASE = {"model": "flux-ae", "direction": "encode", "shape": "1,3,1,256,256", "repeat": 3, "threads": 2}
ORT = rb.PEERS["ort"][0]


class CacheKey(unittest.TestCase):
    def test_same_brand_different_cpu(self):
        self.assertEqual(ZEN3["cpu"], ZEN4["cpu"])
        self.assertNotEqual(fake_peers(ZEN3).key(ORT, CASE)[0], fake_peers(ZEN4).key(ORT, CASE)[0])

    def test_same_machine_same_key(self):
        self.assertEqual(fake_peers(ZEN3).key(ORT, CASE)[0], fake_peers(copy.deepcopy(ZEN3)).key(ORT, CASE)[0])

    def test_model_and_family_alone_differ(self):
        self.assertNotEqual(fake_peers(ZEN4).key(ORT, CASE)[0],
                            fake_peers(dict(ZEN4, cpu_model="97")).key(ORT, CASE)[0])

    def test_threads_and_env(self):
        base = fake_peers(ZEN3).key(ORT, CASE)[0]
        self.assertNotEqual(base, fake_peers(dict(ZEN3, threads=1)).key(ORT, CASE)[0])
        self.assertNotEqual(base, fake_peers(dict(ZEN3, env={"ONEDNN_MAX_CPU_ISA": "AVX2"})).key(ORT, CASE)[0])

    def test_peer_versions(self):
        a = fake_peers(ZEN3)
        v = copy.deepcopy(a.versions)
        v["venv"]["onnxruntime"] = "1.33.0"
        self.assertNotEqual(a.key(ORT, CASE)[0], fake_peers(ZEN3, v).key(ORT, CASE)[0])
        # ONNX peers run torch's export: its version is theirs too.
        v = copy.deepcopy(a.versions)
        v["venv"]["torch"] = "2.14.1"
        self.assertNotEqual(a.key(ORT, CASE)[0], fake_peers(ZEN3, v).key(ORT, CASE)[0])
        t1 = rb.PEERS["torch1"][0]
        v = copy.deepcopy(a.versions)
        v["debian"]["torch"] = "1.13.1"
        self.assertNotEqual(a.key(t1, CASE)[0], fake_peers(ZEN3, v).key(t1, CASE)[0])

    def test_case(self):
        a = fake_peers(ZEN3)
        self.assertNotEqual(a.key(ORT, CASE)[0], a.key(ORT, dict(CASE, shape="1,3,1,512,512"))[0])

    def test_served_only_under_its_key(self):
        zen4 = fake_peers(ZEN4)
        k, material = zen4.key(ORT, CASE)
        cache = {k: {"key": material, "result": {"status": "ok", "seconds": 1.0}}}
        # The machine that measured it gets it back without running anything.
        got = fake_peers(ZEN4, cache=cache).measure("flux-ae", "encode", "1,3,1,256,256", 3, [ORT])
        self.assertEqual(got["ort"]["seconds"], 1.0)
        self.assertTrue(got["ort"]["cached"])
        # Another machine with the same brand string must measure it: here nothing can run (no
        # reference configuration), so nothing comes back, and certainly not the cached figure.
        zen3 = fake_peers(ZEN3, cache=cache)
        zen3.reference_config = lambda: None
        self.assertEqual(zen3.measure("flux-ae", "encode", "1,3,1,256,256", 3, [ORT]), {})

    def test_machine_info_reads_this_cpu(self):
        m = rb.machine_info(2)
        self.assertTrue(m["cpu"])
        self.assertEqual(m["threads"], 2)
        if os.path.exists("/proc/cpuinfo") and m["arch"] == "x86_64":
            with open("/proc/cpuinfo") as f:
                flags = next(l for l in f if l.startswith("flags")).split()
            self.assertEqual("avx2" in flags, "avx2" in m["isa"])
            self.assertEqual("avx512f" in flags, "avx512f" in m["isa"])


class Runner(unittest.TestCase):
    def test_capped_isa_skips_bf16_only(self):
        model = os.path.join(rb.GOLDEN, "ae2d_small")
        old = os.environ.get("VVAE_MAX_ISA")
        os.environ["VVAE_MAX_ISA"] = "avx2"
        try:
            skipped = rb.vvae_unavailable_modes(BUILD, list(rb.MODE_FLAGS), model, "decode", "1,3,2,32,32")
        finally:
            if old is None:
                del os.environ["VVAE_MAX_ISA"]
            else:
                os.environ["VVAE_MAX_ISA"] = old
        self.assertEqual(list(skipped), ["bf16"])
        self.assertIn("AVX512-BF16", skipped["bf16"])

    def test_crashing_mode_is_failed_not_fatal(self):
        with tempfile.TemporaryDirectory() as build:
            os.makedirs(os.path.join(build, "bench"))
            fake = os.path.join(build, "bench", "vvae_bench_models")
            with open(fake, "w") as f:
                f.write("#!/bin/sh\nkill -SEGV $$\n")
            os.chmod(fake, 0o755)
            r = rb.vvae(build, "flux-ae", "decode", "1,3,1,8,8", "direct", [], 2, 1, smoke=True)
        self.assertEqual(r["mode"], "direct")
        self.assertIn("signal 11", r["failed"])
        self.assertNotIn("seconds", r)

    def test_smoke_writes_to_out_only(self):
        results = os.path.join(HERE, "results")
        before = sorted(os.listdir(results)) if os.path.isdir(results) else []
        with tempfile.TemporaryDirectory() as out:
            model = os.path.join(rb.GOLDEN, "ae2d_small")
            cmd = [sys.executable, os.path.join(HERE, "run_benchmarks.py"), "--smoke", "--build", BUILD,
                   "--only", model, "--direction", "decode", "--out", out]
            run = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, VVAE_MAX_ISA="avx2"))
            self.assertEqual(run.returncode, 0, run.stderr)
            files = [f for f in os.listdir(out) if f.endswith(".json")]
            self.assertEqual(len(files), 1, files)
            with open(os.path.join(out, files[0])) as f:
                res = json.load(f)
            (row,) = res["rows"]
            for mode in ("fp32", "winograd"):
                self.assertIn("seconds", row["vvae"][mode])
                self.assertEqual(row["vvae"][mode]["mode"], mode)
            self.assertIn("AVX512-BF16", row["vvae"]["bf16"]["skipped"])
            self.assertIn("bf16", res["vvae_skipped_modes"])
        after = sorted(os.listdir(results)) if os.path.isdir(results) else []
        self.assertEqual(before, after)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    BUILD = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=2)
