#!/usr/bin/env python3
"""One peer runtime on one case, in its own process (so its peak RSS is its own); prints one JSON
line. run_benchmarks.py drives it; by hand:

    PY=bench/.venv/bin/python
    $PY bench/torch/peer.py prepare flux-ae encode 1,3,1,256,256 --work /tmp/w --onnx
    $PY bench/torch/peer.py run torch flux-ae encode 1,3,1,256,256 --work /tmp/w --save-output /tmp/w/ref.npy
    $PY bench/torch/peer.py run ort flux-ae encode 1,3,1,256,256 --work /tmp/w --threads 2 --repeat 3
    $PY bench/torch/peer.py versions

MODEL is a preset (the full-size architecture, random weights from seed 0) or a golden case
directory (tests/data/golden/ae2d_small: its config, weights and `x`/`z`, and its `z`/`dec` as the
reference). `prepare` writes the case's weights, input and (--onnx) the ONNX export of the
direction into the work folder; `run` times one runtime on them and compares its output with
WORK/ref.npy (max |out - ref| / max |ref|) when that exists:

    torch     this interpreter's PyTorch (eager, --layout contiguous|channels_last, or --compile)
    ort       ONNX Runtime, CPU execution provider, on WORK/model.onnx
    openvino  OpenVINO's CPU plugin, fp32 (inference precision f32: no automatic bf16), same file

Every runtime gets --threads threads, fp32, no autograd. Runs of minutes take --warmup 0."""
import argparse
import json
import os
import resource
import signal
import statistics
import sys
import time

try:
    import numpy as np
except ImportError:  # `versions` still answers (and says there is no PyTorch to run)
    np = None

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def version_of(dist):
    try:
        from importlib import metadata
        return metadata.version(dist)
    except Exception:  # noqa: BLE001 - not installed, or installed without metadata
        pass
    try:
        module = __import__({"onnxruntime": "onnxruntime", "openvino": "openvino"}.get(dist, dist))
        return getattr(module, "__version__", None)
    except Exception:  # noqa: BLE001
        return None


def rel_error(out, ref):
    out, ref = np.asarray(out, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    if out.shape != ref.shape:
        raise ValueError(f"output shape {list(out.shape)} differs from the reference's {list(ref.shape)}")
    if not np.all(np.isfinite(ref)):
        raise ValueError("the reference output is not finite")
    if not np.all(np.isfinite(out)):
        return float("inf")
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-30))


# ---- the case: model, weights, input -------------------------------------------------------

def golden_case(model):
    return os.path.isdir(model)


def describe(model):
    """(family, model_args) of a preset or a golden case directory."""
    import families
    if golden_case(model):
        cfg = json.load(open(os.path.join(model, "config.json")))
        return cfg["family"], cfg["model_args"]
    return families.PRESETS[model]


def build_torch_model(meta):
    import torch
    import families
    import st
    model = families.BUILDERS[meta["family"]](meta["model_args"]).eval()
    st.load_into(model, meta["weights"])
    return model


