#!/usr/bin/env bash
# The command-line contract: encode/decode/info through build/vvae against the golden files,
# and every bad input giving one error line, a non-zero exit and no output file.
set -u
VVAE=$1
DATA=$(cd "$2" && pwd)
CASE=$DATA/golden/ae2d_small
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
source "$(dirname "$(realpath "$0")")/lib/checks.sh"

# check_parity NAME FILE_A TENSOR_A FILE_B TENSOR_B [TOL]: max|a-b|/max|a| <= TOL (1e-4).
check_parity() {
  "$VVAE" compare "$2" "$4" --tensor-a "$3" --tensor-b "$5" >"$WORK/cmp" || { fail "$1: compare"; return; }
  local r
  r=$(sed -E 's/.*max\|a-b\|\/max\|a\| ([^ ]+).*/\1/' "$WORK/cmp")
  awk -v r="$r" -v tol="${6:-1e-4}" 'BEGIN { exit !(r <= tol) }' || fail "$1: relative difference $r"
  echo "ok: $1: relative difference $r"
}

# --- the contract works --------------------------------------------------------------------
"$VVAE" encode --model "$CASE" --input "$CASE/io.safetensors" --output "$WORK/z.safetensors" -q \
  || fail "encode exited non-zero"
check_parity "CLI encode z" "$WORK/z.safetensors" z "$CASE/io.safetensors" z

"$VVAE" decode --model "$CASE" --input "$WORK/z.safetensors" --output "$WORK/x.safetensors" -q || fail "decode"
check_parity "CLI decode" "$WORK/x.safetensors" x "$CASE/io.safetensors" dec

# --config/--weights and symlinked model directories work too.
mkdir -p "$WORK/linked"
ln -s "$CASE/config.json" "$WORK/linked/config.json"
ln -s "$CASE/weights.safetensors" "$WORK/linked/weights.safetensors"
"$VVAE" encode --model "$WORK/linked" -i "$CASE/io.safetensors" -o "$WORK/z2.safetensors" -q --threads 1 \
  || fail "symlinked model dir"
"$VVAE" encode --config "$CASE/config.json" --weights "$CASE/weights.safetensors" \
  -i "$CASE/io.safetensors" -o "$WORK/z3.safetensors" -q || fail "--config --weights"
# Same model two ways: equal up to the last bits oneDNN's threading may change.
check_parity "symlinked vs explicit config" "$WORK/z2.safetensors" z "$WORK/z3.safetensors" z 1e-5

# --sample draws from the posterior, reproducibly per seed.
"$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$WORK/s1.safetensors" --sample --seed 3 -q || fail "sample"
"$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$WORK/s2.safetensors" --sample --seed 3 -q --threads 1 || fail "sample"
check_parity "same seed, 1 and 2 threads" "$WORK/s1.safetensors" z "$WORK/s2.safetensors" z 1e-5

for cmd in encode decode info compare; do
  "$VVAE" $cmd --help >/dev/null || fail "$cmd --help"
done
"$VVAE" info --model flux-ae --input-shape 1,3,17,256,256 >"$WORK/info" || fail "info flux-ae"
grep -q "83,819,683" "$WORK/info" || fail "info parameter count: $(cat "$WORK/info")"
grep -q "\[1, 16, 17, 32, 32\]" "$WORK/info" || fail "info latent shape: $(cat "$WORK/info")"
echo "ok: info"

# --- hunyuan: tiled as its config says, untiled with --no-tiling, tiled by the CLI flags -------
HY=$DATA/golden/hunyuan_tiled_ov50
"$VVAE" encode --model "$HY" -i "$HY/io.safetensors" -o "$WORK/hz.safetensors" -q || fail "hunyuan encode"
check_parity "hunyuan tiled encode z" "$WORK/hz.safetensors" z "$HY/io.safetensors" z
check_parity "hunyuan tiled encode logvar" "$WORK/hz.safetensors" logvar "$HY/io.safetensors" logvar
"$VVAE" decode --model "$HY" -i "$HY/io.safetensors" --tensor z -o "$WORK/hx.safetensors" -q || fail "hunyuan decode"
check_parity "hunyuan tiled decode" "$WORK/hx.safetensors" x "$HY/io.safetensors" dec
"$VVAE" encode --model "$HY" -i "$HY/io.safetensors" -o "$WORK/hzu.safetensors" -q --no-tiling || fail "hunyuan untiled encode"
check_parity "hunyuan untiled encode z" "$WORK/hzu.safetensors" z "$HY/io.safetensors" z_untiled
"$VVAE" decode --model "$HY" -i "$HY/io.safetensors" --tensor z_untiled -o "$WORK/hxu.safetensors" -q --no-tiling \
  || fail "hunyuan untiled decode"
