#!/usr/bin/env python3
"""Runs vvae and its peers side by side on the full-size presets (random weights), same machine,
same thread count, each in its own process, and prints the BENCHMARKS.md tables.

    python3 bench/run_benchmarks.py [--build build] [--threads 2] [--repeat 3] [--only flux-ae]
                                    [--quick] [--peers torch2,torch2-compile,ort,openvino,torch1]
                                    [--out DIR] [--no-cache]

Peers (bench/setup-peers installs them; a peer that is not installed is skipped, saying so):
    torch2          PyTorch 2.x on the CPU, eager, contiguous and channels-last (bench/.venv)
    torch2-compile  the same under torch.compile (inductor), skipped past --compile-timeout
    ort             ONNX Runtime, on the model exported by torch.onnx.export (bench/.venv)
    openvino        OpenVINO's CPU plugin in fp32, on the same ONNX file (bench/.venv)
    torch1          Debian's PyTorch 1.13 (/usr/bin/python3 with python3-torch), both layouts

Every peer computes the same function as vvae: each is first run on the golden cases
(tests/data/golden, Open-Sora's own vectors), and on every full-size case its output is compared
with PyTorch 2.x eager's on the same weights and input; the max relative error is in the results,
and a peer more than 1e-3 off is marked failed. vvae runs its default (fp32: `--conv-algo auto`,
Winograd where it applies), oneDNN direct and bf16; a mode this CPU cannot run (bf16 without
AVX512-BF16) is skipped with vvae's reason.

Peer results are cached in OUT/peer-cache.json under a key of the CPU (brand string, family and
model, ISA flags), the thread count, the peer and its version, and the case, so one machine's
figures are never served to another; vvae is always measured afresh. Results go to
OUT/<date>.json (OUT is bench/results unless --out says otherwise; the checkout may be read-only).
--quick runs the Flux AE at 256^2 (encode and decode) and one small 3-D case; --smoke checks the
runner itself on the golden test models (vvae only unless --peers is given), as ctest does."""
import argparse
import datetime
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PEER_PY = os.path.join(HERE, "torch", "peer.py")
MAX_REL_ERROR = 1e-3

# (preset, direction, clip shape, vvae modes, timed runs). Runs of a minute or more are timed
# once (vvae after an untimed warm-up, the peers without one: first-call overhead is small next to
# minutes).
# "fp32" is vvae's default (--conv-algo auto: Winograd where it applies, oneDNN direct elsewhere),
# "direct" oneDNN direct for every convolution, "bf16" bf16 convolutions (AVX512-BF16).
MODES = ["fp32", "direct", "bf16"]
CASES = [
    ("flux-ae", "encode", "1,3,1,256,256", MODES, 3),
    ("flux-ae", "decode", "1,3,1,256,256", MODES, 3),
    ("flux-ae", "encode", "1,3,1,512,512", MODES, 1),
    ("flux-ae", "decode", "1,3,1,512,512", MODES, 1),
    ("hunyuan-vae", "encode", "1,3,9,256,256", MODES, 1),
    ("hunyuan-vae", "decode", "1,3,9,256,256", MODES, 1),
    ("dc-ae-f32t4c128", "encode", "1,3,8,256,256", MODES, 1),
    ("dc-ae-f32t4c128", "decode", "1,3,8,256,256", MODES, 1),
]
# --quick: for iteration, the Flux AE at 256^2 and a 3-D decode a seventh of the table's (1.7 of
# 11.1 direct TFLOP), timed once.
QUICK_CASES = CASES[:2] + [("hunyuan-vae", "decode", "1,3,5,128,128", MODES, 1)]
# Peak memory against clip length with tiling on (vvae alone).
FLAT_CASES = [("hunyuan-vae", d, f"1,3,{t},128,128", ["--tile-frames", "16"]) for d in ("encode", "decode")
              for t in (17, 33, 65)]

# --smoke: the runner itself on the small golden test models (CI), once each. The same cases are
# every peer's golden check.
GOLDEN = os.path.join(ROOT, "tests", "data", "golden")
SMOKE_CASES = [(os.path.join(GOLDEN, m), d, shape, ["fp32", "winograd", "direct", "bf16"], 1)
               for m, shape in (("ae2d_small", "1,3,2,32,32"), ("hunyuan_small", "1,3,5,32,32"),
                                ("dcae_small", "1,3,8,64,64"))
               for d in ("encode", "decode")]
