#!/usr/bin/env bash
# Videos through the command line: encode/decode/convert/reconstruct on files made by
# vvae_make_video, frames checked numerically (vvae compare), every bad input giving one error
# line and no output, and manifest mode (failed clips, shards, resume after a killed run).
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
checks_begin "$@"
run() { "$VVAE" "$@" --threads 1; }


# psnr_of A B [TENSOR_A TENSOR_B]: the PSNR (range 2) vvae compare reports.
psnr_of() {
  "$VVAE" compare "$1" "$2" ${3:+--tensor-a $3} ${4:+--tensor-b $4} | sed -E 's/.*psnr\(range 2\) ([^ ]+) dB.*/\1/'
}
at_least() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a >= b) }'; }

# --- inputs ---------------------------------------------------------------------------------
"$MAKE" clip.mp4 --codec libx264 --frames 9 --size 32x48 --fps 24 || fail "make clip.mp4"
"$MAKE" clip.mkv --codec ffv1 --frames 9 --size 32x48 --fps 24 || fail "make clip.mkv"
"$MAKE" odd.mkv --codec ffv1 --frames 3 --size 33x47 --pattern index || fail "make odd.mkv"
"$MAKE" pic.png --codec png --still --size 32x48 || fail "make pic.png"
"$MAKE" alpha.png --codec png --still --alpha --size 32x48 || fail "make alpha.png"

# --- encode / decode on videos --------------------------------------------------------------
run encode --model "$MODEL" clip.mp4 -o clip.latent.safetensors >enc.log || fail "encode mp4"
header=$(head -c 4000 clip.latent.safetensors | tr -d '\0')
for kv in '"fps":"24"' '"frames":"9"' '"source":"clip.mp4"' '"family":"ae2d"' '"size":"32x48"' \
          '"source_size":"32x48"' '"source_frames":"9"' '"config_hash":"fnv1a64:' '"scale_factor":"0.3611"' \
          '"z":{' '"mean":{' '"logvar":{'; do
  case $header in *"$kv"*) ;; *) fail "latent metadata lacks $kv" ;; esac
done
grep -q "encoded \[1, 3, 9, 32, 48\]" enc.log || fail "encode output: $(cat enc.log)"
ok "encode clip.mp4 with metadata"
run encode --model "$MODEL" -i clip.mkv --output clip2.latent.safetensors -q || fail "encode -i/--output"

# decode: the same clip as a tensor, a lossless PNG folder and an H.264 mp4.
run decode --model "$MODEL" clip.latent.safetensors -o rec.safetensors -q || fail "decode to tensor"
run decode --model "$MODEL" clip.latent.safetensors -o rec_frames --frames -q || fail "decode --frames"
[ "$(ls rec_frames | wc -l)" -eq 9 ] || fail "decode --frames wrote $(ls rec_frames | wc -l) files"
run decode --model "$MODEL" clip.latent.safetensors -o rec.mp4 -q || fail "decode to mp4"
"$VVAE" convert rec.mp4 -o rec_mp4.safetensors -q || fail "convert rec.mp4"
"$VVAE" convert rec_frames/frame_00004.png -o rec_png4.safetensors -q || fail "convert png"
grep -aq '"fps":"24"' rec_mp4.safetensors || fail "decoded mp4 is not 24 fps (from the latent)"
# The PNGs hold the decoded tensor clamped and rounded; the mp4 holds them within H.264's
# tolerance (loose here: the random-weight model decodes to saturated colour noise, which 4:2:0
# chroma cannot keep; smooth content is checked below and in test_video.cpp).
"$VVAE" convert rec.safetensors -o rec_q --frames -q || fail "convert tensor to frames"
cmp -s rec_q/frame_00003.png rec_frames/frame_00003.png || fail "decode --frames differs from the rounded tensor"
"$VVAE" convert rec_frames/frame_00000.png -o rec_png0.safetensors -q
"$VVAE" convert rec.mp4 -o rec_mp4_0.safetensors --num-frames 1 -q || fail "convert --num-frames 1"
p=$(psnr_of rec_mp4_0.safetensors rec_png0.safetensors)
at_least "$p" 18 || fail "decoded mp4 frame 0 vs decoded PNG: PSNR $p"
ok "decoded mp4 vs decoded frames: PSNR $p dB (range 2)"
run decode --model "$MODEL" clip.latent.safetensors -o rec10.mp4 --fps 10 -q || fail "decode --fps"
"$VVAE" convert rec10.mp4 -o rec10.safetensors -q && grep -aq '"fps":"10"' rec10.safetensors \
  || fail "--fps 10 not honoured"