check_parity "hunyuan untiled decode" "$WORK/hxu.safetensors" x "$HY/io.safetensors" dec_untiled
# hunyuan_small has the same weights and no tiling: the flags make it hunyuan_tiled_ov50.
"$VVAE" decode --model "$DATA/golden/hunyuan_small" -i "$HY/io.safetensors" --tensor z -o "$WORK/hxf.safetensors" -q \
  --tile-size 32 --tile-frames 16 --tile-overlap 0.5 || fail "hunyuan decode with tile flags"
check_parity "hunyuan decode with tile flags" "$WORK/hxf.safetensors" x "$HY/io.safetensors" dec

"$VVAE" info --model hunyuan-vae --input-shape 1,3,97,512,512 >"$WORK/hinfo" || fail "info hunyuan-vae"
for want in "246,478,803" "\[1, 3, 97, 512, 512\] -> \[1, 16, 25, 64, 64\]" "temporal tiles: 3 of 65 frames" \
  "spatial tiles: 3 x 3 of 256" "\[1, 16, 25, 64, 64\] -> \[1, 3, 97, 512, 512\]" "peak memory ~"; do
  grep -q "$want" "$WORK/hinfo" || fail "info hunyuan-vae lacks '$want': $(cat "$WORK/hinfo")"
done
echo "ok: info hunyuan-vae"

# --- dcae: tiled parity, untiled parity, plans ----------------------------------------------
DCAE=$DATA/golden/dcae_tiled
"$VVAE" encode --model "$DCAE" -i "$DCAE/io.safetensors" -o "$WORK/dz.safetensors" -q || fail "dcae encode"
check_parity "dcae tiled z" "$WORK/dz.safetensors" z "$DCAE/io.safetensors" z
"$VVAE" decode --model "$DCAE" -i "$DCAE/io.safetensors" --tensor z -o "$WORK/dx.safetensors" -q || fail "dcae decode"
check_parity "dcae tiled dec" "$WORK/dx.safetensors" x "$DCAE/io.safetensors" dec
"$VVAE" encode --model "$DCAE" -i "$DCAE/io.safetensors" -o "$WORK/dzu.safetensors" -q --no-tiling || fail "dcae encode --no-tiling"
check_parity "dcae untiled z" "$WORK/dzu.safetensors" z "$DCAE/io.safetensors" z_untiled
"$VVAE" info --model dc-ae-f32t4c128 --input-shape 1,3,100,256,256 >"$WORK/info" || fail "info dcae"
grep -q "459,462,147" "$WORK/info" || fail "dcae parameter count: $(cat "$WORK/info")"
grep -q "\[1, 128, 25, 8, 8\] -> \[1, 3, 100, 256, 256\]" "$WORK/info" || fail "dcae decode plan: $(cat "$WORK/info")"
grep -q "merged into the previous one" "$WORK/info" || fail "dcae merge not reported: $(cat "$WORK/info")"
"$VVAE" info --model dc-ae-f32t4c128 --input-shape 1,3,100,256,256 --dcae-short-tail-compat >"$WORK/info" || fail "info compat"
grep -q "\[1, 128, 25, 8, 8\] -> \[1, 3, 97, 256, 256\]" "$WORK/info" || fail "dcae compat plan: $(cat "$WORK/info")"
grep -q "upstream short tail" "$WORK/info" || fail "dcae compat not reported: $(cat "$WORK/info")"
echo "ok: dcae info plans (merged tail and --dcae-short-tail-compat)"