SMOKE_FLAT = [(os.path.join(GOLDEN, "hunyuan_small"), "decode", f"1,3,{t},32,32", ["--tile-frames", "16"])
              for t in (17, 33)]

MODE_FLAGS = {"fp32": [], "direct": ["--conv-algo", "direct"], "winograd": ["--conv-algo", "winograd"],
              "bf16": ["--precision", "bf16"]}

# Peer -> its configurations: (configuration, interpreter kind, peer.py run arguments).
PEERS = {
    "torch2": [("torch2/contiguous", "venv", ["torch", "--layout", "contiguous"]),
               ("torch2/channels_last", "venv", ["torch", "--layout", "channels_last"])],
    "torch2-compile": [("torch2/compile", "venv", ["torch", "--compile"])],
    "ort": [("ort", "venv", ["ort"])],
    "openvino": [("openvino", "venv", ["openvino"])],
    "torch1": [("torch1/contiguous", "debian", ["torch", "--layout", "contiguous"]),
               ("torch1/channels_last", "debian", ["torch", "--layout", "channels_last"])],
}
ONNX_CONFIGS = ("ort", "openvino")
# The CPU flags a peer's kernels choose by (x86); the key holds those the CPU has.
ISA_FLAGS = ("sse4_1", "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512dq", "avx512cd", "avx512bw",
             "avx512vl", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx512ifma", "avx512vbmi", "avx_vnni",
             "amx_tile", "amx_bf16", "amx_int8", "asimd", "sve")
# Environment that changes what a peer's kernels do.
PEER_ENV = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE", "ATEN_CPU_CAPABILITY",
            "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_ENABLE_INSTRUCTIONS")


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


# ---- the machine ---------------------------------------------------------------------------

def machine_info(threads):
    """What a peer's figures depend on: the CPU (brand string, family/model/stepping, ISA flags),
    its core count, the thread count and the environment that steers kernels."""
    fields = {}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if ":" not in line:
                    if fields:
                        break  # the first processor's block is enough
                    continue
                k, v = (s.strip() for s in line.split(":", 1))
                fields.setdefault(k, v)
    except OSError:
        pass
    flags = set((fields.get("flags") or fields.get("Features") or "").split())
    return {"cpu": fields.get("model name") or platform.processor() or platform.machine(),
            "cpu_family": fields.get("cpu family"), "cpu_model": fields.get("model"),
            "stepping": fields.get("stepping"), "isa": sorted(f for f in ISA_FLAGS if f in flags),
            "cpus": os.cpu_count(), "threads": threads, "arch": platform.machine(),
            "env": {k: os.environ[k] for k in PEER_ENV if k in os.environ}}


