#!/usr/bin/env bash
# Rule 2 through the binary: a file taskfarm did not create is never deleted, truncated or
# written. A device node or FIFO is refused by its kind where a file is expected (never opened,
# never blocked on, never removed) — but a source of lines may be a FIFO or pipe; a bad input leaves existing outputs as they were; an existing output, joblog or
# trace is replaced by a new file when the run starts, never written in place; a joblog that
# cannot be written stops the run like an interruption and keeps what was done; two runs never
# share a file; a worker's stray write into --input faults and never reaches the file.
source "$(dirname "$0")/lib.sh"
setup_workdir

# tf_bounded ARGS...: tf with a deadline, so that a taskfarm blocked in open() of a FIFO fails
# the test instead of hanging it.
tf_bounded() {
  timeout -s KILL 20 "$TASKFARM" "$@" </dev/null >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  [ "$TF_RC" -ne 137 ] || fail "taskfarm $* blocked (killed after 20 s)"
}

# expect_refused MESSAGE: exit 2 and one line on stderr naming the culprit.
expect_refused() {
  expect_rc 2
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "stderr is not one line"
  expect_stderr "$1"
}

# The names in $W (but the test's own stdout/stderr), to check that nothing appeared.
listing() { (cd "$W" && find . -mindepth 1 -not -name stdout -not -name stderr | sort); }

device_or_fifo_output() {
  mkfifo "$W/fifo"
  tf_bounded run --tasks 4 --output "$W/fifo" --dtype f8 -- "$CLI_WORKER"
  expect_refused "--output: '$W/fifo' is a FIFO, not a regular file"
  [ -p "$W/fifo" ] || fail "the FIFO named by --output was removed"
  if [ "$(id -u)" -ne 0 ]; then
    echo "not root: the device node half of this test is skipped"
    return 0
  fi
  mknod -m 666 "$W/null" c 1 3  # a /dev/null of our own: the real one is never put at risk
  for opt in --output --joblog --trace; do
    local extra=()
    [ "$opt" = --output ] && extra=(--dtype f8)
    tf_bounded run --tasks 4 "$opt" "$W/null" "${extra[@]}" -- "$CLI_WORKER"
    expect_refused "$opt: '$W/null' is a character device, not a regular file"
    [ -c "$W/null" ] && [ "$(stat -c %t:%T "$W/null")" = 1:3 ] || fail "$opt removed or replaced the device node"
  done
}

fifos_refused() {
  mkfifo "$W/fifo"
  printf 'x\n' >"$W/lines.txt"
  tf_bounded run --tasks 4 --input "$W/fifo" -- "$CLI_WORKER"
  expect_refused "--input: '$W/fifo' is a FIFO, not a regular file"
  tf_bounded run --tasks 4 --joblog "$W/fifo" -- "$CLI_WORKER"
  expect_refused "--joblog: '$W/fifo' is a FIFO, not a regular file"
  tf_bounded run --tasks 4 --trace "$W/fifo" -- "$CLI_WORKER"
  expect_refused "--trace: '$W/fifo' is a FIFO, not a regular file"
  tf_bounded run --resume --tasks 4 --joblog "$W/fifo" -- "$CLI_WORKER"
  expect_refused "--joblog: '$W/fifo' is a FIFO, not a regular file"
  [ -p "$W/fifo" ] || fail "the FIFO was removed"
  [ "$(listing)" = "$(printf './fifo\n./lines.txt')" ] || fail "files appeared: $(listing)"
}

