#!/usr/bin/env bash
# Successful runs through the binary: the output array equals the serial result, task stdout
# (ordered, from a pipe, never torn), and the joblog, trace and events parse.
source "$(dirname "$0")/lib.sh"
setup_workdir

# expect_npy FILE DTYPE SHAPE: FILE holds value(k) for every flat element k.
expect_npy() {
  py "
import sys, numpy as np
a = np.load(sys.argv[1])
shape = tuple(int(x) for x in sys.argv[3].split('x'))
assert a.dtype == np.dtype(sys.argv[2]), (a.dtype, sys.argv[2])
assert a.shape == shape, (a.shape, shape)
k = np.arange(a.size, dtype=np.int64).reshape(shape)
want = $VALUE_EXPR
if a.dtype == np.uint8: want = want % 251
assert (a == want.astype(a.dtype)).all(), 'output differs from the serial result'
" "$@"
}

# A clean end: no segment of the master, every worker gone.
expect_clean_end() {
  expect_no_segments "$TF_PID"
  [ -f "$W/j.tsv" ] && expect_gone $(joblog_pids "$W/j.tsv")
  return 0
}

tasks_rows() {  # --tasks N with an NxM output: a row per task (the mandelbrot command line)
  tf run -j 2 --tasks 50 --output "$W/m.npy" --dtype int32 --shape 50x30 --joblog "$W/j.tsv" -- "$CLI_WORKER"
  expect_rc 0
  expect_npy "$W/m.npy" int32 50x30
  [ ! -s "$W/stdout" ] || fail "unexpected stdout"
  expect_stderr "50 tasks: 50 succeeded, 0 failed"
  expect_clean_end
}

shape_index_space() {  # --shape alone: nested loops, and an element per task
  tf run -j 2 --shape 7x9x4 --chunk 5 --output "$W/s.npy" --dtype float64 --joblog "$W/j.tsv" -- "$CLI_WORKER"
  expect_rc 0
  expect_npy "$W/s.npy" float64 7x9x4
  expect_stderr "252 tasks: 252 succeeded"
  expect_clean_end
}

every_dtype() {  # one NumPy start checks every file: 24 of them took most of the test's time
  local t
  local -a dtypes=(uint8 uint16 int32 int64 float32 float64 u1 u2 i4 i8 f4 f8)
  for t in "${dtypes[@]}"; do
    tf run -j 2 --tasks 300 --output "$W/$t.npy" --dtype "$t" -- "$CLI_WORKER"
    expect_rc 0
    expect_no_segments "$TF_PID"
  done
  py "
import sys, numpy as np
for t in sys.argv[2:]:
    a = np.load(sys.argv[1] + '/' + t + '.npy')
    assert a.dtype == np.dtype(t) and a.shape == (300,), (t, a.dtype, a.shape)
    k = np.arange(300, dtype=np.int64)
    want = $VALUE_EXPR
    if a.dtype == np.uint8: want = want % 251
    assert (a == want.astype(a.dtype)).all(), t + ': output differs from the serial result'
" "$W" "${dtypes[@]}"
}

input_array() {  # --input maps an existing array read-only into every worker
  py "import numpy as np, sys; np.save(sys.argv[1], np.random.default_rng(1).random((40, 5)))" "$W/in.npy"
  cp "$W/in.npy" "$W/in-before.npy"
  tf run -j 2 --tasks 40 --input "$W/in.npy" --output "$W/out.npy" --dtype float64 --shape 40x5 \
    -- "$CLI_WORKER" --from-input
  expect_rc 0
  py "
import numpy as np, sys
assert (np.load(sys.argv[2]) == 2 * np.load(sys.argv[1])).all()" "$W/in.npy" "$W/out.npy"
  cmp -s "$W/in.npy" "$W/in-before.npy" || fail "--input was modified"
  expect_no_segments "$TF_PID"
}

