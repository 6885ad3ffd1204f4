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

workers_capped_at_tasks() {  # -j far above the task count starts one worker per task
  tf run -j 200 --tasks 3 --events -- "$CLI_WORKER"
  expect_rc 0
  [ "$(grep -c '"event":"worker"' "$W/stdout")" -eq 3 ] || fail "$(grep -c '"event":"worker"' "$W/stdout") workers started for 3 tasks"
  expect_no_segments "$TF_PID"
}

# worker_pids: the pids of the "worker" events in $W/stdout.
worker_pids() { sed -nE 's/.*"event":"worker".*"pid":([0-9]+).*/\1/p' "$W/stdout"; }

not_a_worker_program() {  # `-- sleep 100` waited forever, --timeout or not; `-- true` is no worker either
  local t0=$SECONDS
  tf run -j 2 --tasks 3 --timeout 2s --events -- sleep 100
  expect_rc 3
  expect_stderr "sleep did not start the taskfarm protocol within 5 s — is it a worker program (does it call run_worker)?"
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

"$@"
