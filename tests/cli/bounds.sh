#!/usr/bin/env bash
# Rule 4 through the binary: bad input is refused up front and bounded resources stay bounded.
# A resume of 10^11 tasks holds its joblog's done ranges, not a bit per task; joblog headers of
# 2^64 - 1 tasks (handled) or of 2^64 and more (refused); an endless --input-lines producer is
# refused at a limit, the producer not left hanging; out of memory is a message, not an abort;
# no exception reaches main (a removed working directory); -j far beyond the CPUs.
source "$(dirname "$0")/lib.sh"
setup_workdir

HEADER_COLUMNS=$'index\tslot\tpid\tstart\truntime\tattempt\toutcome\texit_code\tsignal\tcause'

# joblog FILE EXTENT INDEX...: a joblog of an earlier run with index space EXTENT (no output)
# and an "ok" row for each INDEX.
joblog() {
  local file=$1 extent=$2 i
  shift 2
  printf '# taskfarm joblog 1\textent=%s\toutput=\tdtype=\tshape=\n%s\n' "$extent" "$HEADER_COLUMNS" >"$file"
  for i in "$@"; do printf '%s\t0\t1\t1.000\t0.000100\t0\tok\t0\t0\t-\n' "$i" >>"$file"; done
}

# Runs taskfarm ARGS under an address-space limit of $1 KiB (ulimit -v), else like tf. A
# sanitizer build's runtime reserves terabytes of address space, so there it runs unlimited
# (the plain build proves the bound).
tf_limited() {
  local kib=$1
  shift
  [ -z "${TASKFARM_SANITIZE:-}" ] || kib=unlimited
  (ulimit -v "$kib" && exec "$TASKFARM" "$@") <&0 >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  wait "$TF_PID"
  TF_RC=$?
}