"$VVAE" convert rec.mp4 -o rec_again.mp4 -q && "$VVAE" convert rec_again.mp4 -o rec_again.safetensors -q
p=$(psnr_of rec_again.safetensors rec_mp4.safetensors)
at_least "$p" 30 || fail "mp4 re-encode PSNR $p"
ok "decode to tensor, frames, mp4 (--fps)"

# A lossless source: video -> tensor -> mp4 -> tensor stays within H.264's tolerance.
"$VVAE" convert clip.mkv -o clip_x.safetensors -q || fail "convert mkv"
"$VVAE" convert clip_x.safetensors -o clip_x.mp4 --crf 12 -q || fail "convert tensor to mp4"
"$VVAE" convert clip_x.mp4 -o clip_x2.safetensors -q
p=$(psnr_of clip_x2.safetensors clip_x.safetensors)
at_least "$p" 40 || fail "tensor -> mp4 -> tensor PSNR $p < 40"
ok "tensor -> mp4 -> tensor PSNR $p dB"

# Images: T = 1 in, PNG out; odd sizes cropped to the spatial ratio with a note.
run encode --model "$MODEL" pic.png -o pic.latent.safetensors -q || fail "encode png"
run decode --model "$MODEL" pic.latent.safetensors -o pic_rec.png -q || fail "decode to png"
[ -s pic_rec.png ] || fail "no pic_rec.png"
run encode --model "$MODEL" odd.mkv -o odd.latent.safetensors >odd.log || fail "encode odd size"
grep -q "33x47 -> 32x46" odd.log || fail "odd size note: $(cat odd.log)"
run encode --model "$MODEL" alpha.png -o alpha.latent.safetensors >/dev/null 2>alpha.err || fail "encode alpha"
grep -q "^vvae: warning: .*alpha channel is dropped" alpha.err || fail "alpha warning: $(cat alpha.err)"
run encode --model "$MODEL" clip.mkv -o sized.safetensors --size 16x24 --num-frames 4 --frame-interval 2 -q \
  || fail "encode --size --num-frames"
grep -aq '"frame_indices":"0,2,4,7"' sized.safetensors || fail "frame indices of --num-frames 4 --frame-interval 2"
grep -aq '"fps":"12"' sized.safetensors || fail "fps after --frame-interval 2"
run encode --model "$MODEL" clip.mkv -o res.safetensors --resolution 256 -q || fail "--resolution"
grep -aq '"size":"192x288"' res.safetensors || grep -aq '"bucket":"3:2"' res.safetensors \
  || fail "resolution bucket: $(head -c 1500 res.safetensors | tr -d '\0')"
ok "images, alpha, odd sizes, frame selection, resolution"

# A causal family (1 + 4k frames): what is trimmed is said, and fps follows --fps-max.
HUNYUAN=$DATA/golden/hunyuan_small
if [ -d "$HUNYUAN" ]; then
  "$MAKE" h30.mp4 --codec libx264 --frames 12 --size 36x50 --fps 30 || fail "make h30.mp4"
  run encode --model "$HUNYUAN" h30.mp4 -o h.latent.safetensors --fps-max 16 >h.log || fail "hunyuan encode"
  grep -q "trimmed 1 at the end: valid frame counts are 1 + 4k" h.log || fail "hunyuan trim note: $(cat h.log)"
  grep -q "36x50 -> 32x48" h.log || fail "hunyuan crop note: $(cat h.log)"
  for kv in '"frames":"5"' '"frame_indices":"0,2,4,6,8"' '"fps":"15"' '"family":"hunyuan"' '"source_fps":"30"'; do
    grep -aq "$kv" h.latent.safetensors || fail "hunyuan latent lacks $kv"
  done
  run decode --model "$HUNYUAN" h.latent.safetensors -o h_rec.mp4 -q || fail "hunyuan decode"
  "$VVAE" convert h_rec.mp4 -o h_rec.safetensors >hc.log || fail "convert h_rec.mp4"
  grep -q "wrote h_rec.safetensors: 5 frames 32x48" hc.log && grep -aq '"fps":"15"' h_rec.safetensors \
    || fail "hunyuan decode: $(cat hc.log)"
  run reconstruct --model "$HUNYUAN" h30.mp4 -o hrec >hr.log || fail "hunyuan reconstruct"
  grep -q '"frames": 9' hrec/summary.json && grep -q "trimmed 3" hr.log || fail "hunyuan reconstruct: $(cat hr.log)"
  run decode --model "$MODEL" h.latent.safetensors -o hx.mp4 >/dev/null 2>hx.err
  grep -q "^vvae: warning: the latent was encoded by a 'hunyuan' model" hx.err || fail "family mismatch warning: $(cat hx.err)"
  ok "hunyuan: 12 frames at 30 fps -> 5 at 15 fps (--fps-max 16), 9 in reconstruct"