keep_order() {
  tf run -j 2 --chunk 3 --tasks 500 --keep-order -- "$CLI_WORKER" --print
  expect_rc 0
  seq 0 499 | sed 's/^/task /' > "$W/want"
  cmp -s "$W/stdout" "$W/want" || fail "--keep-order output is not in task order"
  expect_no_segments "$TF_PID"
}

input_lines_from_pipe() {
  shopt -s lastpipe  # the pipeline's last command, tf, runs in this shell and sets TF_RC
  printf 'alpha\nbeta gamma\n\ndelta\nlast line without newline' \
    | tf run -j 2 --input-lines - --keep-order -- "$CLI_WORKER" --print
  expect_rc 0
  printf '0: alpha\n1: beta gamma\n2: \n3: delta\n4: last line without newline\n' > "$W/want"
  cmp -s "$W/stdout" "$W/want" || fail "lines: $(cat "$W/stdout")"
  expect_stderr "5 tasks: 5 succeeded"
  expect_no_segments "$TF_PID"
}

unordered_whole_lines() {  # without --keep-order: as tasks complete, every line whole
  tf run -j 2 --chunk 7 --tasks 3000 -- "$CLI_WORKER" --print
  expect_rc 0
  grep -vxE 'task [0-9]+' "$W/stdout" && fail "a torn or foreign line"
  sort -n -k2 "$W/stdout" > "$W/got"
  seq 0 2999 | sed 's/^/task /' > "$W/want"
  cmp -s "$W/got" "$W/want" || fail "lines missing or repeated"
}

joblog_and_trace() {
  tf run -j 2 --chunk 5 --tasks 100 --output "$W/o.npy" --dtype f8 --joblog "$W/j.tsv" \
    --trace "$W/t.json" -- "$CLI_WORKER"
  expect_rc 0
  py "
import json, sys, csv
rows = list(csv.reader(open(sys.argv[1]), delimiter='\t'))
assert rows[0][0].startswith('# taskfarm joblog 1'), rows[0]
assert rows[1] == 'index slot pid start runtime attempt outcome exit_code signal cause'.split(), rows[1]
body = rows[2:]
assert all(len(r) == 10 for r in body)
assert sorted(int(r[0]) for r in body) == list(range(100)), 'one row per task'
assert all(r[6] == 'ok' and r[9] == '-' and float(r[4]) >= 0 for r in body)
assert {int(r[1]) for r in body} <= {0, 1}

events = json.load(open(sys.argv[2]))
slices = [e for e in events if e.get('ph') == 'X' and e.get('cat') == 'chunk']
assert len(slices) == 20, f'{len(slices)} slices for 20 chunks'
covered = sorted(i for s in slices for i in range(s['args']['begin'], s['args']['end']))
assert covered == list(range(100)), 'each task in exactly one slice'
assert all(s['args']['end'] - s['args']['begin'] == 5 and s['dur'] >= 0 for s in slices)
tracks = {e['tid'] for e in events if e.get('name') == 'thread_name'}
assert {s['tid'] for s in slices} <= tracks, 'every slice on a named worker track'
for tid in tracks:  # a worker runs one chunk at a time: its slices do not overlap
    mine = sorted((s['ts'], s['ts'] + s['dur']) for s in slices if s['tid'] == tid)
    assert all(a[1] <= b[0] + 1e-3 for a, b in zip(mine, mine[1:])), 'overlapping slices'
" "$W/j.tsv" "$W/t.json"
  expect_clean_end
}

events() {
  tf run -j 2 --chunk 4 --tasks 20 --events -- "$CLI_WORKER" --print
  expect_rc 0
  py "
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]['event'] == 'start' and ev[0]['tasks'] == 20, ev[0]
assert ev[-1]['event'] == 'end' and ev[-1]['exit'] == 0 and ev[-1]['succeeded'] == 20, ev[-1]
out = sorted((e['index'], e['text']) for e in ev if e['event'] == 'output')
assert out == [(i, f'task {i}\n') for i in range(20)], out
chunks = sorted((e['begin'], e['end']) for e in ev if e['event'] == 'chunk')
assert chunks == [(b, b + 4) for b in range(0, 20, 4)], chunks
assert any(e['event'] == 'worker' for e in ev)
" "$W/stdout"
}

