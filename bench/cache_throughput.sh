#!/usr/bin/env bash
# Clips per minute of `vvae encode --manifest` (one process) for the bundled model at 256px:
# N copies of samples/clip.mp4 (33 frames, 144x256, H.264; each copy its own file, so its own
# key) resize_cropped to Open-Sora's 256px bucket (16:9: 192x336), encoded into a fresh cache.
#   bench/cache_throughput.sh [BUILD_DIR] [N] [THREADS]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=$(realpath "${1:-$ROOT/build}")
N=${2:-20}
THREADS=${3:-$(nproc)}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
mkdir clips
echo path >data.csv
for i in $(seq 1 "$N"); do
  cp "$ROOT/samples/clip.mp4" "clips/clip$i.mp4"
  echo "clips/clip$i.mp4" >>data.csv
done
start=$(date +%s.%N)
"$BUILD/vvae" encode --model "$ROOT/models/ae2d-tiny" --manifest data.csv -o cache \
  --resolution 256px --threads "$THREADS" -q
end=$(date +%s.%N)
shape=$(python3 -c 'import csv; print(next(csv.DictReader(open("cache/index.csv")))["latent_shape"])')
awk -v n="$N" -v a="$start" -v b="$end" -v t="$THREADS" -v shape="$shape" \
  'BEGIN { s = b - a; printf "%d clips (33x192x336 -> z %s) in %.1f s with %d threads: %.1f clips/min\n", n, shape, s, t, n * 60 / s }'
