# Shared by the shell-driven CLI tests (sourced). Needs TASKFARM, CLI_WORKER, PYTHON, CLI_WORK
# from ctest. Every test gets its own directory $W, removed on success.
set -uo pipefail

fail() {
  echo "FAIL: $*" >&2
  [ -f "$W/stderr" ] && { echo "--- taskfarm stderr:" >&2; head -c 4000 "$W/stderr" >&2; }
  exit 1
}

# Masters a test starts in the background: stopped (SIGTERM, then waited for) if the test ends
# early, so a failing test leaves no farm running.
BG=()
stop_background() {
  local pid
  for pid in "${BG[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null
      wait "$pid" 2>/dev/null
    fi
  done
}

setup_workdir() {
  mkdir -p "$CLI_WORK"
  W=$(mktemp -d "$CLI_WORK/t.XXXXXX")
  trap 'rc=$?; stop_background; [ $rc -eq 0 ] && rm -rf "$W"; exit $rc' EXIT
}

# tf ARGS...: runs taskfarm with stdout/stderr to $W/stdout, $W/stderr; sets TF_RC and TF_PID.
tf() {
  "$TASKFARM" "$@" <&0 >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  wait "$TF_PID"
  TF_RC=$?
}

expect_rc() { [ "$TF_RC" -eq "$1" ] || fail "exit status $TF_RC, expected $1"; }
expect_stderr() { grep -qF -- "$1" "$W/stderr" || fail "stderr lacks '$1'"; }
expect_stdout() { grep -qF -- "$1" "$W/stdout" || fail "stdout lacks '$1'"; }

# No /dev/shm segment of master $1 is left.
expect_no_segments() {
  local left
  left=$(compgen -G "/dev/shm/taskfarm-$1-*" || true)
  [ -z "$left" ] || fail "segments left behind by master $1: $left"
}

# None of the pids (worker pids from a joblog or events) is running: no orphans. Called once
# their master has exited, so a zombie among them is init's to reap (a worker of a SIGKILLed
# master is briefly one), not a leak of ours.
expect_gone() {
  local pid state
  for pid in "$@"; do
    [ "$pid" -gt 0 ] 2>/dev/null || continue
    state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || continue
    [ -z "$state" ] || [ "$state" = Z ] || fail "worker $pid outlived its master (state $state)"
  done
}

# Worker pids recorded in joblog $1.
joblog_pids() { awk -F'\t' 'NR > 2 { print $3 }' "$1" | sort -u; }

# Waits (pidfd, with a deadline) until the pids have exited; fails if one outlives it.
wait_gone() {
  "$PYTHON" - "$@" <<'PY' || fail "workers still alive after their master died"
import os, select, sys, time
deadline = time.monotonic() + 20
for pid in map(int, sys.argv[1:]):
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        continue
    left = deadline - time.monotonic()
    if not select.select([fd], [], [], max(left, 0))[0]:
        sys.exit(f"pid {pid} is still alive")
PY
}

# Runs taskfarm with "$@" (an -k --events run whose task 0 waits until the master dies), waits until the events
# say that the tasks $1 (a list) committed, held behind it, SIGKILLs the master and leaves its
# events in $W/events.killed. Workers (and their commands) are gone when it returns. (Which
# worker runs task 1 is the scheduler's choice: it may wait queued behind task 0.)
kill_while_held() {
  local want=" $1 " line b e k pids=()
  shift
  mkfifo "$W/ev"
  "$TASKFARM" run "$@" </dev/null >"$W/ev" 2>"$W/stderr" &
  local master=$!
  BG+=("$master")
  exec 3<"$W/ev"
  : >"$W/events.killed"
  while [ -n "${want// /}" ] && read -r -t 30 -u 3 line; do
    printf '%s\n' "$line" >>"$W/events.killed"
    case $line in
      *'"event":"chunk"'*)
        b=$(sed -E 's/.*"begin":([0-9]+).*/\1/' <<<"$line")
        e=$(sed -E 's/.*"end":([0-9]+).*/\1/' <<<"$line")
        for ((k = b; k < e; k++)); do want=${want/ $k / }; done ;;
      *'"event":"worker"'*) pids+=("$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$line")") ;;
    esac
  done
  [ -z "${want// /}" ] || fail "tasks$want not committed before the deadline; events: $(head -c 2000 "$W/events.killed")"
  kill -KILL "$master"
  wait "$master" 2>/dev/null
  [ $? -eq 137 ] || fail "the master was not killed"
  timeout 20 cat <&3 >>"$W/events.killed"
  exec 3<&-
  rm -f "$W/ev"
  wait_gone "${pids[@]}"
}

# The `output` events of files $2.. hold each line of $1 exactly once, and nothing else.
expect_outputs_once() {
  "$PYTHON" - "$@" <<'PY' || fail "outputs of the two runs: see above"
import json, sys
want, files = sys.argv[1], sys.argv[2:]
got = {}
for f in files:
    for line in open(f):
        e = json.loads(line)
        if e["event"] == "output":
            assert e["index"] not in got, f"index {e['index']} printed twice"
            got[e["index"]] = e["text"]
text = "".join(got[k] for k in sorted(got))
assert text == want.replace("\\n", "\n"), f"printed {got}, expected {want}"
PY
}

# py CODE ARGS...: runs Python (with NumPy) and fails the test if it does.
py() {
  local code=$1
  shift
  "$PYTHON" -c "$code" "$@" || fail "python check failed"
}

# The value cli_worker writes into flat output element k, as a NumPy expression of k.
VALUE_EXPR='(k * 7919) % 65521'
