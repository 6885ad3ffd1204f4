#!/usr/bin/env bash
# The engine seen through the binary: no silent hang (start-up deadline, stall warnings,
# progress on time), bounded resources (workers capped at the task count, chunks beyond the
# index space, failed spawns), and nothing left behind (escaping descendants).
source "$(dirname "$0")/lib.sh"
setup_workdir

chunk_beyond_on_resume() {  # a --chunk beyond the index space over resumed ranges not starting at 0
  tf run -j 2 --tasks 12 --retries 0 --output "$W/o.npy" --dtype i4 --joblog "$W/j.tsv" \
    -- "$CLI_WORKER" --crash-at 5,9
  expect_rc 2
  tf run --resume -j 2 --tasks 12 --chunk 18446744073709551615 --output "$W/o.npy" --joblog "$W/j.tsv" \
    -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "2 tasks: 2 succeeded, 0 failed"
  grep -q "died" "$W/stderr" && fail "workers died"
  py "
import numpy as np, sys
o = np.load(sys.argv[1])
k = np.arange(o.size, dtype=np.int64).reshape(o.shape)
assert (o == $VALUE_EXPR).all()" "$W/o.npy"
  expect_no_segments "$TF_PID"
}

workers_capped_at_tasks() {  # -j far above the task count starts at most one worker per task
  tf run -j 200 --tasks 3 --events -- "$CLI_WORKER"
  expect_rc 0
  # At most 3: a worker is started only while work is left to hand out, so when the first ones
  # finish all 3 tasks before the third start comes round, 2 (or 1) is right too.
  local started
  started=$(grep -c '"event":"worker"' "$W/stdout")
  [ "$started" -ge 1 ] && [ "$started" -le 3 ] || fail "$started workers started for 3 tasks"
  expect_stderr "3 tasks: 3 succeeded"
  expect_no_segments "$TF_PID"
}

# worker_pids: the pids of the "worker" events in $W/stdout.
worker_pids() { sed -nE 's/.*"event":"worker".*"pid":([0-9]+).*/\1/p' "$W/stdout"; }

not_a_worker_program() {  # `-- sleep 100` waited forever, --timeout or not; `-- true` is no worker either
  local t0=$SECONDS
  tf run -j 2 --tasks 3 --timeout 2s --events -- sleep 100
  expect_rc 3
  expect_stderr "sleep did not start the taskfarm protocol within 5 s — is it a worker program (does it call run_worker)?"
  expect_stderr "If it is one that starts slowly (work before run_worker), raise the start timeout (--start-timeout, start_timeout)"
  [ $((SECONDS - t0)) -lt 15 ] || fail "took $((SECONDS - t0)) s"
  expect_gone $(worker_pids)
  expect_no_segments "$TF_PID"
  tf run -j 2 --tasks 3 --start-timeout 300ms --events -- sleep 100
  expect_rc 3
  expect_stderr "within 300 ms"
  expect_gone $(worker_pids)
  tf run -j 2 --tasks 3 -- true
  expect_rc 3
  expect_stderr "true exited with code 0 before starting the taskfarm protocol: it is not a worker program"
  expect_no_segments "$TF_PID"
}

# as_user_with_nproc N CMD...: runs CMD as an unprivileged user of its own under RLIMIT_NPROC = N
# (root is exempt from the limit). Skips (exit 0 with a note) when not root.
as_user_with_nproc() {
  local n=$1
  shift
  local uid=$((200000 + $$ % 100000))
  # LeakSanitizer (in sanitizer builds) needs a thread at exit, which RLIMIT_NPROC refuses.
  ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
    setpriv --reuid="$uid" --regid="$uid" --clear-groups prlimit --nproc="$n" -- "$@"
}

