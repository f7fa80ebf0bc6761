#!/usr/bin/env bash
# `vvae encode --format opensora` loads with torch as Open-Sora's cached-latent dataset loads it
# (tests/torch_load_check.py). Needs a Python with torch: $VVAE_TORCH_PYTHON, else python3;
# without one the test reports itself skipped (exit 77), never passed.
#   torch_load_test.sh VVAE MAKE_VIDEO TESTS_DATA
set -u
VVAE=$(realpath "$1")
MAKE=$(realpath "$2")
DATA=$(cd "$3" && pwd)
HERE=$(dirname "$(realpath "$0")")
PY=
for candidate in ${VVAE_TORCH_PYTHON:-} python3 /usr/bin/python3; do
  if "$candidate" -c 'import torch' >/dev/null 2>&1; then PY=$candidate; break; fi
done
if [ -z "$PY" ]; then
  echo "SKIPPED: no Python with torch (set VVAE_TORCH_PYTHON)"
  exit 77
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK" || exit 1
export OMP_WAIT_POLICY=passive
mkdir clips
{
  echo 'path,text'
  for i in 1 2 3 4 5; do
    "$MAKE" "clips/c$i.mkv" --codec ffv1 --frames $((4 * i)) --size 32x48 || exit 1
    echo "clips/c$i.mkv,clip $i"
  done
  "$MAKE" clips/still.png --codec png --still --size 32x48 || exit 1
  echo "clips/still.png,an image"
} >data.csv
for f in safetensors opensora; do
  "$VVAE" encode --model "$DATA/golden/ae2d_small" --manifest data.csv -o "$f" --format "$f" --threads 1 -q \
    || { echo "FAIL: encode --format $f"; exit 1; }
done
"$PY" "$HERE/torch_load_check.py" opensora safetensors || { echo "FAIL: torch.load"; exit 1; }
