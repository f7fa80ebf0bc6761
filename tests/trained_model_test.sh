#!/usr/bin/env bash
# The bundled trained model through the command line: `vvae encode` then `vvae decode` every
# held-out clip and compare the reconstruction with PyTorch's (stored in the clip file as
# x_rec_torch): max |vvae - torch| / max |torch| <= 1e-4. (The PSNR floors are checked in
# test_trained_model.cpp.)
set -u
VVAE=$1
MODEL=$2
CLIPS=$3
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
failures=0
for clip in "$CLIPS"/*.safetensors; do
  name=$(basename "$clip" .safetensors)
  if ! "$VVAE" encode --model "$MODEL" -i "$clip" -o "$WORK/z.safetensors" -q ||
     ! "$VVAE" decode --model "$MODEL" -i "$WORK/z.safetensors" -o "$WORK/rec.safetensors" -q ||
     ! "$VVAE" compare "$clip" "$WORK/rec.safetensors" --tensor-a x_rec_torch >"$WORK/cmp"; then
    echo "FAIL: $name: vvae exited non-zero"
    failures=$((failures + 1))
    continue
  fi
  rel=$(sed -E 's/.*max\|a-b\|\/max\|a\| ([^ ]+).*/\1/' "$WORK/cmp")
  if awk -v r="$rel" 'BEGIN { exit !(r <= 1e-4) }'; then
    echo "ok: $name: vvae vs PyTorch $rel; $(grep -o 'psnr.*' "$WORK/cmp")"
  else
    echo "FAIL: $name: vvae vs PyTorch $rel"
    failures=$((failures + 1))
  fi
done
[ "$failures" -eq 0 ] || { echo "$failures failure(s)"; exit 1; }