# --- bad input ------------------------------------------------------------------------------
OUT=$WORK/out.safetensors
head -c 100 "$CASE/weights.safetensors" >"$WORK/truncated.safetensors"
# make_safetensors FILE HEADER DATA_BYTES: an 8-byte header length, the header, zero data.
make_safetensors() {
  printf "$(printf '\\x%02x' "${#2}")\x00\x00\x00\x00\x00\x00\x00%s" "$2" >"$1"
  head -c "$3" /dev/zero >>"$1"
}
make_safetensors "$WORK/lying.safetensors" '{"x":{"dtype":"F32","shape":[1,3,1,8,8],"data_offsets":[0,768]}}' 100
printf '{"family": "ae2d", "model_args": {"ch": 32, "is_training": true}}' >"$WORK/bad_config.json"
make_safetensors "$WORK/rank4.safetensors" '{"x":{"dtype":"F32","shape":[1,3,2,2],"data_offsets":[0,48]}}' 48

expect_error "missing input" "$OUT" "$VVAE" encode --model "$CASE" -i "$WORK/nope.safetensors" -o "$OUT"
expect_error "truncated checkpoint" "$OUT" "$VVAE" encode --config "$CASE/config.json" --weights "$WORK/truncated.safetensors" -i "$CASE/io.safetensors" -o "$OUT"
expect_error "lying header" "$OUT" "$VVAE" encode --model "$CASE" -i "$WORK/lying.safetensors" -o "$OUT"
expect_error "bad config" "$OUT" "$VVAE" encode --config "$WORK/bad_config.json" --weights "$CASE/weights.safetensors" -i "$CASE/io.safetensors" -o "$OUT"
expect_error "wrong rank" "$OUT" "$VVAE" encode --model "$CASE" -i "$WORK/rank4.safetensors" -o "$OUT"
expect_error "wrong channels" "$OUT" "$VVAE" decode --model "$CASE" -i "$CASE/io.safetensors" --tensor x -o "$OUT"
expect_error "ambiguous input" "$OUT" "$VVAE" decode --model "$CASE" -i "$CASE/weights.safetensors" -o "$OUT"
expect_error "unwritable output" "$WORK/no/dir/out.safetensors" "$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$WORK/no/dir/out.safetensors"
mkdir -p "$WORK/ro" && chmod 555 "$WORK/ro"
if [ "$(id -u)" != 0 ]; then
  expect_error "read-only folder" "$WORK/ro/out.safetensors" "$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$WORK/ro/out.safetensors"
fi
expect_error "unknown preset file" "$OUT" "$VVAE" encode --model "$CASE/weights.safetensors" -i "$CASE/io.safetensors" -o "$OUT"
expect_error "unknown model" "$OUT" "$VVAE" encode --model nothing-here -i "$CASE/io.safetensors" -o "$OUT"
expect_error "bad shape" "$OUT" "$VVAE" info --model flux-ae --input-shape 1,3,x,8,8
expect_error "odd frame size" "$OUT" "$VVAE" info --model flux-ae --input-shape 1,3,1,30,32
expect_error "dcae 4 frames" "$OUT" "$VVAE" info --model dc-ae-f32t4c128 --input-shape 1,3,4,256,256
expect_error "dcae frame size" "$OUT" "$VVAE" info --model dc-ae-f32t4c128 --input-shape 1,3,8,250,256
expect_error "short-tail flag on ae2d" "$OUT" "$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$OUT" --dcae-short-tail-compat

expect_error "hunyuan frame count" "$OUT" "$VVAE" info --model hunyuan-vae --input-shape 1,3,96,512,512
grep -q "1 + 4k frames" "$WORK/stderr" || fail "hunyuan frame count message: $(cat "$WORK/stderr")"
expect_error "hunyuan misaligned tiles" "$OUT" "$VVAE" encode --model "$HY" -i "$HY/io.safetensors" -o "$OUT" \
  --tile-size 32 --tile-overlap 0.3
expect_error "hunyuan --no-tiling with a tile size" "$OUT" "$VVAE" encode --model "$HY" -i "$HY/io.safetensors" -o "$OUT" \
  --no-tiling --tile-size 64

# --- issue 17: limits, fuzz findings, NaN, CLI11's messages ----------------------------------
# expect_fast_error NAME OUTPUT CMD...: expect_error, and within 10 s (a hang is a failure).
expect_fast_error() {
  local name=$1 out=$2
  shift 2
  expect_error "$name" "$out" timeout 10 "$@"
  grep -q "^vvae: error: " "$WORK/stderr" || fail "$name: no answer within 10 s"
}
expect_fast_error "absurd input shape" "$OUT" "$VVAE" info --model hunyuan-vae --input-shape 1,3,9999997,99992,99992
grep -q "frames 9999997; vvae's limit is 65536" "$WORK/stderr" || fail "absurd shape: the limit is not named"
expect_fast_error "overflowing input shape" "$OUT" "$VVAE" info --model flux-ae --input-shape 1000,3,60000,16000,16000
expect_fast_error "too many tiles" "$OUT" "$VVAE" info --model dc-ae-f32t4c128 --input-shape 1,3,8,16384,16384 --tile-size 32 --tile-overlap 0.9
for finding in "$DATA"/fuzz/config/*; do
  expect_fast_error "fuzz finding $(basename "$finding")" "$OUT" "$VVAE" info --config "$finding" --input-shape 1,3,1,32,32
  grep -q "is out of range\|has unknown key" "$WORK/stderr" || fail "fuzz finding $(basename "$finding"): $(cat "$WORK/stderr")"
done
# NaN and infinity: 0xff bytes are NaN in float32.
make_safetensors "$WORK/nan.safetensors" '{"x":{"dtype":"F32","shape":[1,3,1,8,8],"data_offsets":[0,768]}}' 0
head -c 768 /dev/zero | tr '\0' '\377' >>"$WORK/nan.safetensors"
expect_fast_error "NaN input" "$OUT" "$VVAE" encode --model "$CASE" -i "$WORK/nan.safetensors" -o "$OUT"
grep -q "holds 192 NaN or infinite values" "$WORK/stderr" || fail "NaN input: $(cat "$WORK/stderr")"
make_safetensors "$WORK/nanz.safetensors" '{"z":{"dtype":"F32","shape":[1,4,1,2,2],"data_offsets":[0,64]}}' 0
head -c 64 /dev/zero | tr '\0' '\377' >>"$WORK/nanz.safetensors"
expect_fast_error "NaN latent" "$OUT" "$VVAE" decode --model "$CASE" -i "$WORK/nanz.safetensors" -o "$OUT"
grep -q "the latent \[1, 4, 1, 2, 2\] holds 16 NaN" "$WORK/stderr" || fail "NaN latent: $(cat "$WORK/stderr")"
# CLI11's own errors are vvae's one line, with readable bounds.
expect_fast_error "negative --threads" "$OUT" "$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$OUT" --threads -1
grep -q "^vvae: error: --threads: must be in \[0, 4096\], got -1" "$WORK/stderr" || fail "--threads message: $(cat "$WORK/stderr")"
expect_fast_error "unexpected argument" "$OUT" "$VVAE" encode --model "$CASE" -i "$CASE/io.safetensors" -o "$OUT" extra
grep -q "^vvae: error: The following argument was not expected: extra (see vvae encode --help)" "$WORK/stderr" \
  || fail "unexpected argument message: $(cat "$WORK/stderr")"
expect_fast_error "unknown option" "$OUT" "$VVAE" decode --model "$CASE" -i "$CASE/io.safetensors" -o "$OUT" --bogus
expect_fast_error "missing subcommand" "$OUT" "$VVAE"
expect_fast_error "huge --tile-size" "$OUT" "$VVAE" encode --model "$HY" -i "$HY/io.safetensors" -o "$OUT" --tile-size 99999999999
grep -q "must be in \[1, 16384\]" "$WORK/stderr" || fail "--tile-size bound: $(cat "$WORK/stderr")"
"$VVAE" --help >/dev/null || fail "--help"
"$VVAE" --version | grep -q . || fail "--version"

checks_end "CLI"
