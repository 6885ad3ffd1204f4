#!/usr/bin/env bash
# The exit-status table: failures counted (1-100, 101), the farm failing (3), halting, and
# SIGINT/SIGTERM (130/143) — with the summary saying what is missing, and nothing left behind.
source "$(dirname "$0")/lib.sh"
setup_workdir

failures_counted() {  # crash, exception and exit at 4 indices, no retries left: exit 4
  tf run -j 2 --chunk 3 --tasks 40 --retries 1 --output "$W/o.npy" --dtype f8 --joblog "$W/j.tsv" \
    -- "$CLI_WORKER" --crash-at 3,5 --throw-at 17 --exit-at 30
  expect_rc 4
  expect_stderr "40 tasks: 36 succeeded, 4 failed, 4 retries"
  expect_stderr "failed indices: 3, 5, 17, 30"
  expect_stderr "SIGSEGV"
  expect_stderr "told to throw at 17"
  expect_stderr "is INCOMPLETE: 4 of 40 tasks missing"
  py "
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1]), delimiter='\t')][2:]
for i in (3, 5, 17, 30):  # every attempt recorded: attempt 0 retried, attempt 1 failed
    mine = [(r[5], r[6]) for r in rows if r[0] == str(i)]
    assert mine == [('0', 'retried'), ('1', 'failed')], (i, mine)
assert sum(r[6] == 'ok' for r in rows) == 36
" "$W/j.tsv"
  expect_no_segments "$TF_PID"
  expect_gone $(joblog_pids "$W/j.tsv")
}

over_100() {
  tf run -j 2 --tasks 150 --retries 0 -- "$CLI_WORKER" --throw-all
  expect_rc 101
  expect_stderr "150 failed"
  expect_stderr "and 130 more failures"
  expect_stderr "failed indices: 0-149"
  expect_no_segments "$TF_PID"
}

incomplete_output() {  # one failure: exit 1, output kept but flagged, resume command shown
  tf run -j 2 --tasks 20 --retries 0 --output "$W/o.npy" --dtype i4 --joblog "$W/j.tsv" \
    -- "$CLI_WORKER" --throw-at 7
  expect_rc 1
  [ -f "$W/o.npy" ] || fail "output removed though 19 tasks succeeded"
  expect_stderr "o.npy is INCOMPLETE: 1 of 20 tasks missing"
  expect_stderr "failed indices: 7"
  expect_stderr "run --resume"
  expect_no_segments "$TF_PID"
}

halt_now() {  # --halt now,fail=1: stop at the first final failure
  tf run -j 1 --chunk 1 --tasks 2000 --retries 0 --halt now,fail=1 --output "$W/o.npy" --dtype f8 \
    -- "$CLI_WORKER" --crash-at 3
  expect_rc 1
  expect_stderr "halted by --halt"
  expect_stderr "INCOMPLETE"
  expect_no_segments "$TF_PID"
}

joblog_not_even_begun() {  # a joblog the file system cannot take from its first line: 102, not a usage error (h12 F8)
  # The file size limit stands in for a full disk (both are a write the file system refuses);
  # stderr goes through a pipe, which the limit does not apply to.
  (ulimit -f 0 && exec "$TASKFARM" run --tasks 3 --joblog "$W/j.tsv" -- "$CLI_WORKER" </dev/null 2>&1 >"$W/stdout") |
    cat >"$W/stderr"
  TF_RC=${PIPESTATUS[0]}
  expect_rc 102
  expect_stderr "cannot write joblog $W/j.tsv: File too large"
  [ ! -e "$W/j.tsv" ] || fail "a joblog was left at the path"
  [ -z "$(ls "$W" | grep taskfarm-)" ] || fail "a temporary file was left: $(ls "$W")"
}

farm_error() {  # a worker program that is no taskfarm worker: the farm cannot run (3)
  tf run -j 2 --tasks 10 --output "$W/o.npy" --dtype f8 -- /bin/true
  expect_rc 3
  expect_stderr "the farm could not run"
  [ ! -e "$W/o.npy" ] || fail "an output no task wrote to was left behind"
  expect_no_segments "$TF_PID"
  # Workers that die before their handshake under a memory limit: the limit is named (F18).
  tf run -j 2 --tasks 10 --mem-limit 1 -- "$CLI_WORKER"
  expect_rc 3
  expect_stderr "each worker may use at most 1 B of memory (--mem-limit, memory_limit): too little to load the program is the likely cause"
  expect_no_segments "$TF_PID"
}

# signal SIG STATUS: interrupt a run whose workers block from index 10 on.
signal() {
  local sig=$1 want=$2 done=0 line pids=()
  mkfifo "$W/ev"
  "$TASKFARM" run -j 2 --chunk 1 --tasks 40 --events --output "$W/o.npy" --dtype f8 \
    --joblog "$W/j.tsv" -- "$CLI_WORKER" --block-from 10 --spin-ms 2 >"$W/ev" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/ev"
  while [ "$done" -lt 10 ] && read -r -t 30 -u 3 line; do
    case $line in
      *'"event":"chunk"'*) done=$((done + 1)) ;;
      *'"event":"worker"'*) pids+=("$(sed -E 's/.*"pid":([0-9]+).*/\1/' <<<"$line")") ;;
    esac
  done
  [ "$done" -eq 10 ] || fail "only $done of 10 chunks committed before the deadline"
  kill "-$sig" "$TF_PID"
  cat <&3 >"$W/rest"  # until the master closes its stdout
  wait "$TF_PID"
  TF_RC=$?
  exec 3<&-
  expect_rc "$want"
  expect_stderr "interrupted by SIG$sig"
  expect_stderr "INCOMPLETE: 30 of 40 tasks missing"
  grep -q '"event":"end".*"interrupted":true' "$W/rest" || fail "no end event saying interrupted"
  expect_no_segments "$TF_PID"
  expect_gone "${pids[@]}"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' "$W/j.tsv" | wc -l)" -eq 10 ] || fail "joblog does not hold the 10 done tasks"
}

"$@"
