#!/usr/bin/env bash
# `vvae encode --manifest` (issue 15): a dataset of generated clips into a latent cache, and
# everything that can go wrong on the way: duplicate rows, failed clips, a reordered CSV on
# resume, kill -9 at three moments then --resume (every latent byte-identical to a clean run,
# every row in index.csv exactly once), two concurrent runs and two concurrent shards into one
# folder, Slurm's --shard auto, bad invocations, and --format opensora's files.
#   latent_cache_cli_test.sh VVAE MAKE_VIDEO TESTS_DATA
set -u
source "$(dirname "$(realpath "$0")")/lib/checks.sh"
source "$(dirname "$(realpath "$0")")/lib/kill_resume.sh"
checks_begin "$@"
encode() { "$VVAE" encode --model "$MODEL" --threads 1 "$@"; }
col() { kr_csv_column "$1" "$2"; }
# count_of LOG WHAT: the number before WHAT in the run's summary line ("22 encoded, ...").
count_of() { sed -nE "s/.* ([0-9]+) $2.*/\1/p" "$1" | tail -1; }

# --- the dataset: 22 clips of different lengths and sizes ------------------------------------
N=22
mkdir -p clips
for i in $(seq 1 $N); do
  size=64x96
  [ $((i % 3)) -eq 0 ] && size=48x64
  "$MAKE" "clips/c$i.mkv" --codec ffv1 --frames $((12 + i % 4 * 4)) --size $size || fail "make c$i"
done
{
  echo 'id,text,path,aesthetic'
  for i in $(seq 1 $N); do echo "$i,\"clip $i, with a comma and \"\"quotes\"\"\",clips/c$i.mkv,0.$i"; done
} >data.csv
ok "made $N clips"

# --- a clean run ------------------------------------------------------------------------------
encode --manifest data.csv -o clean >clean.log 2>&1 || fail "clean run: $(tail -3 clean.log)"
[ "$(count_of clean.log encoded)" = "$N" ] || fail "clean run did not encode $N clips: $(tail -1 clean.log)"
[ "$(find clean/latents -name '*.safetensors' | wc -l)" -eq $N ] || fail "clean run: not $N latents"
[ "$(col clean/index.csv status | grep -c '^ok$')" -eq $N ] || fail "clean index: not $N ok rows"
[ "$(head -1 clean/index.csv)" = "id,text,path,aesthetic,latents_path,latent_shape,status,error,latent_key,cache_options" ] \
  || fail "index header: $(head -1 clean/index.csv)"
