#!/usr/bin/env bash
# Streamed clips (issue 16): with temporal tiles, `vvae reconstruct`, `encode` from a video and
# `decode` to a video read and write the clip a tile at a time, so the whole process's peak
# resident memory (getrusage of the child) stays within 10% as the clip grows from 1x (65
# frames) to 4x and 16x its length; decoding the same latents to a tensor file, which holds the
# clip, does grow (the check can fail). A streamed decode's video is the one the whole clip
# converts to. (libx264 fills its frame pool, its lookahead of 40 frames and more, over a
# clip's first ~50 frames: a shorter clip holds less, which is why 1x is 65 frames.)
#   streaming_rss_test.sh VVAE MAKE_VIDEO TESTS_DATA
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
skip_if_sanitized
checks_begin "$@"
HUNYUAN=$DATA/golden/hunyuan_tiled  # temporal tiles of 16 frames (17 in, causal)
SIZE=128x128
RUN=(--model "$HUNYUAN" --no-spatial-tiling --threads 2 -q)

# peak_mib CMD...: runs CMD; prints "PEAK_MIB EXIT_CODE".
peak_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL).returncode
print("%.1f %d" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc))
PY
}

# within_10 NAME BASE PEAK: PEAK is at most 10% above BASE.
within_10() {
  awk -v b="$2" -v p="$3" 'BEGIN { exit !(p <= b * 1.10) }' ||
    fail "$1: peak $3 MiB is more than 10% above the 1x clip's $2 MiB"
}

declare -A recon encode decode whole
for n in 1 4 16; do
  frames=$((64 * n + 1))
  "$MAKE" "c$n.mkv" --codec ffv1 --frames $frames --size $SIZE || fail "make c$n"
  read -r recon[$n] rc < <(peak_mib "$VVAE" reconstruct "${RUN[@]}" "c$n.mkv" -o "rec$n" --compare --latents)
  [ "$rc" -eq 0 ] || fail "reconstruct ${n}x: exit $rc"
  read -r encode[$n] rc < <(peak_mib "$VVAE" encode "${RUN[@]}" "c$n.mkv" -o "z$n.safetensors")
  [ "$rc" -eq 0 ] || fail "encode ${n}x: exit $rc"
  read -r decode[$n] rc < <(peak_mib "$VVAE" decode "${RUN[@]}" "z$n.safetensors" -o "d$n.mp4" --fps 16)
  [ "$rc" -eq 0 ] || fail "decode ${n}x to a video: exit $rc"
  read -r whole[$n] rc < <(peak_mib "$VVAE" decode "${RUN[@]}" "z$n.safetensors" -o "x$n.safetensors")
  [ "$rc" -eq 0 ] || fail "decode ${n}x to a tensor: exit $rc"
  ok "${n}x ($frames frames of $SIZE): reconstruct ${recon[$n]} MiB, encode ${encode[$n]} MiB, decode to mp4 ${decode[$n]} MiB, to a tensor ${whole[$n]} MiB"
done
for n in 4 16; do
  within_10 "reconstruct ${n}x" "${recon[1]}" "${recon[$n]}"
  within_10 "encode ${n}x" "${encode[1]}" "${encode[$n]}"
  within_10 "decode ${n}x" "${decode[1]}" "${decode[$n]}"
done
ok "reconstruct, encode and decode to a video stay within 10% from 1x to 16x"
awk -v b="${whole[1]}" -v p="${whole[16]}" 'BEGIN { exit !(p > b * 1.3) }' ||
  fail "decoding 16x to a tensor (${whole[16]} MiB) did not grow past 1x (${whole[1]} MiB): the check cannot tell"
ok "a decode to a tensor file, which holds the clip, grows: ${whole[1]} -> ${whole[16]} MiB"

# The streamed video is the whole clip's, and the reconstruction's latent is encode's.
"$VVAE" convert x16.safetensors -o x16.mp4 --fps 16 -q || fail "convert"
cmp -s x16.mp4 d16.mp4 || fail "the streamed decode's video differs from the whole clip's"
python3 - rec16/latents/c16.latent.safetensors z16.safetensors <<'PY' || fail "the reconstruction's latent differs from encode's"
import json, struct, sys
def tensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        head = json.loads(f.read(n))
        body = f.read()
    return {k: body[v["data_offsets"][0]:v["data_offsets"][1]] for k, v in head.items() if k != "__metadata__"}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
sys.exit(0 if a["z"] == b["z"] else 1)
PY
ok "the streamed outputs are the whole run's"
checks_end "streaming"
