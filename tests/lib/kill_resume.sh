# Shared by the fault tests of `vvae encode --manifest` (latent_cache_cli_test.sh) and
# `vvae reconstruct --manifest` (reconstruct_resume_test.sh): start a run, kill -9 it at a chosen
# moment, resume, and check that the result is the clean run's, with nothing lost, duplicated
# or left behind. Sourced by bash; the caller defines fail() and ok().
#
# Moments are chosen either by polling the output folder (kr_until_files) or, for a moment too
# short to hit by timing, with vvae's test hook VVAE_TEST_STALL_COMMIT=PATTERN[@N]: the (N+1)-th
# commit of a file matching PATTERN stops just before its rename and says so on stderr
# (kr_until_stalled).

KR_POLL_SECONDS=${KR_POLL_SECONDS:-0.02}
KR_TIMEOUT_SECONDS=${KR_TIMEOUT_SECONDS:-120}

# kr_until_files N DIR FIND_ARGS...: true once `find DIR FIND_ARGS` lists at least N files.
kr_until_files() {
  local n=$1 dir=$2
  shift 2
  [ "$(find "$dir" "$@" 2>/dev/null | wc -l)" -ge "$n" ]
}

# kr_until_stalled LOG: true once the run said it stalled at the hook.
kr_until_stalled() {
  grep -q "^vvae: test: stalled before committing" "$1" 2>/dev/null
}

# kr_killed_run LOG CONDITION... -- CMD...: runs CMD in the background (stdout and stderr to
# LOG), evaluates CONDITION (a command) every KR_POLL_SECONDS until it holds, then kill -9s
# the run. Fails (returns 1) when the run ended before the condition held, or on a timeout:
# then no fault was injected and the scenario proves nothing.
kr_killed_run() {
  local log=$1
  shift
  local cond=()
  while [ "$1" != "--" ]; do cond+=("$1"); shift; done
  shift
  "$@" >"$log" 2>&1 &
  local pid=$!
  local waited=0 step_ms
  step_ms=$(awk -v s="$KR_POLL_SECONDS" 'BEGIN { print int(s * 1000) }')
  while ! "${cond[@]}"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      wait "$pid"
      echo "kr_killed_run: the run ended (status $?) before the kill condition held: ${cond[*]}" >>"$log"
      return 1
    fi
    sleep "$KR_POLL_SECONDS"
    waited=$((waited + step_ms))
    if [ "$waited" -gt $((KR_TIMEOUT_SECONDS * 1000)) ]; then
      kill -9 "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
      echo "kr_killed_run: timed out waiting for: ${cond[*]}" >>"$log"
      return 1
    fi
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  return 0
}

# kr_same_files CLEAN OTHER SUBDIR [FIND_ARGS...]: the files under CLEAN/SUBDIR and OTHER/SUBDIR
# (matching FIND_ARGS) have the same relative names and identical bytes. Prints what differs.
kr_same_files() {
  local clean=$1 other=$2 sub=$3
  shift 3
  local a b
  a=$(cd "$clean/$sub" 2>/dev/null && find . -type f "$@" | sort)
  b=$(cd "$other/$sub" 2>/dev/null && find . -type f "$@" | sort)
  if [ "$a" != "$b" ]; then
    echo "file lists differ under $sub:"
    diff <(echo "$a") <(echo "$b") | head -20
    return 1
  fi
  [ -n "$a" ] || { echo "no files under $clean/$sub"; return 1; }
  local f bad=0
  while IFS= read -r f; do
    cmp -s "$clean/$sub/$f" "$other/$sub/$f" || { echo "differs: $sub/$f"; bad=1; }
  done <<<"$a"
  return $bad
}

# kr_no_leftovers DIR: no temporaries (*.tmp-*), staging folders or lock files remain.
kr_no_leftovers() {
  local left
  left=$(find "$1" \( -name '*.tmp-*' -o -name '.vvae-tmp-*' -o -name '*.vvae-lock' \) 2>/dev/null)
  [ -z "$left" ] || { echo "left behind: $left"; return 1; }
}

# kr_csv_column CSV NAME: the values of column NAME, one per line (RFC 4180 quoting), via python3.
kr_csv_column() {
  python3 - "$1" "$2" <<'EOF'
import csv, signal, sys
signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # a reader that stops early (head) is fine
with open(sys.argv[1], newline="", encoding="utf-8", errors="surrogateescape") as f:
    rows = list(csv.reader(f))
col = rows[0].index(sys.argv[2])
for r in rows[1:]:
    print(r[col] if col < len(r) else "")
EOF
}
