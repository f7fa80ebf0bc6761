# Shared by the command-line check scripts (tests/*_test.sh): sourced by bash after `set -u`.
#   checks_begin VVAE MAKE_VIDEO TESTS_DATA   VVAE, MAKE, DATA, MODEL (the small golden 2D AE)
#                                             and WORK, a new folder (removed at exit) made the
#                                             current one; OpenMP waits passively (a loaded CI
#                                             machine: do not spin)
#   fail MESSAGE                              counts a failure
#   ok MESSAGE                                printed when the checks since the last ok passed
#   expect_error NAME OUTPUT CMD...           CMD fails with one "vvae: error:" line on stderr,
#                                             and neither OUTPUT nor a temporary beside it exists
#   checks_end WHAT                           the summary line; exits 1 after any failure
#   skip_if_sanitized                         exits 77 (skipped) in a sanitizer build, where
#                                             RSS is ASan's shadow memory, not vvae's

failures=0
seen=0
export OMP_WAIT_POLICY=passive

checks_begin() {
  VVAE=$(realpath "$1")
  MAKE=$(realpath "$2")
  DATA=$(cd "$3" && pwd)
  MODEL=$DATA/golden/ae2d_small
  WORK=$(mktemp -d)
  # shellcheck disable=SC2064  # WORK is fixed now
  trap "rm -rf '$WORK'" EXIT
  cd "$WORK" || exit 1
}

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

ok() {
  [ $failures -eq $seen ] && echo "ok: $*"
  seen=$failures
}

expect_error() {
  local name=$1 out=$2
  shift 2
  "$@" >"$WORK/stdout" 2>"$WORK/stderr"
  local rc=$?
  [ $rc -ne 0 ] || fail "$name: exit code 0"
  [ "$(wc -l <"$WORK/stderr")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$WORK/stderr")"
  grep -q '^vvae: error: ' "$WORK/stderr" || fail "$name: not an error line: $(cat "$WORK/stderr")"
  [ -e "$out" ] && fail "$name: output $out was left behind"
  ls "$out".tmp-* >/dev/null 2>&1 && fail "$name: temporary left behind"
  ok "$name: $(cat "$WORK/stderr")"
}

checks_end() {
  if [ $failures -ne 0 ]; then
    echo "$failures $1 check(s) failed"
    exit 1
  fi
  echo "all $1 checks passed"
}

skip_if_sanitized() {
  if [ -n "${VVAE_SANITIZED_BUILD:-}" ]; then
    echo "SKIPPED: a sanitizer build: its RSS is ASan's shadow memory and quarantine, not vvae's"
    exit 77
  fi
}
