#!/usr/bin/env bash
# --resume: after a SIGKILLed master the joblog lists exactly the tasks in place, and the resumed
# run completes the output identically to an uninterrupted run, computing only what is missing;
# after failures it computes only those; a finished run has nothing left; and a resume that
# does not match its earlier run is refused without touching anything.
source "$(dirname "$0")/lib.sh"
setup_workdir

N=60
K=25
JOB=(-j 2 --chunk 1 --tasks "$N" --output "$W/o.npy" --dtype int32 --shape "${N}x8" --joblog "$W/j.tsv")

# ok_rows: the indices with an "ok" row in the joblog, one per line, in file order.
ok_rows() { awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/j.tsv"; }

after_sigkill() {
  # The reference: one uninterrupted run.
  tf run -j 2 --tasks "$N" --output "$W/ref.npy" --dtype int32 --shape "${N}x8" -- "$CLI_WORKER"
  expect_rc 0

  # A run whose workers block from index K on; SIGKILL its master once 0..K-1 are committed.
  local done=0 line pids=()
  mkfifo "$W/ev"
  "$TASKFARM" run "${JOB[@]}" --events -- "$CLI_WORKER" --block-from "$K" --spin-ms 2 >"$W/ev" 2>"$W/stderr" &
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
  kill -KILL "$master"
  wait "$master" 2>/dev/null  # (no "Killed" notice from the shell)
  [ $? -eq 137 ] || fail "the master was not killed"
  exec 3<&-
  wait_gone "${pids[@]}"  # workers die with their master (parent-death signal)

  # The joblog is exact: the rows of a killed master are the tasks whose results are in place.
  [ "$(ok_rows | sort -n | tr '\n' ' ')" = "$(seq 0 $((K - 1)) | tr '\n' ' ')" ] ||
    fail "joblog after SIGKILL lists $(ok_rows | tr '\n' ' ')"
  py "
import numpy as np, sys
o, ref, k = np.load(sys.argv[1]), np.load(sys.argv[2]), int(sys.argv[3])
assert (o[:k] == ref[:k]).all() and (o[k:] == 0).all()" "$W/o.npy" "$W/ref.npy" "$K"

  # What the dead master left in /dev/shm goes with clean (or a new farm's sweep).
  "$TASKFARM" clean >/dev/null || fail "clean failed"
  expect_no_segments "$master"

  tf run --resume "${JOB[@]}" -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "resumed: $K of $N tasks were done by the earlier run"
  expect_stderr "$((N - K)) tasks: $((N - K)) succeeded"
  cmp -s "$W/o.npy" "$W/ref.npy" || fail "the resumed output differs from an uninterrupted run"
  [ "$(ok_rows | sort -n | tr '\n' ' ')" = "$(seq 0 $((N - 1)) | tr '\n' ' ')" ] ||
    fail "after resume, not exactly one ok row per task"
  expect_no_segments "$TF_PID"
  expect_gone $(joblog_pids "$W/j.tsv")
}

after_failures() {
  tf run "${JOB[@]}" --retries 0 -- "$CLI_WORKER" --crash-at 10 --throw-at 20
  expect_rc 2
  # --dtype and --shape may be left out: the existing output says them.
  tf run --resume -j 2 --tasks "$N" --output "$W/o.npy" --joblog "$W/j.tsv" -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "2 tasks: 2 succeeded"
  expect_stderr "resumed: 58 of 60"
  py "
import numpy as np, sys
o = np.load(sys.argv[1])
k = np.arange(o.size, dtype=np.int64).reshape(o.shape)
assert (o == $VALUE_EXPR).all()" "$W/o.npy"
  [ "$(ok_rows | sort -n | uniq -d)" = "" ] || fail "a task was computed twice"
}

nothing_left() {
  tf run "${JOB[@]}" -- "$CLI_WORKER"
  expect_rc 0
  cp "$W/o.npy" "$W/before.npy"
  tf run "${JOB[@]}" --resume -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "nothing to resume"
  cmp -s "$W/o.npy" "$W/before.npy" || fail "output changed"
  tf run "${JOB[@]}" --resume --events -- "$CLI_WORKER"
  expect_rc 0
  py "
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert [e['event'] for e in ev] == ['start', 'end'] and ev[0]['already_done'] == 60, ev" "$W/stdout"
}

# mismatch MESSAGE ARGS...: a resume that does not match the earlier run: exit 2, output untouched.
refused() {
  local message=$1
  shift
  tf run --resume "$@" -- "$CLI_WORKER"
  expect_rc 2
  expect_stderr "$message"
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "more than one line on stderr"
  cmp -s "$W/o.npy" "$W/before.npy" || fail "a refused resume changed the output"
  expect_no_segments "$TF_PID"
}

mismatches() {
  tf run "${JOB[@]}" --retries 0 -- "$CLI_WORKER" --crash-at 3
  expect_rc 1
  cp "$W/o.npy" "$W/before.npy"
  refused "holds int32 60x8, not int32 60x9" -j 2 --tasks "$N" --output "$W/o.npy" --dtype int32 --shape "${N}x9" --joblog "$W/j.tsv"
  refused "holds int32 60x8, not float32 60x8" -j 2 --tasks "$N" --output "$W/o.npy" --dtype float32 --shape "${N}x8" --joblog "$W/j.tsv"
  refused "had index space 60, this run 61" -j 2 --tasks 61 --output "$W/o.npy" --dtype int32 --shape "${N}x8" --joblog "$W/j.tsv"
  # Its header edited to another index space: that is said, not a row outside it (F18).
  sed '1s/extent=60/extent=30/' "$W/j.tsv" >"$W/j30.tsv"
  refused "had index space 30, this run 60" -j 2 --tasks "$N" --output "$W/o.npy" --dtype int32 --shape "${N}x8" --joblog "$W/j30.tsv"
  cp "$W/o.npy" "$W/other.npy"
  refused "wrote '$W/o.npy', this run '$W/other.npy'" -j 2 --tasks "$N" --output "$W/other.npy" --dtype int32 --shape "${N}x8" --joblog "$W/j.tsv"
  refused "needs the --joblog" "${JOB[@]:0:12}"
  refused "no earlier run" -j 2 --tasks "$N" --output "$W/o.npy" --dtype int32 --shape "${N}x8" --joblog "$W/none.tsv"
  mv "$W/o.npy" "$W/moved.npy"
  tf run --resume "${JOB[@]}" -- "$CLI_WORKER"
  expect_rc 2
  expect_stderr "does not exist"
  [ ! -e "$W/o.npy" ] || fail "a refused resume created the output"
}

keep_order_after_sigkill() {  # -k: a result held for order is logged once printed; --resume prints it (F9)
  local job=(-k -j 2 --chunk 1 --tasks 6 --joblog "$W/k.tsv" --events)
  kill_while_held "2 3 4 5" "${job[@]}" -- "$CLI_WORKER" --print --block-at 0
  [ -z "$(awk -F'\t' 'NR > 2 && $7 == "ok"' "$W/k.tsv")" ] || fail "joblog says done what was never printed: $(cat "$W/k.tsv")"
  tf run --resume "${job[@]}" -- "$CLI_WORKER" --print </dev/null
  expect_rc 0
  expect_outputs_once 'task 0\ntask 1\ntask 2\ntask 3\ntask 4\ntask 5\n' "$W/events.killed" "$W/stdout"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/k.tsv" | sort -n | tr '\n' ' ')" = "0 1 2 3 4 5 " ] ||
    fail "not every task ok exactly once: $(cat "$W/k.tsv")"
  # Printed to stdout (not as events), every row still comes, once its output is out.
  tf run -k -j 2 --chunk 1 --tasks 6 --joblog "$W/p.tsv" -- "$CLI_WORKER" --print </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'task %d\n' 0 1 2 3 4 5)" ] || fail "stdout: $(cat "$W/stdout")"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/p.tsv" | sort -n | tr '\n' ' ')" = "0 1 2 3 4 5 " ] ||
    fail "printed tasks missing from the joblog: $(cat "$W/p.tsv")"
}

"$@"