def run_json(cmd, timeout=None, env=None):
    """(return code, the last stdout line as JSON or None, the last stderr line)."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return None, None, f"did not finish within {timeout} s"
    lines = out.stdout.strip().splitlines()
    data = None
    if lines:
        try:
            data = json.loads(lines[-1])
        except json.JSONDecodeError:
            pass
    err = [l for l in out.stderr.strip().splitlines() if l.strip()]
    return out.returncode, data, err[-1].strip() if err else ""


# ---- vvae ----------------------------------------------------------------------------------

def vvae_bin(build):
    return os.path.join(build, "bench", "vvae_bench_models")


def vvae_unavailable_modes(build, modes, model, direction, shape):
    """mode -> why this CPU cannot run it (asked of vvae_bench_models --check-mode)."""
    out = {}
    for mode in modes:
        rc, data, err = run_json([vvae_bin(build), model, direction, shape, "--check-mode"] + MODE_FLAGS[mode])
        if rc == 77 and data and "skipped" in data:
            out[mode] = data["skipped"]
        elif rc != 0:
            raise RuntimeError(f"vvae_bench_models --check-mode {mode} failed: {err}")
    return out


def vvae(build, preset, direction, shape, mode, extra, threads, repeat, smoke=False):
    cmd = [vvae_bin(build), preset, direction, shape, "--threads", str(threads), "--repeat", str(repeat)] + \
        MODE_FLAGS[mode] + extra + (["--smoke"] if smoke else [])
    rc, data, err = run_json(cmd)
    if rc == 77 and data and "skipped" in data:
        return {"mode": mode, "skipped": data["skipped"]}
    if rc != 0 or data is None:
        why = f"killed by signal {-rc}" if rc is not None and rc < 0 else f"exit {rc}: {err}"
        log(f"vvae {mode} FAILED: {' '.join(cmd)}: {why}")
        return {"model": preset, "direction": direction, "input": shape, "mode": mode, "failed": why,
                "command": " ".join(cmd)}
    return data


# ---- the peers -----------------------------------------------------------------------------

class Peers:
    """Which peers are installed (and their versions), how to start them, and their cache."""

    def __init__(self, a, machine):
        self.a, self.machine = a, machine
        self.python = {"venv": os.path.join(a.venv, "bin", "python"), "debian": a.torch1_python}
        self.versions, self.why_not = {}, {}
        for kind, py in self.python.items():
            if not os.path.exists(py):
                self.versions[kind] = None
                self.why_not[kind] = f"{py} is missing"
                continue
            rc, data, err = run_json([py, PEER_PY, "versions"], timeout=120)
            self.versions[kind] = data if rc == 0 else None
            if rc != 0:
                self.why_not[kind] = f"{py} {PEER_PY} versions failed: {err}"
        self.status = {peer: self._status(peer) for peer in PEERS}
        self.cache_path = os.path.join(a.out, "peer-cache.json")
        self.cache = {}
        if not a.no_cache and os.path.exists(self.cache_path):
            self.cache = json.load(open(self.cache_path))

    def _status(self, peer):
        """(available, version or reason)."""
        kind = PEERS[peer][0][1]
        v = self.versions.get(kind)
        if v is None:
            how = ("bench/setup-peers creates it" if kind == "venv" else
                   "bench/setup-peers --debian-torch installs python3-torch")
            return False, f"not installed ({self.why_not.get(kind)}; {how})"
        torch_v = v.get("torch")
        if peer in ("torch2", "torch2-compile"):
            if not torch_v or not torch_v.startswith("2."):
                return False, f"no PyTorch 2.x in {self.python[kind]} (found {torch_v}; bench/setup-peers)"
            return True, torch_v
        if peer == "torch1":
            if not torch_v:
                return False, (f"Debian's python3-torch is not installed for {self.python[kind]} "
                               "(bench/setup-peers --debian-torch installs it)")
            return True, torch_v
        dist = {"ort": "onnxruntime", "openvino": "openvino"}[peer]
        if not v.get(dist):
            return False, f"{dist} is not installed in {self.python[kind]} (bench/setup-peers)"
        if not torch_v:
            return False, f"{peer} needs PyTorch in {self.python[kind]} to export the ONNX model"
        return True, v[dist]

    def selected(self):
        return [p for p in self.a.peers if self.status[p][0]]

    def configs(self):
        return [c for p in self.selected() for c in PEERS[p]]

    def version_key(self, config):
        """The versions a configuration's figures depend on (ONNX peers: also the exporter's torch)."""
        kind = config[1]
        v = dict(self.versions.get(kind) or {})
        name = config[0]
        keep = {"torch"} if name.startswith("torch") else {"torch", "onnx", {"ort": "onnxruntime"}.get(name, name)}
        return {k: v.get(k) for k in sorted(keep)} | {"python": v.get("python")}

    def key(self, config, case):
        material = {"machine": self.machine, "config": config[0], "args": config[2],
                    "versions": self.version_key(config), "case": case}
        return hashlib.sha1(json.dumps(material, sort_keys=True).encode()).hexdigest(), material

    def save_cache(self):
        os.makedirs(os.path.dirname(self.cache_path), exist_ok=True)
        tmp = self.cache_path + ".tmp"
        json.dump(self.cache, open(tmp, "w"), indent=1)
        os.replace(tmp, self.cache_path)

    def reference_config(self):
        """The configuration whose output the others are checked against: PyTorch 2.x eager
        (contiguous), else Debian's PyTorch."""
        if self.status["torch2"][0]:
            return PEERS["torch2"][0]
        if self.status["torch1"][0]:
            return PEERS["torch1"][0]
        return None

    def measure(self, model, direction, shape, repeat, configs):
        """config name -> result for one case: cached, or measured in a fresh work folder."""
        a = self.a
        case = {"model": os.path.basename(os.path.normpath(model)) if os.path.isdir(model) else model,
                "direction": direction, "shape": shape, "repeat": repeat, "threads": a.threads}
        results, todo = {}, []
        for config in configs:
            k, _ = self.key(config, case)
            if k in self.cache:
                results[config[0]] = dict(self.cache[k]["result"], cached=True)
            else:
                todo.append(config)
        if not todo:
            return results
        ref_config = self.reference_config()
        if ref_config is None:
            return results
        work = tempfile.mkdtemp(prefix="vvae-peers-")
        try:
            golden = os.path.isdir(model)
            onnx = any(c[0] in ONNX_CONFIGS for c in todo)
            prep_py = self.python["venv"] if self.status["torch2"][0] or onnx else self.python[ref_config[1]]
            rc, meta, err = run_json([prep_py, PEER_PY, "prepare", model, direction, shape, "--work", work] +
                                     (["--onnx"] if onnx else []), timeout=a.peer_timeout)
            if rc != 0 or meta is None:
                for c in todo:
                    results[c[0]] = {"status": "failed", "reason": f"preparing the case failed: {err}"}
                return results
            if onnx and not meta.get("onnx"):
                for c in todo:
                    if c[0] in ONNX_CONFIGS:
                        results[c[0]] = self._store(c, case, {
                            "status": "failed", "export_failed": True,
                            "reason": f"ONNX export failed: {meta.get('export_error')}"})
                todo = [c for c in todo if c[0] not in ONNX_CONFIGS]
            ref_path = os.path.join(work, "ref.npy")
            if not golden and todo:
                # The reference output: the reference configuration's timed run when it is to be
                # measured anyway, else one untimed run of it.
                timed = ref_config in todo
                r = self._run(ref_config, model, direction, shape, work, repeat if timed else 1, timed, ref_path)
                if timed:
                    r.update(max_rel_error=0.0, reference="self")
                    results[ref_config[0]] = self._store(ref_config, case, r)
                    todo.remove(ref_config)
                if not os.path.exists(ref_path):
                    for c in todo:
                        results[c[0]] = {"status": "failed", "reason": f"no reference output: {r.get('reason')}"}
                    return results
            for c in todo:
                results[c[0]] = self._store(c, case, self._run(c, model, direction, shape, work, repeat, True))
            return results
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _run(self, config, model, direction, shape, work, repeat, timed, save=None):
        a = self.a
        name, kind, args = config
        cmd = [self.python[kind], PEER_PY, "run", args[0], model, direction, shape, "--work", work,
               "--threads", str(a.threads), "--repeat", str(repeat), "--warmup", "1" if repeat > 1 else "0",
               "--compile-timeout", str(a.compile_timeout)] + args[1:] + (["--save-output", save] if save else [])
        env = dict(os.environ, OMP_NUM_THREADS=str(a.threads))
        log(f"  {name}: {os.path.basename(os.path.normpath(model))} {direction} {shape}"
            f"{'' if timed else ' (reference output only)'}")
        rc, data, err = run_json(cmd, timeout=a.peer_timeout, env=env)
        if rc == 77 and data and "skipped" in data:
            return {"status": "skipped", "reason": data["skipped"]}
        if rc != 0 or data is None:
            return {"status": "failed", "reason": f"exit {rc}: {err}" if rc is not None else err}
        if data.get("reference") == "torch":
            data["reference"] = self.reference_config()[0]
        err_rel = data.get("max_rel_error")
        if err_rel is None and not save:
            data.update(status="failed", reason="no reference output to check against")
        elif err_rel is not None and not (err_rel <= MAX_REL_ERROR):
            data.update(status="failed", reason=f"output differs from {data.get('reference')} by {err_rel:.3g} "
                                                f"(max relative error > {MAX_REL_ERROR:g})")
        else:
            data["status"] = "ok"
        return data

    def _store(self, config, case, result):
        """Caches a measurement, a check that failed, a skip or a failed export (all repeat
        themselves); a crash is not cached, so the next run tries again."""
        k, material = self.key(config, case)
        status = result.get("status")
        if status in ("ok", "skipped") or (status == "failed" and ("max_rel_error" in result or
                                                                   result.get("export_failed"))):
            self.cache[k] = {"key": material, "result": result}
            self.save_cache()
        return result