fi

# A family with a 32-pixel spatial ratio that takes 1 frame or a multiple of 4 that is >= 8.
DCAE=$DATA/golden/dcae_small
if [ -d "$DCAE" ]; then
  "$MAKE" d7.mp4 --codec libx264 --frames 7 --size 70x100 || fail "make d7.mp4"
  "$MAKE" d11.mp4 --codec libx264 --frames 11 --size 70x100 || fail "make d11.mp4"
  run reconstruct --model "$DCAE" d7.mp4 d11.mp4 -o drec -v >d.log || fail "dcae reconstruct: $(cat d.log)"
  grep -q "the model refuses 4" d.log && grep -q "70x100 -> 64x96" d.log || fail "dcae notes: $(cat d.log)"
  [ -s drec/orig/d7_orig.png ] && [ -s drec/recn/d11_recn.mp4 ] || fail "dcae outputs"
  grep -q '"frames": 8' drec/summary.json && grep -q '"frames": 1' drec/summary.json || fail "dcae frames"
  run encode --model "$DCAE" d11.mp4 -o d.latent.safetensors --resolution 256 -q || fail "dcae --resolution"
  grep -aq '"size":"224x288"' d.latent.safetensors && grep -aq '"bucket":"3:2"' d.latent.safetensors \
    || fail "dcae bucket: $(head -c 2000 d.latent.safetensors | tr -d '\0')"
  ok "dcae: 7 frames -> 1, 11 -> 8, 70x100 -> 64x96, 256px buckets in multiples of 32"
fi

# The old tensor contract still holds next to the new forms.
run encode --model "$MODEL" --input "$MODEL/io.safetensors" --output z.safetensors -q || fail "tensor encode"

# Decoding with another model's latent warns.
sed 's/"z_channels": 4/"z_channels": 4, "scale_factor": 0.5/' "$MODEL/config.json" >/dev/null
mkdir -p other && sed 's/0.3611/0.5/' "$MODEL/config.json" >other/config.json && ln -s "$MODEL/weights.safetensors" other/
run decode --model other clip.latent.safetensors -o other.mp4 2>other.err >/dev/null || fail "decode with another config"
grep -q "^vvae: warning: the latent was encoded with another config" other.err || fail "no mismatch warning: $(cat other.err)"
ok "mismatch warning"

# --- bad inputs -----------------------------------------------------------------------------
"$MAKE" long.mp4 --codec libx264 --frames 24 --size 32x48 --fps 24
head -c $(($(stat -c %s long.mp4) * 6 / 10)) long.mp4 >trunc.mp4
"$MAKE" zero.mkv --codec ffv1 --frames 0 --size 32x48
"$MAKE" mj.avi --codec mjpeg --frames 4 --size 32x48
sed 's/MJPG/ZZZZ/g' mj.avi >unknown.avi
printf 'not a video at all' >text.mp4
: >empty.mp4
mkdir -p ro && chmod 555 ro
O=$WORK/out.safetensors
expect_error "missing video" "$O" run encode --model "$MODEL" nope.mp4 -o "$O"
expect_error "truncated video" "$O" run encode --model "$MODEL" trunc.mp4 -o "$O"
expect_error "zero-length stream" "$O" run encode --model "$MODEL" zero.mkv -o "$O"
expect_error "unsupported codec" "$O" run encode --model "$MODEL" unknown.avi -o "$O"
expect_error "not a video" "$O" run encode --model "$MODEL" text.mp4 -o "$O"
expect_error "empty file" "$O" run encode --model "$MODEL" empty.mp4 -o "$O"
expect_error "bad --size" "$O" run encode --model "$MODEL" clip.mp4 -o "$O" --size 15x16
expect_error "bad --resolution" "$O" run encode --model "$MODEL" clip.mp4 -o "$O" --resolution huge
expect_error "options on a tensor" "$O" run encode --model "$MODEL" "$MODEL/io.safetensors" -o "$O" --num-frames 2
expect_error "missing folder" "$WORK/no/dir/z.safetensors" run encode --model "$MODEL" clip.mp4 -o "$WORK/no/dir/z.safetensors"
expect_error "png of many frames" "$WORK/many.png" run decode --model "$MODEL" clip.latent.safetensors -o "$WORK/many.png"
expect_error "unknown output kind" "$WORK/x.avi" run decode --model "$MODEL" clip.latent.safetensors -o "$WORK/x.avi"
expect_error "reconstruct corrupt clip" "$WORK/r1/orig" run reconstruct --model "$MODEL" trunc.mp4 -o "$WORK/r1"
expect_error "reconstruct missing parent" "$WORK/nodir" run reconstruct --model "$MODEL" clip.mp4 -o "$WORK/nodir/out"
if [ "$(id -u)" != 0 ]; then
  expect_error "read-only folder" "$WORK/ro/z.safetensors" run encode --model "$MODEL" clip.mp4 -o "$WORK/ro/z.safetensors"
  expect_error "reconstruct read-only" "$WORK/ro/out" run reconstruct --model "$MODEL" clip.mp4 -o "$WORK/ro/out"
