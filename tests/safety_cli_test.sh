#!/usr/bin/env bash
# vvae never destroys a user's files (issue 18). Each command that used to lose files runs
# against a folder whose every file is hashed before and after: the hashes must not change, the
# command must fail with one "vvae: error:" line (or succeed where it is allowed), and no
# temporary may be left anywhere.
set -u
VVAE=$(realpath "$1")
MAKE=$(realpath "$2")
DATA=$(cd "$3" && pwd)
BASE=$(mktemp -d)
trap 'rm -rf "$BASE"' EXIT
WORK=$BASE/work  # the user's files: hashed before and after each refused command
LOG=$BASE/log    # what the checks themselves write
mkdir -p "$WORK" "$LOG"
cd "$WORK" || exit 1
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
run() { "$VVAE" "$@" --threads 1; }

# A copy of the model: even a broken check cannot touch the repository's files.
cp -r "$DATA/golden/ae2d_small" model
MODEL=$WORK/model

# snapshot DIR...: every entry under DIR (not following symlinks): type, name, contents' hash
# or link target.
snapshot() {
  local d
  for d in "$@"; do
    find "$d" -type f -exec sha256sum {} + | sort -k 2
    find "$d" -type l -printf '%p -> %l\n' | sort
    find "$d" -type d | sort
  done
}

# no_temporaries: nothing a vvae run names as its own is left under the work folder.
no_temporaries() {
  local left
  left=$(find "$WORK" \( -name '*.tmp-*' -o -name '.vvae-tmp-*' -o -name '*.vvae-lock' \) \
    ! -name '*.tmp-userfile' -print)
  [ -z "$left" ] || fail "$1: left behind: $left"
}

# refused NAME CMD...: non-zero exit, exactly one "vvae: error:" line, the whole work folder
# (inputs and outputs) unchanged, no temporaries.
refused() {
  local name=$1
  shift
  snapshot "$WORK" >"$LOG/before"
  "$@" >"$LOG/stdout" 2>"$LOG/stderr"
  local rc=$?
  snapshot "$WORK" >"$LOG/after"
  [ $rc -ne 0 ] || fail "$name: exit code 0"
  [ "$(wc -l <"$LOG/stderr")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$LOG/stderr")"
  grep -q '^vvae: error: ' "$LOG/stderr" || fail "$name: not an error line: $(cat "$LOG/stderr")"
  cmp -s "$LOG/before" "$LOG/after" || fail "$name: files changed: $(diff "$LOG/before" "$LOG/after" | head -5)"
  no_temporaries "$name"
  ok "$name: $(cat "$LOG/stderr")"
}

"$MAKE" clip.mp4 --codec libx264 --frames 9 --size 32x48 --fps 24 >/dev/null || fail "make clip.mp4"
run encode --model "$MODEL" clip.mp4 -o z.safetensors -q || fail "encode clip.mp4"

# --- --frames DIR writes into a new or empty folder only ------------------------------------
mkdir -p photos/2024 && echo a >photos/holiday.jpg && echo b >photos/2024/beach.jpg
refused "decode --frames into a folder of photos" \
  run decode --model "$MODEL" "$MODEL/io.safetensors" --tensor z --frames -o photos
refused "... even with --overwrite" \
  run decode --model "$MODEL" "$MODEL/io.safetensors" --tensor z --frames -o photos --overwrite
mkdir -p vids && cp clip.mp4 vids/holiday.mp4
refused "convert a video into frames in its own folder" run convert vids/holiday.mp4 --frames -o vids
refused "convert --overwrite into the video's folder" run convert vids/holiday.mp4 --frames -o vids --overwrite
ln -s photos photolink
refused "--frames into a symlink to a non-empty folder" run convert clip.mp4 --frames -o photolink
cd photos && refused "--frames -o . in a non-empty folder" run convert ../clip.mp4 --frames -o .
cd "$WORK" || exit 1
mkdir -p theirs && echo mine >theirs/frame_00000.png
refused "frame_*.png that vvae did not write" run convert clip.mp4 --frames -o theirs --overwrite
ln -s nowhere dangling
refused "--frames into a dangling symlink" run convert clip.mp4 --frames -o dangling

# New and empty folders work (through a symlink too, which stays a symlink), and "-o .".
run convert clip.mp4 --frames -o fresh -q || fail "--frames into a new folder"
[ "$(ls fresh | wc -l)" -eq 9 ] && [ -s fresh/.vvae-frames ] || fail "fresh: $(ls -a fresh)"
mkdir -p empty && ln -s empty emptylink
run convert clip.mp4 --frames -o emptylink -q || fail "--frames into a symlink to an empty folder"
[ -L emptylink ] && [ "$(ls empty | wc -l)" -eq 9 ] || fail "symlinked empty folder: $(ls -la empty emptylink)"
mkdir -p dot && (cd dot && run convert ../clip.mp4 --frames -o . -q) || fail "--frames -o . in an empty folder"
[ "$(ls dot | wc -l)" -eq 9 ] || fail "-o .: $(ls -a dot)"
no_temporaries "frames into new and empty folders"
ok "--frames into a new folder, an empty one, a symlink to one and ."