# ---- the run -------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--only", default=None, help="run only this preset")
    p.add_argument("--direction", choices=["encode", "decode"], default=None, help="run only this direction")
    p.add_argument("--quick", action="store_true", help="Flux AE 256^2 encode and decode, one small 3-D decode")
    p.add_argument("--peers", default=None,
                   help=f"comma-separated, of {','.join(PEERS)} (default: all; --smoke: none); 'none' for vvae alone")
    p.add_argument("--no-torch", action="store_true", help="the same as --peers none")
    p.add_argument("--out", default=None,
                   help="where the results and the peer cache go (default bench/results; --smoke writes "
                        "nothing unless given)")
    p.add_argument("--no-cache", action="store_true", help="measure every peer afresh (the cache is still written)")
    p.add_argument("--no-golden", action="store_true", help="skip the peers' golden check")
    p.add_argument("--no-profile", action="store_true", help="skip vvae's per-operation profile run")
    p.add_argument("--profile-rows", type=int, default=8, help="operations per case in the profile table")
    p.add_argument("--venv", default=os.path.join(HERE, ".venv"), help="the peers' virtual environment")
    p.add_argument("--torch1-python", default="/usr/bin/python3", help="the interpreter with Debian's PyTorch")
    p.add_argument("--compile-timeout", type=int, default=600, help="seconds torch.compile may take per case")
    p.add_argument("--peer-timeout", type=int, default=3600, help="seconds one peer process may take")
    p.add_argument("--smoke", action="store_true",
                   help="check the runner: small test models, one run each, no peers unless --peers")
    a = p.parse_args()
    if a.no_torch:
        a.peers = "none"
    if a.peers is None:
        a.peers = "none" if a.smoke else ",".join(PEERS)
    a.peers = [] if a.peers == "none" else [s.strip() for s in a.peers.split(",") if s.strip()]
    bad = [s for s in a.peers if s not in PEERS]
    if bad:
        p.error(f"unknown peer {', '.join(bad)}: choose from {', '.join(PEERS)}")
    a.write_results = not a.smoke or a.out is not None
    a.out = os.path.abspath(a.out or os.path.join(HERE, "results"))
    a.build, a.venv = os.path.abspath(a.build), os.path.abspath(a.venv)
    return a


