#!/usr/bin/env bash
# --trace is written as events happen, each batch with one write(2) of whole records: the trace
# of a master killed with SIGKILL mid-run holds every chunk reported so far and parses as the
# JSON array format (whose closing ']' is optional) once the ']' is added — what Perfetto and
# chrome://tracing do.
source "$(dirname "$0")/lib.sh"
setup_workdir

K=10

after_sigkill() {
  local done=0 line pids=()
  mkfifo "$W/ev"
  "$TASKFARM" run -j 2 --chunk 1 --tasks 60 --trace "$W/t.json" --events -- "$CLI_WORKER" \
    --block-from 25 --spin-ms 2 >"$W/ev" 2>"$W/stderr" &
  local master=$!
  BG+=("$master")
  exec 3<"$W/ev"
  while [ "$done" -lt "$K" ] && read -r -t 30 -u 3 line; do
    case $line in
      *'"event":"chunk"'*) done=$((done + 1)) ;;
      *'"event":"worker"'*) pids+=("$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$line")") ;;
    esac
  done
  [ "$done" -eq "$K" ] || fail "only $done of $K chunks committed before the deadline"
  # The trace has them too: wait (bounded) for K chunk slices in the file, then kill.
  "$PYTHON" - "$W/t.json" "$K" <<'PY' || fail "the trace did not show $K chunks within 10 s (buffered?)"
import sys, time
deadline = time.monotonic() + 10
while open(sys.argv[1], 'rb').read().count(b'"cat":"chunk"') < int(sys.argv[2]):
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.01)
PY
  kill -KILL "$master"
  wait "$master" 2>/dev/null
  [ $? -eq 137 ] || fail "the master was not killed"
  exec 3<&-
  wait_gone "${pids[@]}"
  "$TASKFARM" clean >/dev/null || fail "clean failed"  # what the killed master left in /dev/shm
  expect_no_segments "$master"
  py "
import json, sys
text = open(sys.argv[1]).read()
assert text.startswith('[\n'), text[:20]
assert not text.rstrip().endswith(','), 'a trailing comma: the next record was not written whole'
events = json.loads(text.rstrip() + '\n]')   # what both viewers do with an unclosed array
slices = [e for e in events if e.get('ph') == 'X' and e.get('cat') == 'chunk']
assert len(slices) >= int(sys.argv[2]), f'{len(slices)} chunk slices'
assert all(s['args']['outcome'] == 'ok' and s['dur'] >= 0 for s in slices)
assert any(e.get('name') == 'worker started' for e in events)
" "$W/t.json" "$K"
}

# cap_trace: once the trace (at $W/t.json, or the temporary file of a trace that is to replace
# a file of the user's there) holds 20 chunk slices, lowers the master's file size limit to 100
# bytes past the trace's size, so that a later batch is written in part.
cap_trace() {
  "$PYTHON" - "$TF_PID" "$W" <<'PY' || fail "could not cap the trace"
import glob, resource, sys, time
pid, w = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 20
while True:  # bounded poll for the trace to hold 20 chunk slices
    texts = []
    for path in glob.glob(w + '/t.json') + glob.glob(w + '/t.json.taskfarm-*.tmp'):
        try:
            texts.append(open(path, 'rb').read())
        except FileNotFoundError:  # (renamed meanwhile)
            pass
    text = max(texts, key=lambda t: t.count(b'"cat":"chunk"'), default=b'')
    if text.count(b'"cat":"chunk"') >= 20:
        break
    if time.monotonic() > deadline:
        sys.exit(1)
    time.sleep(0.005)
size = len(text) + 100
resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, size))
PY
}

# A trace that cannot be written further (a full disk; here the master's file size limit)
# ends after its last whole record: the part is cut off again. The run goes on, says so in one
# line and exits 102 (a file of the run could not be written).
full_disk() {
  "$TASKFARM" run -j 2 --chunk 1 --tasks 400 --trace "$W/t.json" --output "$W/o.npy" --dtype int32 \
    -- "$CLI_WORKER" --spin-ms 3 </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  cap_trace
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 102
  expect_stderr "400 tasks: 400 succeeded"
  expect_stderr "cannot write trace $W/t.json: File too large (it ends after the last record that fit)"
  py "
import json, sys
text = open(sys.argv[1]).read()
assert not text.rstrip().endswith(','), 'a trailing comma'
events = json.loads(text.rstrip() + '\n]')   # cut after a whole record
assert sum(1 for e in events if e.get('cat') == 'chunk') >= 20
" "$W/t.json"
}

# The same with a trace of the user's at the path: a trace that could not be written whole never
# replaces it (it waits under its temporary name until the run ends, then is removed).
full_disk_keeps_users_trace() {
  echo '{"user":"precious trace"}' >"$W/t.json.keep"
  ln "$W/t.json.keep" "$W/t.json"
  "$TASKFARM" run -j 2 --chunk 1 --tasks 400 --trace "$W/t.json" --output "$W/o.npy" --dtype int32 \
    -- "$CLI_WORKER" --spin-ms 3 </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  cap_trace
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 102
  expect_stderr "400 tasks: 400 succeeded"
  expect_stderr "cannot write trace $W/t.json: File too large ($W/t.json was not replaced: the file there is as it was)"
  [ "$W/t.json" -ef "$W/t.json.keep" ] || fail "the user's trace was replaced"
  [ "$(cat "$W/t.json")" = '{"user":"precious trace"}' ] || fail "the user's trace was written"
  [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"
  # Written whole, it replaces the user's file at the end of the run.
  TF_RC=0
  "$TASKFARM" run -j 2 --tasks 40 --trace "$W/t.json" -- "$CLI_WORKER" </dev/null >"$W/stdout" 2>"$W/stderr" || TF_RC=$?
  expect_rc 0
  [ "$W/t.json" -ef "$W/t.json.keep" ] && fail "the trace did not replace the user's file"
  py "
import json, sys
events = json.load(open(sys.argv[1]))
assert sum(1 for e in events if e.get('cat') == 'chunk') >= 1
" "$W/t.json"
}

"$@"