# A frame set vvae wrote is replaced only with --overwrite, and never when it holds an input.
refused "frames vvae wrote, without --overwrite" run convert clip.mp4 --frames -o fresh
refused "--overwrite of a set that holds the input" run convert fresh/frame_00003.png --frames -o fresh --overwrite
ln fresh/frame_00004.png hardlinked.png
refused "--overwrite of a set that holds the input (a hard link)" \
  run convert hardlinked.png --frames -o fresh --overwrite
rm hardlinked.png
run convert clip.mp4 --frames -o fresh --num-frames 4 --overwrite -q || fail "--overwrite of a frame set"
[ "$(ls fresh | wc -l)" -eq 4 ] || fail "--overwrite left $(ls fresh | wc -l) frames"
echo n >fresh/notes.txt
refused "--overwrite of a set the user added a file to" run convert clip.mp4 --frames -o fresh --overwrite
refused "--overwrite without --frames" run convert clip.mp4 -o other.mp4 --overwrite

# --- an output is never an input ------------------------------------------------------------
cp "$MODEL/io.safetensors" io.safetensors
ln -s io.safetensors io_link.safetensors
ln io.safetensors io_hard.safetensors
refused "decode --output = --input" run decode --model "$MODEL" io.safetensors --tensor z -o io.safetensors
refused "decode --output a symlink to --input" run decode --model "$MODEL" io.safetensors --tensor z -o io_link.safetensors
refused "decode --output a hard link of --input" run decode --model "$MODEL" io_link.safetensors --tensor z -o io_hard.safetensors
refused "encode --output = --input" run encode --model "$MODEL" io.safetensors --tensor x -o ./io.safetensors
refused "encode --output the model's weights" run encode --model "$MODEL" io.safetensors --tensor x -o "$MODEL/weights.safetensors"
refused "convert --output = --input (mp4)" run convert clip.mp4 -o clip.mp4
refused "convert --output = --input (safetensors)" run convert z.safetensors -o z.safetensors
cp clip.mp4 self.mp4 && mkdir -p rself/orig && ln self.mp4 rself/orig/self_orig.mp4
refused "reconstruct over its own input (a hard link)" run reconstruct --model "$MODEL" self.mp4 -o rself
mkdir -p rin/orig && cp clip.mp4 rin/orig/c_orig.mp4
cp clip.mp4 c.mp4
printf 'path\nc.mp4\nrin/orig/c_orig.mp4\n' >rin2.csv
run reconstruct --model "$MODEL" --manifest rin2.csv -o rin -q >/dev/null 2>rin2.err
[ $? -eq 3 ] || fail "manifest whose clip is another clip's output: exit not 3"
cmp -s clip.mp4 rin/orig/c_orig.mp4 || fail "a manifest row's file was replaced by another row's output"
grep -q "is an input of this run" rin2.err || fail "no refusal message: $(cat rin2.err)"
[ -s rin/summary.json ] || fail "no summary after a refused clip"
no_temporaries "manifest: one clip's output is another's input"
ok "manifest: a clip whose output is another row's input is refused, the input kept"

# --- reconstruct: symlinked subfolders, user files, stale temporaries -------------------------
mkdir -p clips && cp clip.mp4 clips/c1.mp4
mkdir -p out outside && ln -s "$WORK/outside" out/orig && echo u >outside/c1_orig.mp4.tmp-userfile
refused "reconstruct into a symlinked subfolder" run reconstruct --model "$MODEL" clips/c1.mp4 -o out
rm out/orig && mkdir -p out2/orig && echo u >out2/orig/c1_orig.mp4.tmp-userfile
echo s >out2/orig/c1_orig.mp4.tmp-999999999-abcdef
run reconstruct --model "$MODEL" clips/c1.mp4 -o out2 -q || fail "reconstruct out2"
[ "$(cat out2/orig/c1_orig.mp4.tmp-userfile)" = u ] || fail "the user's tmp-looking file was removed"
[ -e out2/orig/c1_orig.mp4.tmp-999999999-abcdef ] && fail "a dead run's temporary was kept"
[ -s out2/orig/c1_orig.mp4 ] && [ -s out2/done/c1.json ] || fail "out2 outputs"
mkdir -p out3/done && echo "my notes" >out3/done/c1.json
refused "reconstruct over a done/NAME.json vvae did not write" run reconstruct --model "$MODEL" clips/c1.mp4 -o out3
ok "user files in output subfolders are kept; a dead run's temporary is cleaned"

# --- two runs on the same clip --------------------------------------------------------------
"$MAKE" clips/long.mkv --codec ffv1 --frames 48 --size 64x96 >/dev/null || fail "make long.mkv"
"$VVAE" reconstruct --model "$MODEL" clips/long.mkv -o same --compare --threads 1 -q >first.log 2>&1 &
first=$!
for _ in $(seq 1 600); do
  [ -e same/.long.vvae-lock ] && break
  sleep 0.02