def main():
    a = parse_args()
    cases, flat_cases = (SMOKE_CASES, SMOKE_FLAT) if a.smoke else (QUICK_CASES, []) if a.quick else (CASES, FLAT_CASES)
    if a.write_results or a.peers:
        try:
            os.makedirs(a.out, exist_ok=True)
            tempfile.NamedTemporaryFile(dir=a.out, prefix=".write-test-").close()
        except OSError as e:
            sys.exit(f"run_benchmarks.py: error: cannot write to {a.out} ({e.strerror}): give --out DIR")

    machine = machine_info(a.threads)
    peers = Peers(a, machine)
    for p in a.peers:
        ok, what = peers.status[p]
        log(f"peer {p}: {what}" if ok else f"peer {p}: skipped: {what}")
    unavailable = vvae_unavailable_modes(a.build, list(MODE_FLAGS), cases[0][0], cases[0][1], cases[0][2])
    for mode, why in unavailable.items():
        log(f"vvae {mode}: skipped: {why}")

    golden = {}
    if peers.configs() and not a.smoke and not a.no_golden:
        golden = golden_check(peers)

    rows, flat = [], []
    for preset, direction, shape, modes, runs in cases:
        if (a.only and preset != a.only) or (a.direction and direction != a.direction):
            continue
        repeat = min(runs, a.repeat)
        row = {"preset": os.path.basename(preset) if a.smoke else preset, "direction": direction, "shape": shape,
               "vvae": {}, "peers": {}}
        for mode in modes:
            if mode in unavailable:
                row["vvae"][mode] = {"mode": mode, "skipped": unavailable[mode]}
                continue
            # The default mode also runs once more timed per operation (--profile).
            extra = ["--profile"] if mode == "fp32" and not a.no_profile else []
            row["vvae"][mode] = vvae(a.build, preset, direction, shape, mode, extra, a.threads, repeat, a.smoke)
            log(json.dumps(row["vvae"][mode]))
        configs = [c for c in peers.configs() if not (c[0] == "torch2/compile" and a.smoke)]
        if configs:
            row["peers"] = peers.measure(preset, direction, shape, 1 if a.smoke else repeat, configs)
            for name, r in row["peers"].items():
                family_failed = golden.get(name, {}).get("failed", {}).get(family_of(preset))
                if family_failed and r.get("status") == "ok":
                    r.update(status="failed", reason=f"golden check failed: {family_failed}")
                log(f"{name}: {json.dumps(r)[:300]}")
        rows.append(row)
    for preset, direction, shape, extra in flat_cases:
        if (a.only and preset != a.only) or (a.direction and direction != a.direction):
            continue
        flat.append(vvae(a.build, preset, direction, shape, "fp32", extra, a.threads, 1, a.smoke))
        log(json.dumps(flat[-1]))

    peer_summary = {p: {"selected": p in a.peers, "available": peers.status[p][0],
                        ("version" if peers.status[p][0] else "reason"): peers.status[p][1]} for p in PEERS}
    results = {"machine": machine, "threads": a.threads, "peers": peer_summary, "golden": golden,
               "profile_rows": a.profile_rows,
               "vvae_skipped_modes": unavailable, "max_rel_error_allowed": MAX_REL_ERROR, "rows": rows, "flat": flat}
    if a.write_results:
        stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
        path = os.path.join(a.out, f"{'smoke-' if a.smoke else 'quick-' if a.quick else ''}{stamp}.json")
        json.dump(results, open(path, "w"), indent=1)
        log(f"results: {path}")
    print_tables(results)
    failed = [(r["preset"], r["direction"], n) for r in rows for n, p in r["peers"].items() if p.get("status") == "failed"]
    failed += [(r["preset"], r["direction"], f"vvae {m}") for r in rows for m, v in r["vvae"].items() if "failed" in v]
    failed += [(v.get("model"), v.get("direction"), "vvae tiled") for v in flat if "failed" in v]
    for f in failed:
        log(f"FAILED: {' '.join(str(x) for x in f)}")
    return 1 if failed else 0


