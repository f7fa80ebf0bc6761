"""Loads a `vvae encode --format opensora` cache with torch, as Open-Sora's training reads it.

    torch_load_check.py OPENSORA_CACHE SAFETENSORS_CACHE

Open-Sora's CachedVideoTextDataset (opensora/datasets/datasets.py) reads the CSV's
latents_path, text_t5_path and text_clip_path of a row and calls
torch.load(latents_path, map_location=torch.device("cpu")); the training loop stacks what it
returns into (B, C, T, H, W). Every row of train.csv is loaded that way (and with
weights_only=True, and mmap=True where this torch has them) and must equal z[0] of the same
clip in the safetensors cache, bit for bit (read here without the safetensors package).
"""
import csv
import inspect
import json
import struct
import sys

import torch


def safetensors_z(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    z = header["z"]
    assert z["dtype"] == "F32", z
    begin, end = z["data_offsets"]
    t = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.float32)
    return t.reshape(z["shape"]), header["__metadata__"]


def main():
    pt_dir, st_dir = sys.argv[1], sys.argv[2]
    with open(f"{st_dir}/index.csv", newline="") as f:
        reference = {r["path"]: r for r in csv.DictReader(f)}
    with open(f"{pt_dir}/train.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows, "train.csv has no rows"
    params = inspect.signature(torch.load).parameters
    for row in rows:
        # What CachedVideoTextDataset.get_conditioning_latents reads for every row.
        for column in ("latents_path", "text_t5_path", "text_clip_path"):
            assert column in row, f"train.csv lacks {column}"
        z = torch.load(row["latents_path"], map_location=torch.device("cpu"))
        ref, meta = safetensors_z(reference[row["path"]]["latents_path"])
        assert z.dtype == torch.float32 and z.dim() == 4, (z.dtype, z.shape)
        assert z.is_contiguous()
        assert list(z.shape) == list(ref.shape[1:]), (z.shape, ref.shape)
        assert torch.equal(z, ref[0]), row["path"]
        assert meta["source"] == row["path"]
        if "weights_only" in params:
            assert torch.equal(torch.load(row["latents_path"], weights_only=True), z)
        if "mmap" in params:
            assert torch.equal(torch.load(row["latents_path"], mmap=True, weights_only=True), z)
    # The bucket sampler batches clips of one shape; the training loop stacks them.
    same = [r for r in rows if list(torch.load(r["latents_path"]).shape) == list(z.shape)]
    batch = torch.stack([torch.load(r["latents_path"]) for r in same * 2])
    assert batch.dim() == 5 and batch.shape[0] == 2 * len(same)
    print(f"torch {torch.__version__}: {len(rows)} latents load, equal to the safetensors cache")


if __name__ == "__main__":
    main()