expect_one_line() { [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "stderr is not one line"; }

# The start event's field $1.
start_field() { "$PYTHON" -c "import json,sys; print(json.loads(open(sys.argv[1]).readline())[sys.argv[2]])" "$W/stdout" "$1"; }

resume_huge_index_space() {
  # 10^11 tasks, 20 done in two runs of ten: the resume plans from ranges, in 1 GiB of address
  # space (a bit per task would be 12.5 GB), runs index 10 first, which throws, and halts.
  joblog "$W/j.tsv" 100000000000 9 8 7 6 5 4 3 2 1 0 50 51 52 53 54 55 56 57 58 59
  tf_limited 1048576 run --resume --joblog "$W/j.tsv" --tasks 100000000000 -j 1 --chunk 1 \
    --retries 0 --halt now --events -- "$CLI_WORKER" --throw-at 10
  expect_rc 1
  expect_stderr "failed indices: 10"
  [ "$(start_field tasks)" = 99999999980 ] || fail "start event: $(head -1 "$W/stdout")"
  [ "$(start_field already_done)" = 20 ] || fail "start event: $(head -1 "$W/stdout")"
  expect_stderr "resumed: 20 of 100000000000 tasks were done by the earlier run"
  [ "$(awk -F'\t' 'NR > 22 { print $1; exit }' "$W/j.tsv")" = 10 ] || fail "the first task run was not index 10"
  expect_no_segments "$TF_PID"
}

resume_largest_index_space() {
  # 2^64 - 1 tasks is the largest index space there is: the same job resumes from it...
  joblog "$W/j.tsv" 18446744073709551615 0 1 2
  tf_limited 1048576 run --resume --joblog "$W/j.tsv" --tasks 18446744073709551615 -j 1 --chunk 1 \
    --retries 0 --halt now --events -- "$CLI_WORKER" --throw-at 3
  expect_rc 1
  expect_stderr "failed indices: 3"
  [ "$(start_field tasks)" = 18446744073709551612 ] || fail "start event: $(head -1 "$W/stdout")"
  # ... another job is told which index space the joblog holds ...
  tf run --resume --joblog "$W/j.tsv" --tasks 10 -- "$CLI_WORKER"
  expect_rc 2
  expect_one_line
  expect_stderr "had index space 18446744073709551615, this run 10"
  # ... and 2^64 tasks or more are no joblog of taskfarm's.
  joblog "$W/j.tsv" 4294967296x4294967296 0
  tf run --resume --joblog "$W/j.tsv" --tasks 10 -- "$CLI_WORKER"
  expect_rc 2
  expect_one_line
  expect_stderr "index space 4294967296x4294967296 has 2^64 tasks or more"
  expect_no_segments "$TF_PID"
}

# Runs `yes | taskfarm ARGS` within 20 s; sets TF_RC, TF_PID and PRODUCER_RC.
endless_input() {
  mkfifo "$W/lines"
  yes >"$W/lines" &
  local producer=$!
  BG+=("$producer")
  "$TASKFARM" "$@" <"$W/lines" >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  wait_gone "$TF_PID"   # the deadline: fails if taskfarm is still reading
  wait "$TF_PID"
  TF_RC=$?
  wait_gone "$producer"  # the producer is not left blocked on a full pipe
  wait "$producer"
  PRODUCER_RC=$?
  rm -f "$W/lines"
}

input_lines_endless_producer() {
  endless_input run --input-lines - --input-lines-max 1M -- "$CLI_WORKER"
  expect_rc 2
  expect_one_line
  expect_stderr "--input-lines: standard input holds more than 1.0 MiB of lines"
  [ "$PRODUCER_RC" -eq 141 ] || fail "the producer ended with $PRODUCER_RC, not SIGPIPE"
  expect_no_segments "$TF_PID"
}

input_lines_out_of_memory() {
  # Without --input-lines-max the limit is /dev/shm's free space; memory running out first is
  # a message and exit 2, not std::bad_alloc's abort.
  [ -z "${TASKFARM_SANITIZE:-}" ] || { echo "SKIP: needs ulimit -v, which a sanitizer runtime cannot run under"; exit 77; }
  mkfifo "$W/lines"
  yes >"$W/lines" &
  local producer=$!
  BG+=("$producer")
  tf_limited 400000 run --input-lines - -- "$CLI_WORKER" <"$W/lines"
  wait "$producer"
  expect_rc 2
  expect_one_line
  expect_stderr "--input-lines: standard input does not fit in memory"
  expect_no_segments "$TF_PID"
}

removed_working_directory() {
  # Resolving --output's directory fails when the working directory is gone: a message, not a
  # std::filesystem_error reaching main.
  mkdir "$W/gone"
  (cd "$W/gone" && rmdir "$W/gone" && exec "$TASKFARM" run --tasks 3 --output o.npy --dtype f8 -- "$CLI_WORKER") \
    >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 2
  expect_one_line
  expect_stderr "--output: cannot resolve directory '.' of 'o.npy'"
  expect_no_segments "$TF_PID"
}

workers_beyond_the_cpus() {
  # On one CPU (taskset): 9 workers are a warning, more than 256 are refused; a -j above the
  # task count is judged by the workers that will run (at most one per task).
  command -v taskset >/dev/null || fail "taskset is missing"
  tf_on_one_cpu() {
    taskset -c 0 "$TASKFARM" "$@" >"$W/stdout" 2>"$W/stderr" &
    TF_PID=$!
    wait "$TF_PID"
    TF_RC=$?
  }
  tf_on_one_cpu run -j 9 --tasks 20 -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "taskfarm: warning: 9 workers on 1 usable CPU (--workers 9)"
  tf_on_one_cpu run -j 8 --tasks 20 -- "$CLI_WORKER"
  expect_rc 0
  grep -q warning "$W/stderr" && fail "warned about 8 workers on 1 CPU"
  tf_on_one_cpu run -j 100000 --tasks 1000000 --output "$W/o.npy" --dtype u1 -- "$CLI_WORKER"
  expect_rc 2
  expect_one_line
  expect_stderr "--workers: '100000' would run 100000 workers on 1 usable CPU: at most 256 per CPU"
  [ ! -e "$W/o.npy" ] || fail "a refused run created its output"
  expect_no_segments "$TF_PID"
  tf_on_one_cpu run -j 20 --tasks 3 -- "$CLI_WORKER"
  expect_rc 0
  grep -q warning "$W/stderr" && fail "warned about workers that will not run"
  return 0
}

"$@"