# Inputs whose header NumPy reads but that cannot be shared: an empty axis, 9 axes, data
# misaligned for its dtype. Found after the output was created, they used to delete it.
bad_input_keeps_existing() {
  py "
import numpy as np, sys
d = sys.argv[1]
np.save(d + '/empty-axis.npy', np.zeros((0, 3)))
np.save(d + '/nine-axes.npy', np.zeros((1,) * 9))
hdr = \"{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }\"
hdr += ' ' * ((4 - (10 + len(hdr) + 1)) % 8) + '\n'  # data at 4 mod 8: misaligned for f8
open(d + '/misaligned.npy', 'wb').write(b'\x93NUMPY\x01\x00' + len(hdr).to_bytes(2, 'little') + hdr.encode() + bytes(32))
" "$W"
  local f bad
  for f in out.npy j.tsv t.json; do echo "precious $f" >"$W/$f"; cp "$W/$f" "$W/$f.before"; done
  local before
  before=$(listing)
  for bad in empty-axis nine-axes misaligned; do
    tf run --tasks 64 --input "$W/$bad.npy" --output "$W/out.npy" --dtype f8 --joblog "$W/j.tsv" \
      --trace "$W/t.json" -- "$CLI_WORKER" </dev/null
    expect_refused "--input: "
    for f in out.npy j.tsv t.json; do cmp -s "$W/$f" "$W/$f.before" || fail "$bad input: $f was changed or removed"; done
    [ "$(listing)" = "$before" ] || fail "$bad input: files appeared or vanished: $(listing)"
    expect_no_segments "$TF_PID"
  done
}