done
"$VVAE" reconstruct --model "$MODEL" clips/long.mkv -o same --compare --threads 1 -q >second.log 2>&1
second_rc=$?
if kill -0 $first 2>/dev/null; then
  [ $second_rc -eq 1 ] || fail "second run on a locked clip: exit $second_rc"
  grep -q "^vvae: error: another vvae run is writing clip 'long'" second.log || fail "second run: $(cat second.log)"
  [ "$(wc -l <second.log)" -eq 1 ] || fail "second run: $(cat second.log)"
  wait $first || fail "the first run failed: $(cat first.log)"
  ok "a second run on the same clip is refused while the first completes"
else
  wait $first
  echo "skip: the first run finished before the second started (a fast machine)"
fi
[ -s same/recn/long_recn.mp4 ] && [ -s same/done/long.json ] || fail "the first run's outputs"
no_temporaries "two runs on the same clip"

# --- a non-UTF-8 path costs nobody their record ----------------------------------------------
cp clip.mp4 $'clips/c\xff.mp4'
printf 'path\nclips/c1.mp4\nclips/c\xff.mp4\n' >bytes.csv
run reconstruct --model "$MODEL" --manifest bytes.csv -o bytes -q >bytes.log 2>&1 || fail "non-UTF-8 manifest: $(cat bytes.log)"
[ "$(grep -c '"status": "ok"' bytes/summary.json)" -eq 2 ] || fail "summary lacks a clip: $(cat bytes/summary.json)"
grep -q '"path": "clips/c\\\\xff.mp4"' bytes/summary.json || fail "escaped path not in the summary"
grep -q '"escaped": \[' bytes/summary.json || fail "escaped fields not listed"
[ -s $'bytes/done/c\xff.json' ] && [ -s $'bytes/recn/c\xff_recn.mp4' ] || fail "non-UTF-8 clip outputs"
run reconstruct --model "$MODEL" --manifest bytes.csv -o bytes --resume >resume.log 2>&1 || fail "resume"
[ "$(grep -c 'complete from an earlier run' resume.log)" -eq 2 ] || fail "resume redid a clip: $(cat resume.log)"
run encode --model "$MODEL" $'clips/c\xff.mp4' -o bytes.latent.safetensors -q || fail "encode a non-UTF-8 path"
grep -aq '"source":"clips/c\\\\xff.mp4"' bytes.latent.safetensors || fail "latent source not escaped"
ok "non-UTF-8 paths: both clips recorded, the name escaped, resume finds both"

# --- a run that cannot fit is refused at once ------------------------------------------------
make_safetensors() {
  printf "$(printf '\\x%02x' "${#2}")\x00\x00\x00\x00\x00\x00\x00%s" "$2" >"$1"
  head -c "$3" /dev/zero >>"$1"
}
make_safetensors big.safetensors '{"z":{"dtype":"F32","shape":[1,4,1,1024,1024],"data_offsets":[0,16777216]}}' 16777216
"$MAKE" big.png --codec png --still --size 2048x2048 >/dev/null || fail "make big.png"
# limited CMD...: CMD under a 1 GB address-space limit (the plans below need 2-3 GiB).
limited() { (ulimit -v 1000000 && exec "$@"); }
if limited "$VVAE" --help >/dev/null 2>&1; then
  start=$SECONDS
  refused "decode past the address-space limit" \
    limited "$VVAE" decode --model "$MODEL" big.safetensors -o bigx.safetensors --threads 1
  grep -q "^vvae: error: decoding \[1, 4, 1, 1024, 1024\] needs ~[0-9.]* GiB (the plan.s peak) but the address-space limit .* (ulimit -v) leaves" "$LOG/stderr" \
    || fail "decode: $(cat "$LOG/stderr")"
  refused "encode past the address-space limit" \
    limited "$VVAE" encode --model "$MODEL" big.png -o bigz.safetensors --threads 1 -q
  grep -q "^vvae: error: encoding \[1, 3, 1, 2048, 2048\] needs" "$LOG/stderr" || fail "encode: $(cat "$LOG/stderr")"
  mkdir -p bigr
  refused "reconstruct past the address-space limit" \
    limited "$VVAE" reconstruct --model "$MODEL" big.png -o bigr --threads 1 -q
  grep -q "^vvae: error: reconstructing \[1, 3, 1, 2048, 2048\] needs" "$LOG/stderr" \
    || fail "reconstruct: $(cat "$LOG/stderr")"
  [ $((SECONDS - start)) -le 30 ] || fail "the refusals took $((SECONDS - start)) s"
  ok "runs past the address-space limit are refused before computing"
else
  echo "skip: this build cannot start under ulimit -v (a sanitizer build)"
fi
no_temporaries "the end"

checks_end "safety"