def family_of(model):
    if os.path.isdir(model):
        return json.load(open(os.path.join(model, "config.json")))["family"]
    return {"flux-ae": "ae2d", "hunyuan-vae": "hunyuan", "dc-ae-f32t4c128": "dcae"}.get(model, model)


def golden_check(peers):
    """Each selected peer configuration (but torch.compile) on every golden case, encode and
    decode, against Open-Sora's vectors: config -> {case: error, worst, failed: {family: why}}."""
    log("golden check of the peers (tests/data/golden)")
    configs = [c for c in peers.configs() if c[0] != "torch2/compile"]
    out = {c[0]: {"errors": {}, "worst": 0.0, "failed": {}} for c in configs}
    for model, direction, shape, _, _ in SMOKE_CASES:
        res = peers.measure(model, direction, shape, 1, configs)
        for name, r in res.items():
            g = out[name]
            case = f"{os.path.basename(model)} {direction}"
            if r.get("status") == "skipped":
                continue
            err = r.get("max_rel_error")
            g["errors"][case] = err
            if err is not None:
                g["worst"] = max(g["worst"], err)
            if r.get("status") != "ok":
                g["failed"][family_of(model)] = f"{case}: {r.get('reason')}"
    for name, g in out.items():
        log(f"  {name}: worst relative error {g['worst']:.2e}" + (f", FAILED {g['failed']}" if g["failed"] else ""))
    return out


# ---- tables --------------------------------------------------------------------------------

LABELS = {"torch2/contiguous": "PyTorch {v} contiguous", "torch2/channels_last": "PyTorch {v} channels-last",
          "torch2/compile": "PyTorch {v} compile", "ort": "ORT {v}", "openvino": "OpenVINO {v}",
          "torch1/contiguous": "PyTorch {v} contiguous", "torch1/channels_last": "PyTorch {v} channels-last"}


