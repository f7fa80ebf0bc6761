#!/usr/bin/env bash
# Full disks and read-only folders: every writing command gives one "vvae: error:" line and
# leaves nothing partial (neither the output nor a temporary). The disks are small tmpfs mounts,
# which need root (the project's machines and CI have it); elsewhere the test reports itself
# skipped (77).
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
checks_begin "$1" "$2" "$3"
run() { "$VVAE" "$@" --threads 1; }

mounts=()
cleanup() {
  local m
  for m in "${mounts[@]}"; do umount "$m" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT
# mount_tmpfs DIR OPTIONS: a fresh tmpfs at DIR, or skip the whole test when mounting is refused.
mount_tmpfs() {
  mkdir -p "$1"
  if [ "$(id -u)" -ne 0 ] || ! mount -t tmpfs -o "$2" tmpfs "$1" 2>/dev/null; then
    echo "skipped: mounting a tmpfs needs root (or is not allowed here)"
    exit 77
  fi
  mounts+=("$1")
}
# empty DIR NAME: nothing was left in DIR, temporary or not.
expect_empty() {
  [ -z "$(ls -A "$1")" ] || fail "$2: left in $1: $(ls -A "$1" | tr '\n' ' ')"
}

"$MAKE" clip.mp4 --codec libx264 --frames 9 --size 64x96 || fail "making the clip"
run encode --model "$MODEL" --input clip.mp4 --output latent.safetensors >/dev/null 2>&1 ||
  fail "encoding the clip"
printf 'path\n%s\n' "$WORK/clip.mp4" > manifest.csv

# A disk of one page (4 KiB): every output is larger.
mount_tmpfs full size=4k
expect_error "encode onto a full disk" full/latent.safetensors \
  run encode --model "$MODEL" --input clip.mp4 --output full/latent.safetensors
expect_empty full "encode onto a full disk"
expect_error "decode to a video on a full disk" full/clip.mp4 \
  run decode --model "$MODEL" --input latent.safetensors --output full/clip.mp4
expect_empty full "decode to a video on a full disk"
expect_error "decode to a latent-sized tensor file on a full disk" full/x.safetensors \
  run decode --model "$MODEL" --input latent.safetensors --output full/x.safetensors
expect_empty full "decode to a tensor file on a full disk"
# reconstruct writes a folder of finished files: what it finished may stay (a resumed run keeps
# it), the file it could not finish may not, nor any temporary.
if run reconstruct --model "$MODEL" clip.mp4 --output full/recn >/dev/null 2>reconstruct.err; then
  fail "reconstruct onto a full disk: exit code 0"
fi
[ "$(wc -l <reconstruct.err)" -eq 1 ] && grep -q '^vvae: error: .*No space left on device' reconstruct.err ||
  fail "reconstruct onto a full disk: not one error line: $(cat reconstruct.err)"
[ -e full/recn/recn/clip_recn.mp4 ] && fail "reconstruct onto a full disk: a reconstruction was left"
find full -name '*.tmp-*' | grep -q . && fail "reconstruct onto a full disk: a temporary was left"
ok "reconstruct onto a full disk: $(cat reconstruct.err)"
umount full && mount -t tmpfs -o size=4k tmpfs full || fail "remounting the full disk"

# A read-only folder: nothing can be created in it.
mount_tmpfs readonly ro,size=64k
expect_error "encode into a read-only folder" readonly/latent.safetensors \
  run encode --model "$MODEL" --input clip.mp4 --output readonly/latent.safetensors
expect_error "decode into a read-only folder" readonly/clip.mp4 \
  run decode --model "$MODEL" --input latent.safetensors --output readonly/clip.mp4
expect_error "a latent cache in a read-only folder" readonly/cache \
  run encode --model "$MODEL" --manifest manifest.csv --output readonly/cache
expect_empty readonly "writing into a read-only folder"

# Reading from a read-only mount is fine: the clip and the model are only read.
mount_tmpfs source size=8m
cp clip.mp4 source/ && mount -o remount,ro source || fail "remounting read-only"
run encode --model "$MODEL" --input source/clip.mp4 --output from_ro.safetensors >/dev/null 2>&1 ||
  fail "encoding a clip on a read-only mount"
"$VVAE" compare from_ro.safetensors latent.safetensors --tensor-a z --tensor-b z 2>&1 |
  grep -q 'max|a-b| 0 ' || fail "the clip read from a read-only mount encodes differently"
ok "a clip on a read-only mount encodes as any other"

checks_end "disk fault"
