#!/usr/bin/env bash
# --max-memory (issue 16) measured: a clip encoded and reconstructed (HunyuanVideo), a latent
# decoded (DC-AE), large frames encoded and decoded (the 2D AE, in vvae's own spatial tiles)
# under a cap below their untiled peak run tiled, and the whole process's peak resident memory
# (getrusage of the child) stays below the cap and below the estimate the command printed, and
# within 20% of it; a cap above keeps the configured plan; a cap below anything is refused with
# one error line naming the smallest cap, writing nothing.
#   memory_cap_test.sh VVAE MAKE_VIDEO TESTS_DATA
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
skip_if_sanitized
AE2D=$(realpath "$(dirname "$(realpath "$0")")/../models/ae2d-tiny")  # before checks_begin cds
checks_begin "$@"

# peak_mib CMD...: runs CMD (its stdout to run.out); prints "PEAK_MIB EXIT_CODE".
peak_mib() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
with open("run.out", "w") as out:
    rc = subprocess.run(sys.argv[1:], stdout=out).returncode
print("%.1f %d" % (resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, rc))
PY
}
# estimate_mib: the estimate in run.out's --max-memory line ("(..., ~123.4 MiB)").
estimate_mib() {
  sed -nE 's/^--max-memory .*~([0-9.]+) MiB.*/\1/p' run.out | tail -1
}
# check_capped NAME CAP_MIB CMD...: CMD under --max-memory CAP tiles, and stays within it.
check_capped() {
  local name=$1 cap=$2
  shift 2
  read -r peak rc < <(peak_mib "$@" --max-memory "${cap}M")
  [ "$rc" -eq 0 ] || { fail "$name: exit $rc: $(cat run.out)"; return; }
  grep -q "running with" run.out || fail "$name: did not tile under ${cap} MiB: $(grep max-memory run.out)"
  local est
  est=$(estimate_mib)
  [ -n "$est" ] || { fail "$name: no estimate in $(cat run.out)"; return; }
  awk -v p="$peak" -v c="$cap" 'BEGIN { exit !(p <= c) }' || fail "$name: peak ${peak} MiB above the cap ${cap} MiB"
  awk -v p="$peak" -v e="$est" 'BEGIN { exit !(p <= e && p >= 0.8 * e) }' ||
    fail "$name: peak ${peak} MiB not within [80%, 100%] of the estimate ${est} MiB"
  ok "$name: cap ${cap} MiB -> $(sed -nE 's/.*running with (.*)/\1/p' run.out); measured ${peak} MiB"
}

"$MAKE" clip.mkv --codec ffv1 --frames 33 --size 192x192 || fail "make clip"
HUNYUAN=$DATA/golden/hunyuan_tiled
DCAE=$DATA/golden/dcae_tiled

# --- HunyuanVideo encode ---------------------------------------------------------------------
read -r untiled rc < <(peak_mib "$VVAE" encode --model "$HUNYUAN" clip.mkv -o z.safetensors --threads 2 --no-tiling --max-memory 64G)
[ "$rc" -eq 0 ] || fail "untiled hunyuan encode: exit $rc"
grep -q "the configured plan fits" run.out || fail "a cap above: $(grep max-memory run.out)"
ok "hunyuan encode untiled: ${untiled} MiB, estimate $(estimate_mib) MiB"
cap=$(awk -v u="$untiled" 'BEGIN { printf "%d", u * 0.7 }')
check_capped "hunyuan encode" "$cap" "$VVAE" encode --model "$HUNYUAN" clip.mkv -o z_capped.safetensors --threads 2 --no-tiling
cap=$(awk -v u="$untiled" 'BEGIN { printf "%d", u * 0.5 }')
check_capped "hunyuan encode" "$cap" "$VVAE" encode --model "$HUNYUAN" clip.mkv -o z_capped.safetensors --threads 2 --no-tiling
expect_error "a cap below anything" z_none.safetensors "$VVAE" encode --model "$HUNYUAN" clip.mkv -o z_none.safetensors --max-memory 8M
grep -q "raise the cap to at least" "$WORK/stderr" || fail "the refusal names no smallest cap"
expect_error "a cap that is not a size" z_none.safetensors "$VVAE" encode --model "$HUNYUAN" clip.mkv -o z_none.safetensors --max-memory lots