# The input's columns come through exactly (quotes and commas included).
diff <(col data.csv text) <(col clean/index.csv text) >/dev/null || fail "text column changed in the index"
diff <(col data.csv path) <(col clean/index.csv path) >/dev/null || fail "rows reordered or lost in the index"
for p in $(col clean/index.csv latents_path); do
  [ -s "$p" ] || fail "latents_path $p does not exist"
  case $p in /*) ;; *) fail "latents_path $p is not absolute" ;; esac
done
first=$(col clean/index.csv latents_path | head -1)
header=$(head -c 6000 "$first" | tr -d '\0')
for kv in '"cache_key":"' '"source":"clips/c1.mkv"' '"family":"ae2d"' '"frames":"' '"config_hash":"fnv1a64:' \
          '"source_identity":"' '"cache_options":"' '"z":{' '"mean":{' '"logvar":{'; do
  case $header in *"$kv"*) ;; *) fail "latent metadata lacks $kv" ;; esac
done
[ "$(col clean/index.csv latent_shape | head -1)" = "1x4x16x32x48" ] || fail "latent_shape: $(col clean/index.csv latent_shape | head -1)"
kr_no_leftovers clean || fail "clean run left files behind"
ok "clean run: $N latents, index.csv with every column and row"

# --- duplicate rows: encoded once, every row points at that file ------------------------------
cp -p clips/c2.mkv clips/c2copy.mkv  # the same content, size and mtime under another name
{ echo 'path,text'; echo 'clips/c1.mkv,a'; echo 'clips/c2.mkv,b'; echo 'clips/c1.mkv,a'; echo 'clips/c2copy.mkv,c'; echo 'clips/c3.mkv,d'; } >dup.csv
encode --manifest dup.csv -o dup >dup.log 2>&1 || fail "duplicates run: $(tail -3 dup.log)"
[ "$(count_of dup.log encoded)" = 3 ] && [ "$(count_of dup.log 'duplicate rows')" = 2 ] || fail "duplicates: $(tail -1 dup.log)"
[ "$(find dup/latents -name '*.safetensors' | wc -l)" -eq 3 ] || fail "duplicates: not 3 latent files"
paths=$(col dup/index.csv latents_path)
[ "$(echo "$paths" | sed -n 1p)" = "$(echo "$paths" | sed -n 3p)" ] && [ "$(echo "$paths" | sed -n 2p)" = "$(echo "$paths" | sed -n 4p)" ] \
  || fail "duplicate rows do not share their latent: $paths"
[ "$(col dup/index.csv status | grep -c '^ok$')" -eq 5 ] || fail "duplicates: not 5 ok rows"
ok "5 rows, 2 of them duplicates: 3 latents, shared"

# --- failed clips are recorded and the run goes on --------------------------------------------
head -c 3000 clips/c4.mkv >corrupt.mkv
printf 'not a video' >text.mp4
{ echo 'path,text'; echo 'clips/c1.mkv,a'; echo 'missing.mp4,b'; echo 'corrupt.mkv,c'; echo 'text.mp4,d'; echo 'clips/c5.mkv,e'; } >bad.csv
encode --manifest bad.csv -o bad >bad.log 2>bad.err
rc=$?
[ $rc -eq 3 ] || fail "a run with failed clips: exit $rc (expected 3)"
grep -q "^vvae: error: .*3 failed" bad.err || fail "summary line does not say 3 failed: $(cat bad.err)"
[ "$(grep -c '(recorded, skipped)' bad.err)" -eq 3 ] || fail "failed clips not logged: $(cat bad.err)"
[ "$(col bad/index.csv status | tr '\n' ' ')" = "ok failed failed failed ok " ] || fail "bad statuses: $(col bad/index.csv status | tr '\n' ' ')"
errors=$(col bad/index.csv error)
echo "$errors" | sed -n 2p | grep -q "missing.mp4" || fail "missing file error: $(echo "$errors" | sed -n 2p)"
[ -n "$(echo "$errors" | sed -n 3p)" ] && [ -n "$(echo "$errors" | sed -n 4p)" ] || fail "corrupt clip errors: $errors"
[ "$(python3 -c 'import csv,sys; print(len(list(csv.reader(open(sys.argv[1])))))' bad/index.csv)" -eq 6 ] || fail "bad index rows"
[ "$(find bad/latents -name '*.safetensors' | wc -l)" -eq 2 ] || fail "failed clips: not 2 latents"
kr_no_leftovers bad || fail "failed clips left files behind"
ok "3 failed clips recorded with their error, 2 encoded, exit 3"

# --- a reordered CSV on resume: nothing redone, every row once --------------------------------
cp -a clean clean.copy
{ head -1 data.csv; tail -n +2 data.csv | tac; } >reversed.csv
encode --manifest reversed.csv -o clean --resume >rev.log 2>&1 || fail "resume reordered: $(tail -3 rev.log)"
[ "$(count_of rev.log encoded)" = 0 ] && [ "$(count_of rev.log 'already in the cache')" = $N ] || fail "resume reordered: $(tail -1 rev.log)"
kr_same_files clean.copy clean latents || fail "resume changed latents"
[ "$(col clean/index.csv path | sort | uniq -c | awk '$1 != 1' | wc -l)" -eq 0 ] || fail "a row twice in the index"
[ "$(col clean/index.csv path | wc -l)" -eq $N ] || fail "index rows after reordered resume"
diff <(col reversed.csv path) <(col clean/index.csv path) >/dev/null || fail "index not in the new manifest's order"
ok "reordered CSV + --resume: 0 encoded, $N from the cache, index in the new order"

# --- kill -9 at three moments, then --resume --------------------------------------------------
# check_resumed DIR LOG BEFORE: the resume run took the BEFORE latents that were complete and
# encoded the rest; the cache is the clean run's byte for byte; the index has each row once.
check_resumed() {
  local dir=$1 log=$2 before=$3
  [ "$(count_of "$log" 'already in the cache')" = "$before" ] || fail "$dir: resume took $(count_of "$log" 'already in the cache') latents, $before were complete"
  [ "$(count_of "$log" encoded)" = $((N - before)) ] || fail "$dir: resume encoded $(count_of "$log" encoded), expected $((N - before))"
  kr_same_files clean.copy "$dir" latents || fail "$dir: latents differ from the clean run"
  diff <(col data.csv path) <(col "$dir/index.csv" path) >/dev/null || fail "$dir: index rows lost or duplicated"
  [ "$(col "$dir/index.csv" status | grep -c '^ok$')" -eq $N ] || fail "$dir: not $N ok rows"
  kr_no_leftovers "$dir" || fail "$dir: leftovers after resume"
}
count_latents() { find "$1/latents" -name '*.safetensors' 2>/dev/null | wc -l; }

# 1. Mid-run, by timing: once 8 latents are there (the run is encoding or writing another).
kr_killed_run k1.log kr_until_files 8 k1/latents -name '*.safetensors' -- \
  "$VVAE" encode --model "$MODEL" --threads 1 --manifest data.csv -o k1 || fail "kill 1: $(tail -2 k1.log)"
before=$(count_latents k1)
[ "$before" -ge 8 ] && [ "$before" -lt $N ] || fail "kill 1 landed after $before of $N latents"
[ -e k1/index.csv ] && fail "kill 1: the killed run wrote an index"
encode --manifest data.csv -o k1 --resume >k1r.log 2>&1 || fail "resume 1: $(tail -3 k1r.log)"
check_resumed k1 k1r.log "$before"
ok "kill -9 after $before latents, resume: the clean cache, every row once"

# 2. A latent written whole but not yet renamed into place (the 12th).
kr_killed_run k2.log kr_until_stalled k2.log -- \
  env VVAE_TEST_STALL_COMMIT='*.safetensors@11' "$VVAE" encode --model "$MODEL" --threads 1 --manifest data.csv -o k2 \
  || fail "kill 2: $(tail -2 k2.log)"
[ "$(count_latents k2)" -eq 11 ] || fail "kill 2: $(count_latents k2) latents, expected 11"
[ "$(find k2/latents -name '*.safetensors.tmp-*' | wc -l)" -eq 1 ] || fail "kill 2: no complete temporary"
encode --manifest data.csv -o k2 --resume >k2r.log 2>&1 || fail "resume 2: $(tail -3 k2r.log)"
check_resumed k2 k2r.log 11
ok "kill -9 with the 12th latent complete under its temporary name, resume: the clean cache"

# 3. Every latent written, the index being renamed into place.
kr_killed_run k3.log kr_until_stalled k3.log -- \
  env VVAE_TEST_STALL_COMMIT='index.csv' "$VVAE" encode --model "$MODEL" --threads 1 --manifest data.csv -o k3 \
  || fail "kill 3: $(tail -2 k3.log)"
[ "$(count_latents k3)" -eq $N ] && [ ! -e k3/index.csv ] && ls k3/index.csv.tmp-* >/dev/null 2>&1 \
  || fail "kill 3 did not land during the index write"
encode --manifest data.csv -o k3 --resume >k3r.log 2>&1 || fail "resume 3: $(tail -3 k3r.log)"
check_resumed k3 k3r.log $N
ok "kill -9 while index.csv was being written, resume: the clean cache and index"

# --- concurrent runs into one folder ----------------------------------------------------------
# The same manifest twice: every clip encoded by exactly one of them, both complete.
encode --manifest data.csv -o conc --resume >c1.log 2>&1 &
p1=$!
encode --manifest data.csv -o conc --resume >c2.log 2>&1 &
p2=$!
wait $p1 || fail "concurrent run 1: $(tail -3 c1.log)"
wait $p2 || fail "concurrent run 2: $(tail -3 c2.log)"
total=$(($(count_of c1.log encoded) + $(count_of c2.log encoded)))
[ "$total" -eq $N ] || fail "concurrent runs encoded $total clips between them, not $N: $(tail -1 c1.log) / $(tail -1 c2.log)"
kr_same_files clean.copy conc latents || fail "concurrent runs: latents differ"
diff <(col data.csv path) <(col conc/index.csv path) >/dev/null || fail "concurrent runs: index rows"
[ "$(col conc/index.csv status | grep -c '^ok$')" -eq $N ] || fail "concurrent runs: not $N ok rows"
kr_no_leftovers conc || fail "concurrent runs left files behind"
ok "the same manifest twice at once: $(count_of c1.log encoded) + $(count_of c2.log encoded) encoded, one cache"

# Two shards at once: the index ends with both shards' rows.
encode --manifest data.csv -o shards --shard 0/2 >s0.log 2>&1 &
p1=$!
encode --manifest data.csv -o shards --shard 1/2 >s1.log 2>&1 &
p2=$!
wait $p1 || fail "shard 0: $(tail -3 s0.log)"
wait $p2 || fail "shard 1: $(tail -3 s1.log)"
[ "$(count_of s0.log encoded)" -eq 11 ] && [ "$(count_of s1.log encoded)" -eq 11 ] || fail "shards: $(tail -1 s0.log) / $(tail -1 s1.log)"
kr_same_files clean.copy shards latents || fail "shards: latents differ"
diff <(col data.csv path) <(col shards/index.csv path) >/dev/null || fail "shards: index rows"
[ "$(col shards/index.csv status | grep -c '^ok$')" -eq $N ] || fail "shards: index lost a shard's rows"
ok "two shards at once: one index with all $N rows"

# --shard auto: the task of a Slurm array (ids 1..4 -> shard 2 of 4 for id 3).
SLURM_ARRAY_TASK_ID=3 SLURM_ARRAY_TASK_MIN=1 SLURM_ARRAY_TASK_COUNT=4 \
  encode --manifest data.csv -o auto --shard auto >auto.log 2>&1 || fail "--shard auto: $(tail -3 auto.log)"
grep -q "shard 2/4 of $N" auto.log || fail "--shard auto: $(head -1 auto.log)"
[ "$(count_of auto.log encoded)" -eq 5 ] || fail "--shard auto encoded $(count_of auto.log encoded), not rows 2, 6, 10, 14, 18"
[ "$(col auto/index.csv status | grep -c '^pending$')" -eq $((N - 5)) ] || fail "--shard auto: other shards' rows not pending"
ok "--shard auto (SLURM_ARRAY_TASK_ID 3 of 1..4): shard 2/4, the rest pending"

# --- bad invocations: one error line, nothing written -----------------------------------------
expect_error "--resume without --manifest" z.safetensors encode clips/c1.mkv -o z.safetensors --resume
expect_error "--manifest and a clip" none encode clips/c1.mkv --manifest data.csv -o none
expect_error "missing manifest" none encode --manifest nope.csv -o none
expect_error "missing parent" deep encode --manifest data.csv -o deep/er/cache
printf 'path\n' >empty.csv
expect_error "bad --shard" none encode --manifest data.csv -o none --shard 2/2
expect_error "--shard auto outside Slurm" none env -u SLURM_ARRAY_TASK_ID "$VVAE" encode --model "$MODEL" --manifest data.csv -o none --shard auto
expect_error "bad --format" none encode --manifest data.csv -o none --format numpy
expect_error "the index is the manifest" clean/latents/x encode --manifest clean/index.csv -o clean
mkdir -p notours && printf 'a,b\n1,2\n' >notours/index.csv
expect_error "an index vvae did not write" notours/latents encode --manifest data.csv -o notours
[ "$(cat notours/index.csv)" = "$(printf 'a,b\n1,2')" ] || fail "a foreign index.csv was changed"
mkdir -p linked && ln -s "$WORK/clips" linked/latents
expect_error "latents is a symlink" linked/latents/x encode --manifest data.csv -o linked
encode --manifest empty.csv -o emptycache >empty.log 2>&1 || fail "an empty manifest: $(cat empty.log)"
[ "$(wc -l <emptycache/index.csv)" -eq 1 ] || fail "empty manifest index"

# --- --format opensora ------------------------------------------------------------------------
encode --manifest data.csv -o pt --format opensora >pt.log 2>&1 || fail "--format opensora: $(tail -3 pt.log)"
[ "$(find pt/latents -name '*.pt' | wc -l)" -eq $N ] || fail "opensora: not $N .pt files"
[ "$(col pt/train.csv latents_path | wc -l)" -eq $N ] || fail "opensora: train.csv rows"
head -1 pt/train.csv | grep -q "latents_path,text_t5_path,text_clip_path" || fail "train.csv header: $(head -1 pt/train.csv)"
python3 - pt/train.csv <<'EOF' || fail "opensora .pt files are not torch.save zips"
import csv, sys, zipfile
for row in csv.DictReader(open(sys.argv[1])):
    z = zipfile.ZipFile(row["latents_path"])
    assert z.testzip() is None
    names = z.namelist()
    for n in ["archive/data.pkl", "archive/byteorder", "archive/data/0", "archive/version"]:
        assert n in names, (n, names)
    info = z.getinfo("archive/data/0")
    assert info.compress_type == zipfile.ZIP_STORED
EOF
encode --manifest data.csv -o pt --format opensora --resume >ptr.log 2>&1 || fail "opensora resume: $(tail -3 ptr.log)"
[ "$(count_of ptr.log 'already in the cache')" = $N ] || fail "opensora resume: $(tail -1 ptr.log)"
ok "--format opensora: $N .pt files, train.csv, resumable"

# --- a changed source is a new key ------------------------------------------------------------
touch -d '2001-01-01' clips/c5.mkv
encode --manifest data.csv -o clean --resume >touch.log 2>&1 || fail "resume after touch: $(tail -3 touch.log)"
[ "$(count_of touch.log encoded)" = 1 ] || fail "a touched source: $(tail -1 touch.log)"
ok "a source with a new mtime is encoded again, the others resumed"

checks_end "latent cache"