def secs(x):
    return f"{x:.2f} s" if x is not None else "-"


def ok_seconds(r):
    return r["seconds"] if r and r.get("status") == "ok" else None


def best(row, prefix):
    times = [ok_seconds(r) for n, r in row["peers"].items() if n.startswith(prefix)]
    times = [t for t in times if t is not None]
    return min(times) if times else None


def ratio(peer_seconds, v):
    return f"{peer_seconds / v['seconds']:.2f}x" if peer_seconds and v and v.get("seconds") else "-"


def executed_percent(v):
    """Share of the FMA peak by the FLOPs the primitives really run (fused upsample-convolutions
    run fewer than the direct convolution they stand for)."""
    if not v.get("fma_peak_gflops") or not v.get("seconds"):
        return 0.0
    return 100.0 * v.get("executed_conv_gflop", v["conv_gflop"]) / v["seconds"] / v["fma_peak_gflops"]


def print_tables(res):
    rows, flat = res["rows"], res["flat"]
    peers = res["peers"]
    m = res["machine"]
    print(f"Machine: {m['cpu']} (family {m['cpu_family']} model {m['cpu_model']}), {m['cpus']} CPUs, "
          f"{res['threads']} threads; ISA {' '.join(m['isa'])}")
    for p, s in peers.items():
        if s["selected"]:
            print(f"- {p}: {s.get('version') or 'skipped: ' + s.get('reason', '')}")
    for mode, why in res["vvae_skipped_modes"].items():
        print(f"- vvae {mode}: skipped: {why}")
    for name, g in res["golden"].items():
        print(f"- golden check {name}: worst relative error {g['worst']:.2e}"
              + (f"; FAILED: {'; '.join(g['failed'].values())}" if g["failed"] else ""))
    print()

    configs = [c for p in PEERS for c, _, _ in PEERS[p] if any(c in r["peers"] for r in rows)]
    versions = {}
    for r in rows:
        for n, x in r["peers"].items():
            if x.get("version"):
                versions.setdefault(n, x["version"].split("+")[0])
    label = lambda c: LABELS[c].format(v=versions.get(c, ""))  # noqa: E731
    have = lambda prefix: any(c.startswith(prefix) for c in configs)  # noqa: E731
    ratios = [(p, t) for p, t in (("torch2", "vs PyTorch 2.x"), ("ort", "vs ORT"), ("openvino", "vs OpenVINO"),
                                   ("torch1", "vs PyTorch 1.13")) if have(p)]
    print("| model | op | clip | " + "".join(f"{label(c)} | " for c in configs) + "vvae fp32 | " +
          "".join(f"{t} | " for _, t in ratios))
    print("|---|---|---|" + "---|" * (len(configs) + 1 + len(ratios)))
    for r in rows:
        v = r["vvae"].get("fp32", {})
        cells = []
        for c in configs:
            x = r["peers"].get(c)
            cells.append("-" if x is None else secs(x["seconds"]) if x.get("status") == "ok" else x.get("status"))
        print(f"| {r['preset']} | {r['direction']} | {r['shape']} | " + "".join(f"{c} | " for c in cells) +
              f"{secs(v.get('seconds'))} | " + "".join(f"{ratio(best(r, p), v)} | " for p, _ in ratios))
    print()
    print("(ratios: the peer's time over vvae's; vs PyTorch 2.x takes its fastest configuration.)")
    print()

    if any(r["peers"] for r in rows):
        print("| model | op | clip | peer | status | max rel. error | reference | peak RSS | RSS vvae / peer | notes |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            v = r["vvae"].get("fp32", {})
            for c in configs:
                x = r["peers"].get(c)
                if x is None:
                    continue
                err = x.get("max_rel_error")
                notes = [x.get("reason", "")]
                if x.get("compile_seconds") is not None:
                    notes.append(f"compile {x['compile_seconds']:.0f} s")
                if x.get("exporter"):
                    notes.append(x["exporter"])
                if x.get("cached"):
                    notes.append("cached")
                rss = x.get("peak_rss_mib")
                rss_text = f"{rss:.0f} MiB" if rss else "-"
                rss_ratio = f"{v['peak_rss_mib'] / rss:.2f}" if rss and v.get("peak_rss_mib") else "-"
                err_text = "-" if err is None else f"{err:.2e}"
                print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {label(c)} | {x.get('status')} | "
                      f"{err_text} | {x.get('reference', '-')} | {rss_text} | {rss_ratio} | "
                      f"{'; '.join(n for n in notes if n)} |")
        print()

    print("| model | op | clip | vvae fp32 | conv share | % of FMA peak (direct FLOPs) | "
          "% of FMA peak (executed FLOPs) | FMA peak | peak RSS vvae |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vvae"].get("fp32")
        if not v or "seconds" not in v:
            continue
        print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {secs(v['seconds'])} | "
              f"{v['seconds'] / v['conv_seconds'] if v['conv_seconds'] else 0:.2f}x | {v['percent_of_peak']:.0f}% | "
              f"{executed_percent(v):.0f}% | {v['fma_peak_gflops']:.0f} GFLOP/s ({v.get('fma_peak_isa', '?')}) | "
              f"{v['peak_rss_mib']:.0f} MiB |")
    print()
    print("| model | op | clip | mode | vvae | vs PyTorch 2.x | effective GFLOP/s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        base = best(r, "torch2")
        for mode, v in r["vvae"].items():
            if "seconds" not in v:
                what = "skipped (above)" if "skipped" in v else f"failed: {v.get('failed')}"
                print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {mode} | {what} | - | - |")
                continue
            print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {mode} | {secs(v['seconds'])} | "
                  f"{ratio(base, v)} | {v['gflops']:.0f} |")
    print()
    print("| model | op | clip | process before the model | weights | largest activation | peak live activations | "
          "scratchpad | bound: process + weights + 3 x largest + scratchpad | peak RSS vvae | within bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        v = r["vvae"].get("fp32")
        if not v or "seconds" not in v:
            continue
        bound = v["baseline_rss_mib"] + v["weights_mib"] + 3 * v["largest_activation_mib"] + v["scratchpad_mib"]
        print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {v['baseline_rss_mib']:.0f} MiB | "
              f"{v['weights_mib']:.0f} MiB | "
              f"{v['largest_activation_mib']:.0f} MiB | {v['peak_activations_mib']:.0f} MiB | "
              f"{v['scratchpad_mib']:.0f} MiB | {bound:.0f} MiB | {v['peak_rss_mib']:.0f} MiB | "
              f"{'yes' if v['peak_rss_mib'] <= bound else 'no'} |")
    print_profile(rows, res.get("profile_rows", 8))
    if flat:
        print()
        print("| model | op | clip (tiled, 16-frame tiles) | peak RSS |")
        print("|---|---|---|---|")
        for v in flat:
            rss = f"{v['peak_rss_mib']:.0f} MiB" if "peak_rss_mib" in v else v.get("failed") or v.get("skipped")
            print(f"| {v.get('model')} | {v.get('direction')} | {v.get('input', '-')} | {rss} |")


