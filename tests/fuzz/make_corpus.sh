#!/usr/bin/env bash
# Makes the fuzzers' seed corpora (tests/fuzz/corpus/<harness>/): small valid inputs of every kind
# each parser takes, so the fuzzers start from real structure. The committed corpus was made with
#   tests/fuzz/make_corpus.sh build-ci
# from a Release build (its vvae and vvae_make_video) and ../shared/golden. Seeds stay small
# (≤ 8 KiB; scripts/fuzz caps inputs at 16 KiB) so the fuzzers run fast.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: tests/fuzz/make_corpus.sh BUILD_DIR}
golden=${GOLDEN_DIR:-../shared/golden}
out=tests/fuzz/corpus
rm -rf "$out" && mkdir -p "$out"/{safetensors,latent,model_config,manifest,video}
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT

# Model configs: every golden case's and the bundled model's.
for c in "$golden"/*/config.json; do cp "$c" "$out/model_config/$(basename "$(dirname "$c")").json"; done
cp models/ae2d-tiny/config.json "$out/model_config/ae2d-tiny.json"

# Videos: the containers and codecs users bring, a few frames each.
mv_() { "$build/tests/vvae_make_video" "$@"; }
mv_ "$out/video/h264.mp4" --codec libx264 --frames 3 --size 16x24
mv_ "$out/video/ffv1.mkv" --codec ffv1 --frames 2 --size 8x8
mv_ "$out/video/mpeg4.avi" --codec mpeg4 --frames 3 --size 16x16
mv_ "$out/video/vp9.webm" --codec libvpx-vp9 --frames 2 --size 16x16
mv_ "$out/video/anim.gif" --codec gif --frames 3 --size 8x12
mv_ "$out/video/alpha.png" --codec png --still --alpha --size 8x8
mv_ "$out/video/still.jpg" --codec mjpeg --still --size 16x16

# Latent files: what `vvae encode` writes (z, mean, logvar and the metadata), at a tiny clip.
mv_ "$work/clip.mp4" --codec libx264 --frames 2 --size 16x16
"$build/vvae" encode --model models/ae2d-tiny --input "$work/clip.mp4" --output "$out/latent/ae2d.safetensors" >/dev/null
"$build/vvae" encode --model models/ae2d-tiny --input "$work/clip.mp4" --output "$out/latent/ae2d-sample.safetensors" --sample --seed 3 >/dev/null

# Safetensors: hand-made files of every dtype the reader converts, metadata, empty and 0-d tensors.
python3 - "$out/safetensors" <<'PY'
import json, struct, sys
def write(name, tensors, metadata=None):
    header, data = {}, b""
    for key, (dtype, shape, raw) in tensors.items():
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    if metadata is not None:
        header["__metadata__"] = metadata
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    open(f"{sys.argv[1]}/{name}", "wb").write(struct.pack("<Q", len(text)) + text + data)
f32 = lambda *v: struct.pack(f"<{len(v)}f", *v)
write("f32.safetensors", {"w": ("F32", [2, 3], f32(1, 2, 3, 4, 5, 6)), "b": ("F32", [3], f32(0.5, -1, 2))})
write("f16_bf16.safetensors", {"h": ("F16", [2, 2], struct.pack("<4e", 1, -2, 0.5, 65504)),
                               "g": ("BF16", [3], bytes([0x80, 0x3f, 0x00, 0xc0, 0x80, 0x7f]))})
write("f64_i64.safetensors", {"d": ("F64", [2], struct.pack("<2d", 1e300, -1)),
                              "i": ("I64", [1], struct.pack("<q", 7))})
write("metadata.safetensors", {"z": ("F32", [1, 2, 1, 1, 1], f32(0.25, 4))},
      {"format": "pt", "vvae.fps": "16", "vvae.model": "ae2d"})
write("empty_and_scalar.safetensors", {"e": ("F32", [0, 4], b""), "s": ("F32", [], f32(3))})
write("no_tensors.safetensors", {}, {"note": "only metadata"})
PY
# And a golden io file's tensor names and metadata, each tensor cut to its first 16 values.
python3 - "$golden/ae2d_small/io.safetensors" "$out/safetensors/golden_head.safetensors" <<'PY'
import json, struct, sys
raw = open(sys.argv[1], "rb").read()
n = struct.unpack("<Q", raw[:8])[0]
header, keep, data = json.loads(raw[8:8 + n]), {}, b""
for name, entry in header.items():
    if name == "__metadata__":
        keep[name] = entry
        continue
    begin = entry["data_offsets"][0]
    count = min(16, (entry["data_offsets"][1] - begin) // 4)
    keep[name] = {"dtype": entry["dtype"], "shape": [count], "data_offsets": [len(data), len(data) + 4 * count]}
    data += raw[8 + n + begin:8 + n + begin + 4 * count]
text = json.dumps(keep).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(text)) + text + data)
PY

# Manifests: Open-Sora's columns, quoting, CRLF, a BOM, repeated names, extra columns.
printf 'path,text,num_frames\nclips/a.mp4,a cat,33\nclips/b.mp4,"a dog, running",65\n' > "$out/manifest/opensora.csv"
printf 'path\r\n/data/x.mp4\r\n\r\n../y.mkv\r\n' > "$out/manifest/crlf.csv"
printf '\xef\xbb\xbfpath,id\na/clip.mp4,1\nb/clip.mp4,2\nclip.mp4,3\n' > "$out/manifest/bom_repeated_names.csv"
printf 'id,"pa""th",path\n1,"x\ny",v.mp4\n2,,"w ""q"".mp4"\n' > "$out/manifest/quoted.csv"

find "$out" -type f -size +8k -print | while read -r f; do echo "too large for a seed: $f" >&2; exit 1; done
find "$out" -type f | sort | while read -r f; do printf '%6d %s\n' "$(stat -c %s "$f")" "$f"; done