fi
# issue 17: frame counts, intervals and sizes beyond vvae's limits are refused at once.
expect_error "huge --num-frames" "$O" timeout 10 "$VVAE" encode --model "$MODEL" clip.mp4 -o "$O" --num-frames 99999999999
grep -q "num-frames: must be in \[1, 65536\]" "$WORK/stderr" || fail "--num-frames bound: $(cat "$WORK/stderr")"
expect_error "huge --frame-interval" "$O" timeout 10 "$VVAE" encode --model "$MODEL" clip.mp4 -o "$O" --frame-interval 9223372036854775807
expect_error "huge interval from --fps-max" "$O" timeout 10 "$VVAE" encode --model "$MODEL" clip.mp4 -o "$O" --fps-max 0.001 --frame-interval 1000
grep -q "vvae's limit" "$WORK/stderr" || fail "--fps-max interval: $(cat "$WORK/stderr")"
expect_error "huge --size" "$O" timeout 10 "$VVAE" encode --model "$MODEL" clip.mp4 -o "$O" --size 99999x99999
expect_error "huge --resolution" "$O" timeout 10 "$VVAE" encode --model "$MODEL" clip.mp4 -o "$O" --resolution 99999px
# An interval within the limits but past the clip's end takes frame 0 (no internal error).
run encode --model "$MODEL" clip.mp4 -o far.safetensors --frame-interval 65536 --num-frames 2 >far.log 2>&1 \
  || fail "--frame-interval 65536: $(cat far.log)"
grep -aq '"frame_indices":"0"' far.safetensors || fail "--frame-interval 65536 frames: $(cat far.log)"