def print_profile(rows, limit):
    """vvae's default mode per operation and shape (its --profile run): time, the share of the
    run, Winograd's transform time, and the products' rate against the FMA peak."""
    profiled = [r for r in rows if r["vvae"].get("fp32", {}).get("profile")]
    if not profiled:
        return
    print()
    print("| model | op | clip | operation | shape | calls | seconds | share | of which transforms | "
          "executed GFLOP | products GFLOP/s | % of FMA peak |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in profiled:
        v = r["vvae"]["fp32"]
        entries = v["profile"]
        total = sum(e["seconds"] for e in entries) or 1.0
        for e in entries[:limit]:
            products = e["seconds"] - e["transform_seconds"]
            rate = e["executed_gflop"] / products if e["executed_gflop"] and products > 0 else 0.0
            peak = v.get("fma_peak_gflops") or 0.0
            print(f"| {r['preset']} | {r['direction']} | {r['shape']} | {e['op']} | {e['shape']} | {e['calls']} | "
                  f"{e['seconds']:.3f} | {100 * e['seconds'] / total:.0f}% | {e['transform_seconds']:.3f} | "
                  f"{e['executed_gflop']:.1f} | {rate:.0f} | " + (f"{100 * rate / peak:.0f}% |" if rate and peak else "- |"))


if __name__ == "__main__":
    sys.exit(main())