worker_prints_outside_tasks() {  # a worker program's prints before run_worker go to stderr, not among the tasks' (h12b N14)
  local worker=(sh -c 'echo BANNER; exec "$0" --print' "$CLI_WORKER")
  tf run --tasks 4 -j 2 -k -- "${worker[@]}" </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'task 0\ntask 1\ntask 2\ntask 3')" ] || fail "stdout: $(cat "$W/stdout")"
  expect_stderr BANNER
  tf run --tasks 4 -j 2 --events -- "${worker[@]}" </dev/null
  expect_rc 0
  py "
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[-1]['event'] == 'end' and ev[-1]['succeeded'] == 4, ev[-1]
" "$W/stdout"
}

file_size_limit_named() {  # ulimit -f applies to /dev/shm segments: said, not only "File too large" (h12b N11)
  (ulimit -f 0 && exec "$TASKFARM" run --exec --tasks 2 -- true) </dev/null 2>&1 | cat >"$W/stderr"
  TF_RC=${PIPESTATUS[0]}
  expect_rc 3
  expect_stderr "past the file size limit (ulimit -f), which applies to /dev/shm too"
}

resume_hint_is_terminal_safe() {  # the resume hint quotes a C1 control or a non-UTF-8 byte as $'\xHH' (h13b N10)
  tf run --exec --joblog "$W/j.tsv" -- sh -c 'exit 3' $'a\x9b31mb' ::: $'c\xc2\x9bd' </dev/null
  expect_rc 1
  expect_stderr "to run only the missing tasks: taskfarm run --resume --exec --joblog $W/j.tsv -- sh -c 'exit 3' \$'a\\x9b31mb' ::: \$'c\\xc2\\x9bd'"
}

retried_crash() {  # a worker crash on the first attempt of index 5: retried, recorded, exit 0
  tf run -j 2 --chunk 2 --tasks 30 --output "$W/r.npy" --dtype int64 --joblog "$W/j.tsv" \
    --trace "$W/t.json" -- "$CLI_WORKER" --crash-once-at 5 --marker-dir "$W"
  expect_rc 0
  expect_npy "$W/r.npy" int64 30
  expect_stderr "1 retry"
  py "
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1]), delimiter='\t')][2:]
five = [r for r in rows if r[0] == '5']
assert [r[6] for r in five] == ['retried', 'ok'], five
assert five[0][7:] == ['0', '11', 'signal'] and five[0][5] == '0' and five[1][5] == '1', five
" "$W/j.tsv"
  py "
import json, sys
events = json.load(open(sys.argv[1]))
crashed = [e for e in events if e.get('ph') == 'X' and e['args'].get('outcome') == 'crashed']
assert len(crashed) == 1 and crashed[0]['args']['index'] == 5 and crashed[0]['args']['begin'] <= 5, crashed
marks = [e for e in events if e.get('ph') == 'i' and e['name'] == 'crash: SIGSEGV at 5']
assert len(marks) == 1 and marks[0]['tid'] == crashed[0]['tid'], marks
" "$W/t.json"
  expect_clean_end
}

progress_lines() {  # --progress where stderr is no terminal: plain lines; by default: none
  tf run -j 2 --tasks 50 --progress -- "$CLI_WORKER"
  expect_rc 0
  expect_stderr "taskfarm: 50/50 100%"
  tf run -j 2 --tasks 50 -- "$CLI_WORKER"
  expect_rc 0
  grep -q "100%" "$W/stderr" && fail "progress shown though stderr is no terminal"
  return 0
}

"$@"