# Each of --output, --joblog, --trace names a file with a second hard link: the run replaces
# the name with a new file (rename), so the other link keeps its bytes.
replaced_never_written() {
  local f
  for f in out.npy j.tsv t.json; do
    echo "precious $f" >"$W/$f.keep"
    ln "$W/$f.keep" "$W/$f"
  done
  tf run -j 2 --tasks 50 --output "$W/out.npy" --dtype int32 --joblog "$W/j.tsv" --trace "$W/t.json" -- "$CLI_WORKER"
  expect_rc 0
  for f in out.npy j.tsv t.json; do
    [ "$(cat "$W/$f.keep")" = "precious $f" ] || fail "$f was written in place (its other link changed)"
  done
  py "
import json, numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy'); k = np.arange(50)
assert (a == ($VALUE_EXPR)).all()
json.load(open(sys.argv[1] + '/t.json'))
assert open(sys.argv[1] + '/j.tsv').readline().startswith('# taskfarm joblog 1')
" "$W"
  [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"
}

# A run that has nothing to show replaces nothing: workers that never start the protocol, a run
# interrupted before any task ended, or one whose every task failed (that one publishes its
# joblog and trace, which record the failures, but not the output) leave the user's files as
# they were (same bytes, same inode) and no temporary file.
nothing_to_show_replaces_nothing() {
  local f
  keep_files() {
    for f in out.npy j.tsv t.json; do
      rm -f "$W/$f" "$W/$f.keep"
      echo "precious $f" >"$W/$f.keep"
      ln "$W/$f.keep" "$W/$f"
    done
  }
  expect_kept() {  # FILES...: still the user's (hard link intact, bytes unchanged)
    for f in "$@"; do
      [ "$W/$f" -ef "$W/$f.keep" ] || fail "$1: $f was replaced"
      [ "$(cat "$W/$f")" = "precious $f" ] || fail "$f was written"
    done
    [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"
  }
  local args=(--tasks 8 --output "$W/out.npy" --dtype int32 --joblog "$W/j.tsv" --trace "$W/t.json")

  keep_files
  tf_bounded run -j 2 "${args[@]}" -- /bin/true  # exits before its handshake, every time
  expect_rc 3
  expect_stderr "no task succeeded: $W/out.npy was not replaced (the file there is as it was)"
  expect_kept out.npy j.tsv t.json

  keep_files
  "$TASKFARM" run -j 1 "${args[@]}" -- "$CLI_WORKER" --block-from 0 </dev/null >"$W/stdout" 2>"$W/stderr" &
  local run=$!
  BG+=("$run")
  local deadline=$((SECONDS + 20))
  until compgen -G "$W/t.json.taskfarm-*.tmp" >/dev/null && grep -q '"worker started"' "$W"/t.json.taskfarm-*.tmp; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the run never started a worker"
    kill -0 "$run" 2>/dev/null || fail "the run ended early: $(cat "$W/stderr")"
    sleep 0.01
  done
  kill -INT "$run"
  wait "$run"
  TF_RC=$?
  expect_rc 130
  expect_kept out.npy j.tsv t.json

  keep_files
  tf_bounded run -j 2 --retries 0 "${args[@]}" -- "$CLI_WORKER" --throw-all
  expect_rc 8
  [ "$W/out.npy" -ef "$W/out.npy.keep" ] && [ "$(cat "$W/out.npy")" = "precious out.npy" ] ||
    fail "the output was replaced although no task succeeded"
  [ "$W/j.tsv" -ef "$W/j.tsv.keep" ] && fail "the joblog of failed tasks was not published"
  [ "$(grep -c $'\tfailed\t' "$W/j.tsv")" -eq 8 ] || fail "the joblog does not list the 8 failures: $(cat "$W/j.tsv")"
  [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"

  # A task ended, but not one row of the joblog (nor record of the trace) could be written (a
  # full disk; here the master's RLIMIT_FSIZE capped at their headers while its first task
  # waits on a FIFO): the user's files stay, and no --resume is offered from them.
  keep_files
  mkfifo "$W/gate" "$W/errpipe"
  cat "$W/errpipe" >"$W/stderr" &  # (a pipe: the summary itself is past the cap)
  local err=$!
  "$TASKFARM" run -j 1 --tasks 8 --joblog "$W/j.tsv" --trace "$W/t.json" -- "$CLI_WORKER" --gate "$W/gate" \
    </dev/null >/dev/null 2>"$W/errpipe" &
  run=$!
  BG+=("$run")
  "$PYTHON" - "$run" "$W" <<'PY' || fail "could not cap the joblog"
import glob, os, resource, sys, time
pid, w = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 20
while True:  # bounded poll: the worker started (and waits at the gate)
    t = glob.glob(w + '/t.json.taskfarm-*.tmp')
    if t and b'"worker started"' in open(t[0], 'rb').read():
        break
    if time.monotonic() > deadline:
        sys.exit('the run never started a worker')
    time.sleep(0.01)
cap = min(os.path.getsize(f) for f in glob.glob(w + '/*.taskfarm-*.tmp'))
resource.prlimit(pid, resource.RLIMIT_FSIZE, (cap, cap))
PY
  : >"$W/gate"  # the first task ends now; its row cannot be written
  wait "$run"
  TF_RC=$?
  wait "$err"
  expect_rc 102
  expect_kept j.tsv t.json
  expect_stderr "stopped: cannot write joblog $W/j.tsv: File too large"
  expect_stderr "$W/j.tsv was not replaced: no joblog row of this run was written (the file there is as it was)"
  expect_stderr "cannot write trace $W/t.json: File too large ($W/t.json was not replaced: the file there is as it was)"
  ! grep -q -- '--resume' "$W/stderr" || fail "a --resume is offered from the user's file"
}

# Started with stdout or stderr closed, the run's own files would get fd 1 or 2 and the tasks'
# output, stderr lines and summary would be written into them: a closed stream is /dev/null.
closed_standard_streams() {
  local args=(-j 2 --tasks 40 --output "$W/out.npy" --dtype int32 --joblog "$W/j.tsv" --trace "$W/t.json")
  "$TASKFARM" run "${args[@]}" -- "$CLI_WORKER" --print </dev/null >&- 2>"$W/stderr"
  TF_RC=$?
  expect_rc 0
  rm -f "$W/out.npy" "$W/j.tsv" "$W/t.json"
  "$TASKFARM" run "${args[@]}" -- "$CLI_WORKER" --print </dev/null >"$W/stdout" 2>&-
  TF_RC=$?
  expect_rc 0
  "$TASKFARM" run -j 2 --tasks 5 -- "$CLI_WORKER" <&- >/dev/null 2>&1
  TF_RC=$?
  expect_rc 0
  py "
import json, numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy'); k = np.arange(40)
assert (a == ($VALUE_EXPR)).all(), 'the output holds something else'
json.load(open(sys.argv[1] + '/t.json'))
rows = open(sys.argv[1] + '/j.tsv').read().splitlines()
assert rows[0].startswith('# taskfarm joblog 1') and len(rows) == 42, rows[:3]
assert all(len(r.split('\t')) == 10 for r in rows[1:]), 'a line that is not a joblog row'
" "$W"
}

# What a run only reads — the worker program, the command, a `:::: FILE` source — named also by
# --output, --joblog or --trace is refused like --input and --input-lines are (exit 2, one
# line), never replaced by the .npy, joblog or trace while the run goes on.
read_files_never_written() {
  cp "$CLI_WORKER" "$W/w"
  printf 'a\nb\n' >"$W/lines.txt"
  cp "$W/lines.txt" "$W/lines.keep"
  local what args
  while IFS='|' read -r what args; do
    eval "tf run $args" </dev/null
    expect_rc 2
    expect_stderr "$what name the same file"
    [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "not one line: $(cat "$W/stderr")"
    cmp -s "$W/w" "$CLI_WORKER" && [ -x "$W/w" ] || fail "$what: the program was changed"
    cmp -s "$W/lines.txt" "$W/lines.keep" || fail "$what: the source was changed"
  done <<EOF
--output and the worker program|--tasks 2 --output "$W/w" --dtype f8 -- "$W/w"
--trace and the worker program|--tasks 2 --trace "$W/w" -- "$W/w"
--joblog and the command|--exec --joblog "$W/w" -- "$W/w" {} ::: 1
--joblog and ::::|--exec --joblog "$W/lines.txt" -- echo :::: "$W/lines.txt"
--trace and ::::|--exec --trace "$W/./lines.txt" -- echo ::: x :::: "$W/lines.txt"
EOF
  [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"
}

# Standard output on a full disk (/dev/full: ENOSPC, as `> out.txt` on a full file system): the
# run stops, exit 102 naming why (not "interrupted by SIGPIPE", which is a reader gone), and no
# task whose output was lost is recorded done: --resume prints every one of them.
stdout_write_failure() {
  [ -c /dev/full ] || { echo "SKIP: no /dev/full"; exit 77; }
  local mode word
  for mode in exec program; do
    local args=(-j 1 --joblog "$W/j-$mode.tsv")
    if [ "$mode" = exec ]; then
      args+=(--exec -- echo task ::: 0 1 2 3 4)
    else
      args+=(--tasks 5 -- "$CLI_WORKER" --print)
    fi
    "$TASKFARM" run "${args[@]}" </dev/null >/dev/full 2>"$W/stderr"
    TF_RC=$?
    expect_rc 102
    expect_stderr "stopped: cannot write to standard output: No space left on device"
    grep -q "SIGPIPE" "$W/stderr" && fail "$mode: a full disk reported as SIGPIPE"
    "$TASKFARM" run --resume "${args[@]}" </dev/null >"$W/stdout" 2>"$W/stderr"
    TF_RC=$?
    expect_rc 0
    [ "$(sort "$W/stdout" | tr '\n' ,)" = "task 0,task 1,task 2,task 3,task 4," ] ||
      fail "$mode: a task whose output was lost was recorded done: the resume printed '$(cat "$W/stdout")'"
  done
}

# Files that cannot be put in place once tasks succeeded (their directory made read-only
# meanwhile): the user's files stay as they were, the run stops like an interruption (exit 102)
# and says so, never "no task succeeded". Run as an unprivileged user: root ignores the mode.
unpublishable_after_success() {
  [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null || { echo "SKIP: needs root and setpriv"; exit 77; }
  local d="$W/ro"
  mkdir "$d"
  echo "mine" >"$d/o.npy"
  echo "minej" >"$d/j.tsv"
  chown -R 65534:65534 "$d"
  chmod 0777 "$W"
  # The first task ends only once the test has made the directory read-only (--gate).
  mkfifo -m 0666 "$W/gate"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$TASKFARM" run -j 1 --chunk 1 --tasks 2 \
    --output "$d/o.npy" --dtype int32 --joblog "$d/j.tsv" -- "$CLI_WORKER" --gate "$W/gate" \
    </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  local deadline=$((SECONDS + 20))
  until compgen -G "$d/o.npy.taskfarm-*.tmp" >/dev/null && compgen -G "$d/j.tsv.taskfarm-*.tmp" >/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "the run never staged its files"
    sleep 0.01
  done
  chmod 0555 "$d"
  timeout 20 bash -c 'echo go >"$1"' _ "$W/gate" || fail "the worker never opened its gate"
  wait "$TF_PID"
  TF_RC=$?
  chmod 0755 "$d"
  expect_rc 102
  expect_stderr "stopped: cannot publish .npy file $d/o.npy: cannot rename"
  expect_stderr "the results could not be put in place: $d/o.npy was not replaced (the file there is as it was)"
  expect_stderr "$d/j.tsv was not replaced (the file there is as it was)"
  grep -q "no task succeeded" "$W/stderr" && fail "said no task succeeded: $(cat "$W/stderr")"
  [ "$(cat "$d/o.npy")" = mine ] && [ "$(cat "$d/j.tsv")" = minej ] || fail "the user's files changed"
}

# A joblog that cannot be written (a full disk; here the master's file size limit, lowered
# with prlimit once the joblog holds 40 rows, so its next write fails with EFBIG) stops the run
# like an interruption: exit 102, the summary, the output kept with every logged result in it,
# whole rows only in the joblog, and --resume completes the run.
joblog_write_failure() {
  local args=(-j 2 --chunk 1 --tasks 600 --output "$W/out.npy" --dtype int32 --joblog "$W/j.tsv")
  "$TASKFARM" run "${args[@]}" -- "$CLI_WORKER" --spin-ms 3 </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  "$PYTHON" - "$TF_PID" "$W/j.tsv" <<'PY' || fail "could not cap the joblog"
import os, resource, sys, time
pid, path = int(sys.argv[1]), sys.argv[2]
deadline = time.monotonic() + 20
while True:  # bounded poll for the joblog to reach 40 rows (2 header lines)
    try:
        lines = open(path, 'rb').read().count(b'\n')
    except FileNotFoundError:
        lines = 0
    if lines >= 42:
        break
    if time.monotonic() > deadline:
        sys.exit('the joblog never reached 40 rows')
    time.sleep(0.002)
size = os.path.getsize(path)
resource.prlimit(pid, resource.RLIMIT_FSIZE, (size, size))
PY
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 102
  expect_stderr "stopped: cannot write joblog $W/j.tsv: File too large"
  expect_stderr "is INCOMPLETE"
  expect_stderr "--resume"
  [ -f "$W/out.npy" ] || fail "the output was removed"
  [ "$(tail -c 1 "$W/j.tsv" | od -An -c | tr -d ' ')" = '\n' ] || fail "the joblog ends in a torn row"
  expect_no_segments "$TF_PID"
  expect_gone $(joblog_pids "$W/j.tsv")
  py "
import numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy')
rows = [l.split('\t') for l in open(sys.argv[1] + '/j.tsv').read().splitlines()[2:]]
ok = [int(r[0]) for r in rows if r[6] == 'ok']
assert 40 <= len(ok) < 600, len(ok)
k = np.array(ok)
assert (a[k] == ($VALUE_EXPR)).all(), 'a task logged ok is not in the output'
" "$W"
  # The summary's counts are the joblog's: what it records, and what a --resume runs again.
  local recorded missing
  recorded=$(sed -nE 's/.*the joblog records ([0-9]+) of the.*/\1/p' "$W/stderr")
  missing=$(sed -nE 's/.*is INCOMPLETE: ([0-9]+) of 600 tasks missing.*/\1/p' "$W/stderr")
  [ "$recorded" = "$(grep -c $'\tok\t' "$W/j.tsv")" ] || fail "the summary says the joblog records '$recorded' tasks: $(cat "$W/stderr")"
  [ "$missing" = "$((600 - recorded))" ] || fail "the summary says $missing tasks are missing, the joblog records $recorded of 600"
  tf run --resume --events "${args[@]}" -- "$CLI_WORKER"
  expect_rc 0
  grep -q "\"tasks\":$missing," "$W/stdout" || fail "the resume did not run the $missing tasks the summary said: $(head -1 "$W/stdout")"
  py "
import numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy'); k = np.arange(600)
assert (a == ($VALUE_EXPR)).all(), 'the resumed output differs from the serial result'
" "$W"
}

# Two runs naming the same file: the second is refused before it creates anything.
concurrent_runs() {
  "$TASKFARM" run -j 1 --tasks 4 --output "$W/out.npy" --dtype int32 --joblog "$W/ja.tsv" \
    -- "$CLI_WORKER" --block-from 0 </dev/null >"$W/a.stdout" 2>"$W/a.stderr" &
  local first=$!
  BG+=("$first")
  local deadline=$((SECONDS + 20))
  until [ -e "$W/ja.tsv" ]; do  # published when the first run starts: it holds its locks by then
    [ "$SECONDS" -lt "$deadline" ] || fail "the first run never started"
    kill -0 "$first" 2>/dev/null || fail "the first run ended early: $(cat "$W/a.stderr")"
    sleep 0.01
  done
  tf run --tasks 4 --output "$W/out.npy" --dtype int32 --joblog "$W/jb.tsv" -- "$CLI_WORKER"
  expect_refused "--output: '$W/out.npy' is in use by another taskfarm run"
  [ ! -e "$W/jb.tsv" ] || fail "the refused run created its joblog"
  tf run --tasks 4 --output "$W/other.npy" --dtype int32 --joblog "$W/ja.tsv" -- "$CLI_WORKER"
  expect_refused "--joblog: '$W/ja.tsv' is in use by another taskfarm run"
  [ ! -e "$W/other.npy" ] || fail "the refused run created its output"
  tf run --tasks 4 --input "$W/out.npy" -- "$CLI_WORKER"
  expect_refused "--input: '$W/out.npy' is in use by another taskfarm run"
  [ -z "$(find "$W" -name '*.tmp')" ] || fail "temporary files left: $(find "$W" -name '*.tmp')"
  kill -TERM "$first"
  wait "$first"
  local rc=$?
  [ "$rc" -eq 143 ] || fail "the first run exited $rc, expected 143: $(cat "$W/a.stderr")"
}

# A hostile worker writes into its --input: the write faults (a `signal` failure of that index)
# and the file's bytes on disk are unchanged.
worker_writes_input() {
  py "import numpy as np, sys; np.save(sys.argv[1], np.arange(40, dtype=np.float64))" "$W/in.npy"
  cp "$W/in.npy" "$W/in-before.npy"
  tf run -j 2 --retries 0 --tasks 40 --input "$W/in.npy" --output "$W/out.npy" --dtype float64 \
    --joblog "$W/j.tsv" -- "$INPUT_SCRIBBLER" --at 7
  expect_rc 1
  expect_stderr "index 7"
  expect_stderr "SIGSEGV"
  cmp -s "$W/in.npy" "$W/in-before.npy" || fail "the worker's write reached the input file"
  awk -F'\t' '$1 == 7 && $7 == "failed" && $9 == 11 && $10 == "signal" { found = 1 } END { exit !found }' "$W/j.tsv" ||
    fail "the joblog lacks index 7 failed by signal 11"
  py "
import numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy'); k = np.arange(40) != 7
assert (a[k] == np.arange(40.0)[k]).all()
" "$W"
  expect_no_segments "$TF_PID"
  expect_gone $(joblog_pids "$W/j.tsv")
}

header_written_over_then_a_crash() {  # a stray write over the .npy header (F10), then a worker crash:
  # the replacement workers parse the header when they attach the output; the master puts it back
  # before starting one, so they work (before: each died, "bad .npy header", and after 5 the run
  # stopped, exit 3, its output removed as "no task succeeded").
  tf run -j 1 --retries 1 --tasks 40 --output "$W/out.npy" --dtype float64 -- "$CLI_WORKER" \
    --scribble-header-at 3 --crash-at 10
  expect_rc 103
  expect_stderr "taskfarm: 40 tasks: 39 succeeded, 1 failed, 1 retry, 1 worker"
  expect_stderr "taskfarm: a worker wrote over the .npy header of $W/out.npy (restored); data near the start may be damaged too"
  py "
import numpy as np, sys
a = np.load(sys.argv[1] + '/out.npy'); k = np.arange(40) != 10
assert (a[k] == (np.arange(40) * 7919 % 65521)[k]).all()
" "$W"
  expect_no_segments "$TF_PID"
}

"$@"
