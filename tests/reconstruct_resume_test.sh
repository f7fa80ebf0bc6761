#!/usr/bin/env bash
# `vvae reconstruct --manifest` under faults (issue 17): kill -9 at three moments, then --resume,
# loses and duplicates nothing: every clip once in summary.json, its latent byte-identical to a
# clean run's and its PSNR the clean run's; two shards at once into one folder complete with one
# summary over both; the same manifest twice at once completes in both. Shares its kill/resume
# code with latent_cache_cli_test.sh.
#   reconstruct_resume_test.sh VVAE MAKE_VIDEO TESTS_DATA
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
source "$(dirname "$(realpath "$0")")/lib/kill_resume.sh"
checks_begin "$@"
recon() { "$VVAE" reconstruct --model "$MODEL" --threads 1 --latents "$@"; }
# clips_of SUMMARY: "path status psnr" per clip, sorted by path.
clips_of() {
  python3 - "$1" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
for c in sorted(s["clips"], key=lambda c: c["path"]):
    print(c["path"], c["status"], "%.6f" % c.get("psnr", 0))
EOF
}
resumed_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"]["resumed"])' "$1"; }

N=20
mkdir -p clips
for i in $(seq 1 $N); do
  "$MAKE" "clips/c$i.mkv" --codec ffv1 --frames $((8 + i % 3 * 4)) --size 48x64 || fail "make c$i"
done
{ echo 'path,text'; for i in $(seq 1 $N); do echo "clips/c$i.mkv,\"clip $i, captioned\""; done; } >data.csv

recon --manifest data.csv -o clean >clean.log 2>&1 || fail "clean run: $(tail -3 clean.log)"
clips_of clean/summary.json >clean.clips
[ "$(grep -c ' ok ' clean.clips)" -eq $N ] || fail "clean run: not $N ok clips"
ok "clean run: $N clips"

# check_resumed DIR BEFORE: BEFORE clips came from the killed run, the rest were redone, and
# the result is the clean run's.
check_resumed() {
  local dir=$1 before=$2
  [ -s "$dir/summary.json" ] || { fail "$dir: no summary"; return; }
  diff clean.clips <(clips_of "$dir/summary.json") >/dev/null \
    || fail "$dir: clips or PSNRs differ from the clean run: $(diff clean.clips <(clips_of "$dir/summary.json") | head -5)"
  [ "$(resumed_of "$dir/summary.json")" -eq "$before" ] || fail "$dir: $(resumed_of "$dir/summary.json") resumed, $before were done"
  kr_same_files clean "$dir" latents || fail "$dir: latents differ from the clean run"
  [ "$(find "$dir/done" -name '*.json' | wc -l)" -eq $N ] || fail "$dir: not $N done markers"
  kr_no_leftovers "$dir" || fail "$dir: leftovers after resume"
}
markers() { find "$1/done" -name '*.json' 2>/dev/null | wc -l; }

# 1. By timing, once 6 clips are done.
kr_killed_run k1.log kr_until_files 6 k1/done -name '*.json' -- \
  "$VVAE" reconstruct --model "$MODEL" --threads 1 --latents --manifest data.csv -o k1 || fail "kill 1: $(tail -2 k1.log)"
before=$(markers k1)
[ "$before" -ge 6 ] && [ "$before" -lt $N ] || fail "kill 1 landed after $before of $N clips"
[ -e k1/summary.json ] && fail "kill 1: the killed run wrote a summary"
recon --manifest data.csv -o k1 --resume >k1r.log 2>&1 || fail "resume 1: $(tail -3 k1r.log)"
check_resumed k1 "$before"
ok "kill -9 after $before clips, resume: the clean run's clips, each once"

# 2. Every output of the 10th clip in place, its done marker complete but not renamed.
kr_killed_run k2.log kr_until_stalled k2.log -- \
  env VVAE_TEST_STALL_COMMIT='*.json@9' "$VVAE" reconstruct --model "$MODEL" --threads 1 --latents --manifest data.csv -o k2 \
  || fail "kill 2: $(tail -2 k2.log)"
[ "$(markers k2)" -eq 9 ] && ls k2/done/*.json.tmp-* >/dev/null 2>&1 || fail "kill 2 did not land on the 10th marker"
recon --manifest data.csv -o k2 --resume >k2r.log 2>&1 || fail "resume 2: $(tail -3 k2r.log)"
check_resumed k2 9
ok "kill -9 with the 10th done marker under its temporary name, resume: the clean run"

# 3. Every clip done, summary.json being renamed into place.
kr_killed_run k3.log kr_until_stalled k3.log -- \
  env VVAE_TEST_STALL_COMMIT='summary.json' "$VVAE" reconstruct --model "$MODEL" --threads 1 --latents --manifest data.csv -o k3 \
  || fail "kill 3: $(tail -2 k3.log)"
[ "$(markers k3)" -eq $N ] && [ ! -e k3/summary.json ] || fail "kill 3 did not land during the summary write"
recon --manifest data.csv -o k3 --resume >k3r.log 2>&1 || fail "resume 3: $(tail -3 k3r.log)"
check_resumed k3 $N
ok "kill -9 while summary.json was being written, resume: the clean run, all $N from markers"

# Two shards at once into one folder, then a --resume run writes one summary over both.
recon --manifest data.csv -o shards --shard 0/2 >s0.log 2>&1 &
p1=$!
recon --manifest data.csv -o shards --shard 1/2 >s1.log 2>&1 &
p2=$!
wait $p1 || fail "shard 0: $(tail -3 s0.log)"
wait $p2 || fail "shard 1: $(tail -3 s1.log)"
recon --manifest data.csv -o shards --resume >sr.log 2>&1 || fail "resume over shards: $(tail -3 sr.log)"
check_resumed shards $N
ok "two shards at once, then one summary over both"

# The same manifest twice at once into one folder: a clip one run is writing, the other waits
# for (after its other clips) and takes; both complete with every clip, as the clean run.
recon --manifest data.csv -o twice >t1.log 2>&1 &
p1=$!
recon --manifest data.csv -o twice >t2.log 2>&1 &
p2=$!
wait $p1 || fail "same manifest, run 1: $(tail -3 t1.log)"
wait $p2 || fail "same manifest, run 2: $(tail -3 t2.log)"
diff clean.clips <(clips_of twice/summary.json) >/dev/null || fail "same manifest twice: not the clean run's clips"
kr_same_files clean twice latents || fail "same manifest twice: latents differ from the clean run's"
ls twice/*/*.tmp-* twice/.*.vvae-lock >/dev/null 2>&1 && fail "same manifest twice: temporaries or locks left"
ok "the same manifest twice at once into one folder: both complete, the clean run's clips"

checks_end "reconstruct fault"
