#!/usr/bin/env bash
# Measures each fast mode's error against the fp32 reference, for BENCHMARKS.md:
#   - on every golden case (tests/data/golden): encode `x` and decode the golden `z`, each
#     compared with Open-Sora's numbers as max|ours - ref| / max|ref| (the parity measure);
#   - on a reconstruction of the bundled clip with the bundled trained model: PSNR and SSIM
#     against the input, and the fp32 reconstruction's.
#
#   bench/precision_errors.sh [build/vvae]
set -euo pipefail
cd "$(dirname "$0")/.."
VVAE=${1:-build/vvae}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
declare -A FLAGS=([fp32]="" [bf16]="--precision bf16" [winograd]="--conv-algo winograd"
                  [bf16+winograd]="--precision bf16 --conv-algo winograd")
MODES=(fp32 bf16 winograd bf16+winograd)

rel_error() {  # file-a tensor-a file-b tensor-b
  "$VVAE" compare "$1" "$3" --tensor-a "$2" --tensor-b "$4" |
    sed -E 's/.*max\|a-b\|\/max\|a\| ([^ ]+).*/\1/'
}

echo "| golden case | tensor |$(printf ' %s |' "${MODES[@]}")"
echo "|---|---|$(printf -- '---|%.0s' "${MODES[@]}")"
for dir in tests/data/golden/*/; do
  case_name=$(basename "$dir")
  io=$dir/io.safetensors
  enc_row="| $case_name | encode z |"
  dec_row="| $case_name | decode x |"
  for mode in "${MODES[@]}"; do
    # shellcheck disable=SC2086
    "$VVAE" encode --model "$dir" --input "$io" --tensor x -o "$WORK/z.safetensors" -q ${FLAGS[$mode]}
    # shellcheck disable=SC2086
    "$VVAE" decode --model "$dir" --input "$io" --tensor z -o "$WORK/x.safetensors" -q ${FLAGS[$mode]}
    enc_row+=" $(rel_error "$io" z "$WORK/z.safetensors" z) |"
    dec_row+=" $(rel_error "$io" dec "$WORK/x.safetensors" x) |"
  done
  echo "$enc_row"
  echo "$dec_row"
done

echo
echo "| bundled clip, models/ae2d-tiny | PSNR vs input | SSIM vs input | max|x - x_fp32| / max|x_fp32| |"
echo "|---|---|---|---|"
for mode in "${MODES[@]}"; do
  # shellcheck disable=SC2086
  "$VVAE" reconstruct --model models/ae2d-tiny samples/clip.mp4 -o "$WORK/rec-$mode" --latents \
    -q ${FLAGS[$mode]} >/dev/null
  # shellcheck disable=SC2086
  "$VVAE" decode --model models/ae2d-tiny --input "$WORK/rec-$mode/latents/clip.latent.safetensors" \
    -o "$WORK/x-$mode.safetensors" -q ${FLAGS[$mode]}
  psnr=$(sed -nE 's/.*"psnr": ([0-9.]+).*/\1/p' "$WORK/rec-$mode/summary.json" | head -1)
  ssim=$(sed -nE 's/.*"ssim": ([0-9.]+).*/\1/p' "$WORK/rec-$mode/summary.json" | head -1)
  echo "| $mode | $(printf '%.2f' "$psnr") dB | $(printf '%.4f' "$ssim") | $(rel_error "$WORK/x-fp32.safetensors" x "$WORK/x-$mode.safetensors" x) |"
done