spawn_eagain_carries_on() {  # EAGAIN at the third spawn: the run goes on with 2 workers, and says so
  [ "$(id -u)" -eq 0 ] || { echo "skipped: needs root to run under RLIMIT_NPROC as another user"; return 0; }
  chmod 0777 "$W"
  as_user_with_nproc 3 "$TASKFARM" run -j 4 --tasks 300 --events --output "$W/o.npy" --dtype i4 -- "$CLI_WORKER" \
    >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 0
  expect_stderr "taskfarm: cannot start a worker: cannot start worker program $CLI_WORKER: Resource temporarily unavailable; carrying on with 2 of 4 workers, trying again"
  expect_stderr "300 tasks: 300 succeeded"
  [ "$(grep -c '"event":"worker"' "$W/stdout")" -eq 2 ] || fail "not 2 workers"
  py "
import numpy as np, sys
o = np.load(sys.argv[1])
k = np.arange(o.size, dtype=np.int64).reshape(o.shape)
assert (o == $VALUE_EXPR).all()" "$W/o.npy"
  # No worker at all: the run stops with that cause.
  as_user_with_nproc 1 "$TASKFARM" run -j 2 --tasks 10 -- "$CLI_WORKER" >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 3
  expect_stderr "the farm could not run: cannot start any worker: cannot start worker program $CLI_WORKER: Resource temporarily unavailable"
}

mem_limit_not_applicable() {  # --mem-limit above the hard limit, without CAP_SYS_RESOURCE: exit 3, said
  command -v setpriv >/dev/null && command -v prlimit >/dev/null || { echo "skipped: needs util-linux setpriv, prlimit"; return 0; }
  # Hard RLIMIT_AS 64 PiB (above what any process here maps, sanitizers' shadow included), the
  # capability to raise it dropped (also from the bounding set: root would get it back at exec).
  local drop=()
  [ "$(id -u)" -eq 0 ] && drop=(setpriv --bounding-set -sys_resource --inh-caps -sys_resource --)
  prlimit --as=$((1 << 56)):$((1 << 56)) "${drop[@]}" \
    "$TASKFARM" run -j 2 --tasks 10 --mem-limit 131072T -- "$CLI_WORKER" >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 3
  expect_stderr "the farm could not run: cannot apply the memory limit of "
  expect_stderr "(RLIMIT_AS) to worker program $CLI_WORKER: Operation not permitted (this process's hard limit is "
  expect_stderr "raising it needs CAP_SYS_RESOURCE)"
}

# A worker stopped with SIGSTOP (no --timeout) used to make the run wait silently. Now it is
# named on stderr once, a "stall" event says so, and once continued the run completes.
stopped_worker_is_named() {
  local line pid="" stalled=""
  mkfifo "$W/ev"
  "$TASKFARM" run -j 1 --chunk 1 --tasks 30 --stall-warning 1s --events -- "$CLI_WORKER" --spin-ms 20 \
    >"$W/ev" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/ev"
  while read -r -t 30 -u 3 line; do
    case $line in
      *'"event":"worker"'*) pid=$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$line") ;;
      *'"event":"chunk"'*) [ -n "$pid" ] && [ -z "$stalled" ] && kill -STOP "$pid" && stalled=asked ;;
      *'"event":"stall"'*) stalled=$line; break ;;
    esac
  done
  [ "$stalled" != asked ] && [ -n "$stalled" ] || fail "no stall event within 30 s"
  grep -q '"stopped":true' <<<"$stalled" || fail "stall event does not say stopped: $stalled"
  grep -q "\"pid\":$pid" <<<"$stalled" || fail "stall event names another pid: $stalled"
  kill -CONT "$pid"
  cat <&3 >"$W/rest"
  wait "$TF_PID"
  TF_RC=$?
  exec 3<&-
  expect_rc 0
  # (on a task, or between two: the stop may land while it reports a chunk)
  expect_stderr "(pid $pid) has shown no progress for "  # 1 s or more: ticks may come late under load
  expect_stderr "it is stopped (SIGSTOP?): kill -CONT $pid resumes it; --timeout would kill and retry"
  [ "$(grep -c 'has shown no progress' "$W/stderr")" -eq 1 ] || fail "named more than once"
  grep -q '"event":"end".*"succeeded":30' "$W/rest" || fail "the run did not complete"
}

