"""Minimal safetensors reader/writer for the benchmark scripts (F32/F16/BF16/F64 in, F32 out)."""
import json
import struct

import numpy as np
import torch

_DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64}


def load(path):
    """Every tensor of a safetensors file as float32 torch tensors, read one at a time (the
    file is never held whole, so a process's peak memory is its weights plus one tensor)."""
    out = {}
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        base = 8 + n
        for name, info in header.items():
            if name == "__metadata__":
                continue
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            raw = f.read(end - begin)
            if info["dtype"] == "BF16":
                bits = np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16
                arr = bits.view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]]).astype(np.float32)
            out[name] = torch.from_numpy(arr.copy()).reshape(info["shape"])
            del raw
    return out


def save(path, tensors, metadata=None):
    """float32 safetensors, written tensor by tensor."""
    header, offset, arrays = {}, 0, []
    if metadata:
        header["__metadata__"] = metadata
    for name, t in tensors.items():
        a = t.detach().to(torch.float32).contiguous()
        size = a.numel() * 4
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + size]}
        arrays.append(a)
        offset += size
    text = json.dumps(header).encode()
    text += b" " * ((8 - len(text) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text)
        for a in arrays:
            f.write(a.numpy().tobytes())


def load_into(model, path):
    """Copies a safetensors file into `model`'s parameters and buffers one tensor at a time, so
    the process holds the weights once (as vvae, which maps them), not twice as load_state_dict
    of a loaded dict does. Strict: every name present, none extra, shapes equal."""
    import torch
    targets = model.state_dict(keep_vars=True)
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = {k: v for k, v in json.loads(f.read(n)).items() if k != "__metadata__"}
        missing, extra = sorted(set(targets) - set(header)), sorted(set(header) - set(targets))
        if missing or extra:
            raise ValueError(f"{path}: missing {missing[:5]}, unexpected {extra[:5]}")
        base = 8 + n
        for name, info in header.items():
            begin, end = info["data_offsets"]
            f.seek(base + begin)
            raw = f.read(end - begin)
            if info["dtype"] == "BF16":
                arr = (np.frombuffer(raw, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)
            else:
                arr = np.frombuffer(raw, dtype=_DTYPES[info["dtype"]])
            t = targets[name]
            if list(t.shape) != list(info["shape"]):
                raise ValueError(f"{path}: {name} is {info['shape']}, the model's {list(t.shape)}")
            with torch.no_grad():
                t.copy_(torch.from_numpy(arr.astype(np.float32)).reshape(t.shape))
            del raw, arr