# --- encode --manifest: each clip streamed and fitted under the cap ---------------------------
"$MAKE" clip2.mkv --codec ffv1 --frames 17 --size 160x160 || fail "make clip2"
printf 'path\n%s\n%s\n' "$PWD/clip.mkv" "$PWD/clip2.mkv" > manifest.csv
"$VVAE" encode --manifest manifest.csv -o cache_whole --model "$HUNYUAN" --threads 2 --no-tiling -q || fail "uncapped manifest"
read -r peak rc < <(peak_mib "$VVAE" encode --manifest manifest.csv -o cache_capped --model "$HUNYUAN" --threads 2 --no-tiling --max-memory "${cap}M")
[ "$rc" -eq 0 ] || fail "capped manifest: exit $rc: $(cat run.out)"
[ "$(grep -c 'running with' run.out)" -eq 2 ] || fail "capped manifest: each clip's plan is not said: $(cat run.out)"
awk -v p="$peak" -v c="$cap" 'BEGIN { exit !(p <= c) }' || fail "capped manifest: peak $peak MiB above the cap $cap MiB"
# The cap is in the cache key, and the capped latent of clip.mkv is the capped single encode's.
capped_latent=$(find cache_capped/latents -name '*.safetensors' | head -1)
whole_key=$(find cache_whole/latents -name '*.safetensors' -printf '%f\n' | sort | head -1)
[ -n "$capped_latent" ] || fail "capped manifest wrote no latent"
find cache_capped/latents -name "$whole_key" | grep -q . && fail "capped manifest: a capped latent has an uncapped run's key"
# The single encode with the tiling the manifest run names for clip.mkv (a single capped run
# may pick another: the estimates of two tilings can lie within the baseline's noise of a cap).
chosen=$(grep "clip.mkv: --max-memory" run.out | sed -n 's/.*running with \(.*\) ([0-9]* tiles.*/\1/p')
case "$chosen" in
  "spatial tiles of "*" px, no temporal tiles")
    tiles=(--tile-size "$(echo "$chosen" | awk '{ print $4 }')" --no-temporal-tiling) ;;
  "spatial tiles of "*" px, temporal tiles of "*" frames")
    tiles=(--tile-size "$(echo "$chosen" | awk '{ print $4 }')" --tile-frames "$(echo "$chosen" | awk '{ print $9 }')") ;;
  *) fail "capped manifest: no tiling named for clip.mkv: $(cat run.out)"; tiles=() ;;
esac
"$VVAE" encode --model "$HUNYUAN" clip.mkv -o z_same.safetensors --threads 2 "${tiles[@]}" -q || fail "encode with ${tiles[*]}"
found=0
for f in $(find cache_capped/latents -name '*.safetensors'); do
  "$VVAE" compare "$f" z_same.safetensors --tensor-a z --tensor-b z 2>/dev/null | grep -q "max|a-b| 0 " && found=1
done
[ "$found" -eq 1 ] || fail "capped manifest: no latent equals the single encode of clip.mkv with ${tiles[*]}"
ok "encode --manifest: cap ${cap} MiB, 2 clips fitted, measured ${peak} MiB"

# --- reconstruct: a clip streamed, its encode and decode each fitted beside its video writers --
read -r whole rc < <(peak_mib "$VVAE" reconstruct --model "$HUNYUAN" clip.mkv -o rec_whole --threads 2 --no-tiling)
[ "$rc" -eq 0 ] || fail "untiled reconstruct: exit $rc"
cap=$(awk -v u="$whole" 'BEGIN { printf "%d", u * 0.45 }')
read -r peak rc < <(peak_mib "$VVAE" reconstruct --model "$HUNYUAN" clip.mkv -o rec_capped --threads 2 --no-tiling --max-memory "${cap}M" -v)
[ "$rc" -eq 0 ] || fail "capped reconstruct: exit $rc"
[ "$(grep -c 'running with' run.out)" -eq 2 ] || fail "capped reconstruct: the encode and decode plans are not both said: $(cat run.out)"
awk -v p="$peak" -v c="$cap" 'BEGIN { exit !(p <= c) }' || fail "capped reconstruct: peak $peak MiB above the cap $cap MiB"
ok "reconstruct: untiled ${whole} MiB; cap ${cap} MiB -> measured ${peak} MiB"

# --- DC-AE decode -----------------------------------------------------------------------------
"$VVAE" encode --model "$DCAE" clip.mkv --num-frames 32 -o dz.safetensors --threads 2 -q || fail "dcae encode"
read -r untiled rc < <(peak_mib "$VVAE" decode --model "$DCAE" dz.safetensors -o x.safetensors --threads 2 --no-tiling --max-memory 64G)
[ "$rc" -eq 0 ] || fail "untiled dcae decode: exit $rc"
ok "dcae decode untiled: ${untiled} MiB, estimate $(estimate_mib) MiB"
cap=$(awk -v u="$untiled" 'BEGIN { printf "%d", u * 0.7 }')
check_capped "dcae decode" "$cap" "$VVAE" decode --model "$DCAE" dz.safetensors -o x_capped.safetensors --threads 2 --no-tiling

# --- 2D AE encode and decode of large frames: vvae's own spatial tiles inside each frame ------
"$MAKE" frames.mkv --codec ffv1 --frames 2 --size 512x512 || fail "make 512x512 clip"
read -r untiled rc < <(peak_mib "$VVAE" encode --model "$AE2D" frames.mkv -o az.safetensors --threads 2 --max-memory 64G)
[ "$rc" -eq 0 ] || fail "untiled 2D AE encode: exit $rc"
ok "2D AE encode untiled: ${untiled} MiB, estimate $(estimate_mib) MiB"
cap=$(awk -v u="$untiled" 'BEGIN { printf "%d", u * 0.7 }')
check_capped "2D AE encode" "$cap" "$VVAE" encode --model "$AE2D" frames.mkv -o az_capped.safetensors --threads 2
grep -q "vvae's own tiles" run.out || fail "the 2D AE's capped plan does not say its tiles are vvae's: $(grep max-memory run.out)"
read -r untiled rc < <(peak_mib "$VVAE" decode --model "$AE2D" az.safetensors -o ax.safetensors --threads 2 --max-memory 64G)
[ "$rc" -eq 0 ] || fail "untiled 2D AE decode: exit $rc"
ok "2D AE decode untiled: ${untiled} MiB, estimate $(estimate_mib) MiB"
cap=$(awk -v u="$untiled" 'BEGIN { printf "%d", u * 0.7 }')
check_capped "2D AE decode" "$cap" "$VVAE" decode --model "$AE2D" az.safetensors -o ax_capped.safetensors --threads 2

checks_end "memory cap"