def direction_module(model, direction):
    """An nn.Module whose forward is the direction: encode -> z, decode -> x."""
    import torch

    class Direction(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.model = model

        def forward(self, x):
            if direction == "decode":
                return self.model.decode(x)
            out = self.model.encode(x)
            return out[0] if isinstance(out, tuple) else out

    return Direction().eval()


def prepare(a):
    import torch
    import families
    import st
    os.makedirs(a.work, exist_ok=True)
    family, args = describe(a.model)
    meta = {"model": a.model, "family": family, "model_args": args, "direction": a.direction}
    if golden_case(a.model):
        io = st.load(os.path.join(a.model, "io.safetensors"))
        x, ref = (io["x"], io["z"]) if a.direction == "encode" else (io["z"], io["dec"])
        np.save(os.path.join(a.work, "ref.npy"), ref.numpy())
        meta["weights"] = os.path.abspath(os.path.join(a.model, "weights.safetensors"))
        meta["reference"] = "golden"
    else:
        torch.manual_seed(0)
        model = families.BUILDERS[family](args).eval()
        meta["weights"] = os.path.join(a.work, "weights.safetensors")
        st.save(meta["weights"], model.state_dict())
        del model
        clip = [int(v) for v in a.shape.split(",")]
        torch.manual_seed(1)
        x = families.latent_like(a.model, clip) if a.direction == "decode" else torch.rand(clip) * 2 - 1
        meta["reference"] = None
    np.save(os.path.join(a.work, "input.npy"), x.numpy().astype(np.float32))
    meta["input_shape"] = list(x.shape)
    if a.onnx:
        meta.update(export_onnx(meta, torch.from_numpy(np.load(os.path.join(a.work, "input.npy"))), a))
    json.dump(meta, open(os.path.join(a.work, "meta.json"), "w"), indent=1)
    print(json.dumps({k: v for k, v in meta.items() if k != "model_args"}))


def export_onnx(meta, x, a):
    """torch.onnx.export of the direction; the TorchScript exporter first (seconds), the
    torch.export-based one if that fails. Returns what was used, or why both failed."""
    import torch
    module = direction_module(build_torch_model(meta), meta["direction"])
    path = os.path.join(a.work, "model.onnx")
    errors = []
    for dynamo in (False, True):
        start = time.perf_counter()
        try:
            with torch.no_grad():
                if dynamo:
                    torch.onnx.export(module, (x,), path, input_names=["input"], output_names=["output"],
                                      opset_version=a.opset, dynamo=True, external_data=True)
                else:
                    torch.onnx.export(module, (x,), path, input_names=["input"], output_names=["output"],
                                      opset_version=a.opset, dynamo=False, do_constant_folding=True)
            return {"onnx": path, "exporter": ("torch.export" if dynamo else "TorchScript") + f", opset {a.opset}",
                    "export_seconds": round(time.perf_counter() - start, 1)}
        except Exception as e:  # noqa: BLE001 - reported, and the runner marks the peers
            errors.append(f"{'torch.export' if dynamo else 'TorchScript'} exporter: {type(e).__name__}: "
                          f"{str(e).strip().splitlines()[0] if str(e).strip() else ''}"[:400])
    return {"onnx": None, "export_error": "; ".join(errors)}


# ---- runtimes ------------------------------------------------------------------------------

class CompileTimeout(Exception):
    pass


def torch_runner(meta, a):
    import torch
    torch.set_num_threads(a.threads)
    info = {"runtime": "torch", "version": torch.__version__, "layout": a.layout, "compile": a.compile}
    model = build_torch_model(meta)
    if a.layout == "channels_last":
        model = model.to(memory_format=torch.channels_last if meta["family"] == "ae2d" else torch.channels_last_3d)
    module = direction_module(model, meta["direction"])
    fn = module
    if a.compile:
        fn = torch.compile(module)
        x = torch.from_numpy(np.load(os.path.join(a.work, "input.npy")))

        def on_alarm(signum, frame):
            raise CompileTimeout(f"torch.compile did not finish within {a.compile_timeout} s")

        signal.signal(signal.SIGALRM, on_alarm)
        signal.alarm(a.compile_timeout)
        start = time.perf_counter()
        with torch.no_grad():
            fn(x)
        signal.alarm(0)
        info["compile_seconds"] = round(time.perf_counter() - start, 1)

    def run(x):
        with torch.no_grad():
            return fn(torch.from_numpy(x)).numpy()

    return run, info


def ort_runner(meta, a):
    import onnxruntime as ort
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    start = time.perf_counter()
    sess = ort.InferenceSession(meta["onnx"], so, providers=["CPUExecutionProvider"])
    info = {"runtime": "ort", "version": ort.__version__, "load_seconds": round(time.perf_counter() - start, 1),
            "exporter": meta.get("exporter")}
    name = sess.get_inputs()[0].name

    def run(x):
        return sess.run(None, {name: x})[0]

    return run, info


def openvino_runner(meta, a):
    import openvino as ov
    core = ov.Core()
    start = time.perf_counter()
    compiled = core.compile_model(meta["onnx"], "CPU", {
        "INFERENCE_NUM_THREADS": a.threads, "NUM_STREAMS": 1, "PERFORMANCE_HINT": "LATENCY",
        "INFERENCE_PRECISION_HINT": "f32"})
    info = {"runtime": "openvino", "version": ov.__version__.split("-")[0], "full_version": ov.__version__,
            "load_seconds": round(time.perf_counter() - start, 1), "exporter": meta.get("exporter"),
            "inference_precision": str(compiled.get_property("INFERENCE_PRECISION_HINT"))}
    request = compiled.create_infer_request()

    def run(x):
        return np.array(request.infer([x])[compiled.output(0)])

    return run, info


RUNTIMES = {"torch": torch_runner, "ort": ort_runner, "openvino": openvino_runner}


def run(a):
    meta = json.load(open(os.path.join(a.work, "meta.json")))
    if a.runtime in ("ort", "openvino") and not meta.get("onnx"):
        raise RuntimeError(f"no ONNX export: {meta.get('export_error', 'prepare ran without --onnx')}")
    x = np.load(os.path.join(a.work, "input.npy"))
    runner, info = RUNTIMES[a.runtime](meta, a)
    times, out = [], None
    for r in range(a.warmup + a.repeat):
        start = time.perf_counter()
        out = runner(x)
        if r >= a.warmup:
            times.append(time.perf_counter() - start)
    result = {"model": os.path.basename(os.path.normpath(a.model)), "direction": a.direction,
              "input": list(x.shape), "threads": a.threads, "runs": a.repeat, "warmup": a.warmup, **info,
              "seconds": statistics.median(times), "times": [round(t, 4) for t in times],
              "peak_rss_mib": round(peak_rss_mib(), 1), "output_shape": list(out.shape)}
    ref_path = os.path.join(a.work, "ref.npy")
    if a.save_output:
        np.save(a.save_output, out.astype(np.float32))
    if os.path.exists(ref_path) and os.path.abspath(ref_path) != os.path.abspath(a.save_output or ""):
        result["max_rel_error"] = rel_error(out, np.load(ref_path))
        result["reference"] = meta.get("reference") or "torch"
    print(json.dumps(result))


def versions(_a):
    print(json.dumps({"python": sys.version.split()[0], "torch": version_of("torch"),
                      "onnxruntime": version_of("onnxruntime"), "openvino": version_of("openvino"),
                      "onnx": version_of("onnx")}))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    pp = sub.add_parser("prepare")
    pr = sub.add_parser("run")
    pr.add_argument("runtime", choices=sorted(RUNTIMES))
    for q in (pp, pr):
        q.add_argument("model")
        q.add_argument("direction", choices=["encode", "decode"])
        q.add_argument("shape")
        q.add_argument("--work", required=True)
    pp.add_argument("--onnx", action="store_true")
    pp.add_argument("--opset", type=int, default=17)
    pr.add_argument("--layout", choices=["contiguous", "channels_last"], default="contiguous")
    pr.add_argument("--compile", action="store_true")
    pr.add_argument("--compile-timeout", type=int, default=600)
    pr.add_argument("--threads", type=int, default=2)
    pr.add_argument("--repeat", type=int, default=3)
    pr.add_argument("--warmup", type=int, default=1)
    pr.add_argument("--save-output")
    sub.add_parser("versions")
    a = p.parse_args()
    try:
        {"prepare": prepare, "run": run, "versions": versions}[a.command](a)
    except CompileTimeout as e:
        print(json.dumps({"skipped": str(e)}))
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