mkdir -p r1
run reconstruct --model "$MODEL" unknown.avi -o r1 >/dev/null 2>&1 && fail "single bad clip exited 0"
ls r1/orig/* r1/recn/* r1/done/* >/dev/null 2>&1 && fail "single bad clip left outputs"

# --- reconstruct: one clip ------------------------------------------------------------------
run reconstruct --model "$MODEL" clip.mp4 -o rec1 --compare >rec1.log || fail "reconstruct clip.mp4"
for f in orig/clip_orig.mp4 recn/clip_recn.mp4 compare/clip_compare.mp4 compare/clip_psnr.png done/clip.json summary.json; do
  [ -s "rec1/$f" ] || fail "reconstruct did not write $f"
done
grep -q "PSNR" rec1.log && grep -q "latent: mean" rec1.log || fail "reconstruct output: $(cat rec1.log)"
grep -q '"psnr":' rec1/summary.json && grep -q '"std":' rec1/summary.json || fail "summary.json"
# The written original is the input within H.264 tolerance.
"$VVAE" convert rec1/orig/clip_orig.mp4 -o orig.safetensors -q
"$VVAE" convert clip.mp4 -o src.safetensors -q
p=$(psnr_of orig.safetensors src.safetensors)
at_least "$p" 32 || fail "orig video PSNR $p"
ok "reconstruct one clip (orig vs source PSNR $p dB)"

# --- manifest mode --------------------------------------------------------------------------
mkdir -p clips
for i in 1 2 3 4 5 6; do "$MAKE" "clips/c$i.mp4" --codec libx264 --frames 9 --size 48x64 || fail "make c$i"; done
{
  echo 'id,text,path,fps'
  for i in 1 2 3; do echo "$i,\"clip $i, a caption\",clips/c$i.mp4,24"; done
  echo '4,"broken, on purpose",trunc.mp4,24'
  for i in 4 5 6; do echo "$((i + 1)),plain,clips/c$i.mp4,24"; done
} >data.csv
run reconstruct --model "$MODEL" --manifest data.csv -o m1 >m1.log 2>m1.err
rc=$?
[ $rc -eq 3 ] || fail "manifest with a bad clip: exit $rc (expected 3)"
grep -q "trunc.mp4.*(skipped)" m1.err || fail "failed clip not logged: $(cat m1.err)"
[ "$(grep -c '"status": "ok"' m1/summary.json)" -eq 6 ] || fail "manifest: not 6 ok clips"
[ "$(grep -c '"status": "failed"' m1/summary.json)" -eq 1 ] || fail "manifest: no failed clip"
grep -q '^\[7/7\]' m1.log || fail "no plain log lines: $(cat m1.log)"
ok "manifest with a failed clip (exit 3, logged, 6 ok)"

# Shards split the manifest; a --resume run over the whole manifest then has nothing to do.
run reconstruct --model "$MODEL" --manifest data.csv -o m2 --shard 0/2 >/dev/null 2>&1
run reconstruct --model "$MODEL" --manifest data.csv -o m2 --shard 1/2 >/dev/null 2>&1
n0=$(grep -c '"status"' m2/summary.shard-0-of-2.json)
n1=$(grep -c '"status"' m2/summary.shard-1-of-2.json)
[ "$n0" -eq 4 ] && [ "$n1" -eq 3 ] || fail "shards hold $n0 + $n1 clips"
run reconstruct --model "$MODEL" --manifest data.csv -o m2 --resume >m2.log 2>/dev/null
[ "$(grep -c 'complete from an earlier run' m2.log)" -eq 6 ] || fail "resume after shards redid clips: $(cat m2.log)"
ok "shards and resume over them"

# Resume after a killed run loses and duplicates nothing.
for i in 7 8 9 10 11 12; do "$MAKE" "clips/c$i.mkv" --codec ffv1 --frames 24 --size 64x96 || fail "make c$i"; done
{ echo path; for i in 7 8 9 10 11 12; do echo "clips/c$i.mkv"; done; } >long.csv
"$VVAE" reconstruct --model "$MODEL" --manifest long.csv -o m3 --compare --threads 1 >m3a.log 2>&1 &
pid=$!
for _ in $(seq 1 1200); do
  [ "$(ls m3/done 2>/dev/null | wc -l)" -ge 1 ] && break
  sleep 0.05
done
kill -9 $pid 2>/dev/null
wait $pid 2>/dev/null
before=$(ls m3/done 2>/dev/null | wc -l)
[ "$before" -ge 1 ] && [ "$before" -lt 6 ] || fail "kill landed after $before of 6 clips"
[ -e m3/summary.json ] && fail "the killed run wrote a summary"
run reconstruct --model "$MODEL" --manifest long.csv -o m3 --compare --resume >m3b.log 2>&1 || fail "resume run failed: $(cat m3b.log)"
skipped=$(grep -c 'complete from an earlier run' m3b.log)
[ "$skipped" -eq "$before" ] || fail "resume skipped $skipped clips, $before were done"
for i in 7 8 9 10 11 12; do
  n=$(grep -c "\"path\": \"clips/c$i.mkv\"" m3/summary.json)
  [ "$n" -eq 1 ] || fail "clips/c$i.mkv appears $n times in summary.json"
  [ -s "m3/recn/c${i}_recn.mp4" ] && [ -s "m3/orig/c${i}_orig.mp4" ] || fail "c$i outputs missing"
done
[ "$(grep -c '"status": "ok"' m3/summary.json)" -eq 6 ] || fail "resumed summary is not 6 ok clips"
grep -q '"resumed": '"$before" m3/summary.json || fail "summary does not count $before resumed clips"
left=$(find m3 -name '*.tmp-*' | wc -l)
[ "$left" -eq 0 ] || fail "$left temporaries left after resume: $(find m3 -name '*.tmp-*')"
ok "killed after $before clips, resume skipped $skipped, every clip once in summary.json"

checks_end "video CLI"