# --progress is event-driven no more: with every task stuck, lines still come every 2 s, naming
# the worker and the task it is stuck on.
progress_moves_while_stuck() {
  "$TASKFARM" run -j 1 --chunk 1 --tasks 3 --progress --stall-warning 0 -- "$CLI_WORKER" --block-from 1 \
    >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  local waited=0
  until grep -q "taskfarm: [01]/3 .* slot 0 on 1 for 0:0[2-9]" "$W/stderr"; do
    [ "$waited" -lt 200 ] || fail "no progress line naming the stuck worker within 20 s"
    read -r -t 0.1 <> <(:) || true  # a 0.1 s bounded wait between looks at the file
    waited=$((waited + 1))
  done
  kill -TERM "$TF_PID"
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 143
  grep -q "has shown no progress" "$W/stderr" && fail "--stall-warning 0 still warned"
  expect_no_segments "$TF_PID"
}

# --- hostile workers (tests/helpers/hostile_worker.cpp) ---

escaped_grandchild() {  # a task's grandchild that setsid()s and outlives its worker ends with the run
  tf run -j 2 --tasks 20 --events -- "$HOSTILE_WORKER" --mode escape --at 3 --dir "$W"
  expect_rc 0
  local pid
  pid=$(cat "$W/escaped") || fail "the grandchild never started"
  if [ -e "/proc/$pid" ]; then
    kill -KILL "$pid"  # ours to end: this test started it
    fail "escaped grandchild $pid outlived the run"
  fi
  expect_gone $(worker_pids)
  expect_no_segments "$TF_PID"
}

huge_stderr_line() {  # 16 MiB on stderr without a newline: forwarded cut, and said so
  tf run -j 2 --tasks 10 --retries 0 -- "$HOSTILE_WORKER" --mode stderr-line --at 3 --bytes 16777216
  expect_rc 1
  expect_stderr " [taskfarm: line longer than 64 KiB, cut here]"
  expect_stderr "more bytes of that line not shown]"
  expect_stderr "failed indices: 3"
  [ "$(wc -c <"$W/stderr")" -lt 200000 ] || fail "stderr holds $(wc -c <"$W/stderr") bytes"
}

stdout_flood() {  # every task prints 256 KiB: all of it comes out, the master's memory stays bounded
  # With --keep-order behind a slow first task, every result that overtakes it waits in the
  # master: bounded in bytes, not only in tasks.
  for order in "" "--keep-order"; do
    "$PYTHON" - "$TASKFARM" "$W/stderr" "$order" "$HOSTILE_WORKER" <<'PY' || fail "flood${order:+ with $order}"
import os, resource, subprocess, sys
tf, err, order, worker = sys.argv[1:]
# Under a sanitizer the memory bound is not checked (below): 200 tasks prove every byte out.
tasks, nbytes = (200 if os.environ.get("TASKFARM_SANITIZE") else 1000), 262144
args = [tf, "run", "-j", "2", "--tasks", str(tasks)] + ([order] if order else []) + \
       ["--", worker, "--mode", "flood-stdout", "--at", "all", "--bytes", str(nbytes), "--slow-index", "0", "--slow-ms", "1500"]
with open(err, "wb") as e:
    p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=e)
    size = 0
    while chunk := p.stdout.read(1 << 20):
        size += len(chunk)
    rc = p.wait(timeout=50)
assert rc == 0, f"exit {rc}"
assert size == tasks * nbytes, f"{size} bytes of output"
peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child: the master
# A sanitizer's allocator (quarantine, shadow) inflates RSS: the bound means nothing there.
assert peak_mib < 128 or os.environ.get("TASKFARM_SANITIZE"), f"master peak RSS {peak_mib:.0f} MiB for {tasks * nbytes >> 20} MiB of output"
print(f"master peak RSS {peak_mib:.0f} MiB for {tasks * nbytes >> 20} MiB of output{' ' + order if order else ''}")
PY
  done
}

exit0_mid_task() {  # exit(0) in the middle of a task is that task's failure, not a clean stop
  tf run -j 2 --chunk 4 --tasks 20 --retries 1 --joblog "$W/j.tsv" -- "$HOSTILE_WORKER" --mode exit0 --at 7
  expect_rc 1
  expect_stderr "failed indices: 7"
  expect_stderr "worker exited with code 0"
  [ "$(awk -F'\t' 'NR > 2 && $1 == 7 { print $7 ":" $8 ":" $10 }' "$W/j.tsv" | tr '\n' ' ')" = "retried:0:exit failed:0:exit " ] ||
    fail "joblog rows of 7: $(awk -F'\t' 'NR > 2 && $1 == 7' "$W/j.tsv")"
}

"$@"
