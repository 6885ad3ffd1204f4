#!/usr/bin/env bash
# taskfarm run --mpi: what rank 0 writes for the whole run, under mpirun -n 2. Rank 0's workers
# wait at their first task until rank 1 holds one (a marker file), so both ranks run tasks.
#   events-trace: --events and --trace: one stream on rank 0's stdout ("start" first, "end" last
#     with every node's counts; every other line names its rank and host; each task in exactly
#     one "chunk"; rank 1's killed worker a "failure" of rank 1), one trace (a process per rank,
#     each task in exactly one "ok" slice, the crash a "crashed" slice of process 1); the joblog
#     that was there (not ours) replaced, since tasks ended.
#   exec: --exec with `:::: FILE ::: x y` across both ranks: every command's output once, whole;
#     the joblog records each task's inputs and node, and a --resume with a changed FILE is refused.
#     One command exits 3 and one is killed by SIGSEGV: exit 2, and rank 0 names both failed
#     tasks in the words one machine uses for the same run, each with the rank and host it ran on.
#   keep-order: -k, commands as in exec but reading standard input (mpirun gives it to rank 0,
#     which copies it to rank 1; task 7 prints 200 KB: several texts on their way), then a
#     worker program whose rank-1 worker is killed once: rank 0 prints every task's output once,
#     in task order, and the joblog records every task ok.
#   joblog-kept: workers that die at start (no task ends): the --joblog and --trace that were
#     there are untouched, as on one machine, no temporary file is left, and the new --output
#     rank 0 made is removed (no task wrote to it; a next run must not find it in the way).
#   input-differs: rank 1 reads another file under the same name: rank 0 refuses to start.
#   spool-full: --exec, rank 1's --tmpdir a 64 KiB tmpfs (its own user and mount namespace) that
#     its first task's output fills: that node stops, as one machine would, and rank 0 exits
#     102 (not 3, "could not run") counting the tasks not run; the joblog has no row of them.
#   input: --input under --mpi (WORKER is cli_worker --from-input): every node's workers read
#     it, the output equals the single-machine run's. Then, on one rank with one worker (so that
#     no worker attaches the output after the header was written over: it could not parse it),
#     task 3 writes over the output's .npy header: its node master writes it back, and rank 0
#     says so and exits 103.
#   halt: --halt now,fail=1 and index 20 segfaults: the node where it failed halts, and rank 0
#     hands out no more ranges (the other node finishes what it holds): exit 1, the tasks not run
#     counted and said to be --halt's, and the output said to be INCOMPLETE, as on one machine.
#   joblog-full: rank 0's --joblog on an 8 KiB tmpfs (its own namespaces): the first failed write
#     stops the hand-out, as one machine stops its run — exit 102, tasks not run, counted.
# All: no process left in this test's session, no segment left.
#   mpi_records.sh MODE TASKFARM FAULT_WORKER WORKDIR
set -euo pipefail
mode=$1 taskfarm=$2 worker=$3 dir=$4
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
export LSAN_OPTIONS="suppressions=$(dirname "$(readlink -f "$0")")/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
py=/usr/bin/python3
fail() { echo "$*" >&2; exit 1; }
source "$(dirname "$(readlink -f "$0")")/leftovers.sh"
cat >by_rank.sh <<WRAP
#!/bin/sh
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "$worker" --fault kill-once --marker-dir "$dir"; fi
exec "$worker" --fault gate --marker-dir "$dir"
WRAP
cat >gate.sh <<WRAP
#!/bin/sh
# rank 1's commands open the gate; rank 0's wait for it (a bounded poll, at most 20 s)
if [ "\$OMPI_COMM_WORLD_RANK" = 1 ]; then : >"$dir/killed"; fi
n=0; while [ ! -e "$dir/killed" ] && [ \$n -lt 2000 ]; do sleep 0.01; n=\$((n + 1)); done
echo "\$1 \$2"
WRAP
chmod +x by_rank.sh gate.sh

# mpirun in a session of its own: whatever is left in it once mpirun returned (and orphans had
# 10 s to be gone) leaked.
mpi() {  # mpi OUT mpirun-arguments... (on $RANKS ranks, 2 unless set)
  local out=$1
  shift
  set +e
  setsid --wait bash -c '
    out=$1
    shift
    mpirun --oversubscribe --allow-run-as-root -n '"${RANKS:-2}"' "$@" >"$out.out" 2>"$out.err"
    rc=$?
    sid=$(ps -o sid= -p $$)
    # (mpirun that ends the job on a non-zero exit does not reap a rank that was exiting too:
    # init does, soon; a bounded poll for that, as in mpi_faults.sh, not a synchronisation)
    for _ in $(seq 1000); do
      left=$(ps -e -o sid=,pid=,ppid=,comm= | awk -v s="$sid" -v me=$$ "\$1 == s && \$2 != me && \$3 != me && \$4 != \"ps\" && \$4 != \"awk\"")
      [ -z "$left" ] && break
      sleep 0.01
    done
    [ -z "$left" ] || { echo "left running after mpirun: $left" >&2; exit 90; }
    exit $rc' bash "$out" "$@"
  rc=$?
  set -e
  cat "$out.err" >&2
}

# small_tmpfs_for_rank RANK SIZE WRAPPER: WRAPPER runs its command as is, but on rank RANK in a
# user+mount namespace of its own with a SIZE tmpfs at $dir/small (a full disk for that rank
# alone); exits 77 (skipped) where user namespaces are not allowed.
small_tmpfs_for_rank() {
  unshare -rm true 2>/dev/null || { echo "no user namespaces here: skipped"; exit 77; }
  mkdir small
  printf '#!/bin/sh\nif [ "$OMPI_COMM_WORLD_RANK" = %s ]; then\n  exec unshare -rm sh -c %s sh "%s" "$@"\nfi\nexec "$@"\n' \
    "$1" "'mount -t tmpfs -o size=$2 taskfarm-test \"\$1\" || exit 77; shift; exec \"\$@\"'" "$dir/small" >"$3"
  chmod +x "$3"
  # (that rank in another user namespace: no CMA between the ranks, and Open MPI would warn so)
  export OMPI_MCA_btl_vader_single_copy_mechanism=none
}

case $mode in
events-trace)
  printf 'not a taskfarm joblog\n' >j.tsv
  mpi run "$taskfarm" run --mpi -j 2 --tasks 40 --events --trace t.json --joblog j.tsv -- ./by_rank.sh
  [ $rc -eq 0 ] || fail "exit $rc"
  $py - run.out t.json <<'PY' || fail "events or trace wrong"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
assert ev[0]["event"] == "start" and ev[0]["tasks"] == 40 and ev[0]["workers"] == 4, ev[0]
end = ev[-1]
assert end["event"] == "end" and (end["succeeded"], end["failed"], end["retries"], end["worker_deaths"], end["exit"]) == (40, 0, 1, 1, 0), end
mid = ev[1:-1]
assert all(e["rank"] in (0, 1) and e["host"] for e in mid), "a line without its rank and host"
done = [i for e in mid if e["event"] == "chunk" for i in range(e["begin"], e["end"])]
assert sorted(done) == list(range(40)), "not every task in exactly one chunk event"
assert {e["rank"] for e in mid if e["event"] == "chunk"} == {0, 1}, "not both ranks ran chunks"
fails = [e for e in mid if e["event"] == "failure" and e["rank"] == 1]
assert fails, "no failure of rank 1"
assert all(e["pid"] > 0 and e["cause"] == "signal" and "index" in e and e["description"] for e in fails), fails
tr = json.load(open(sys.argv[2]))
names = {r["pid"] for r in tr if r["name"] == "process_name"}
assert names == {0, 1}, names
ok = [r for r in tr if r.get("cat") == "chunk" and r["args"]["outcome"] == "ok"]
assert sorted(i for r in ok for i in range(r["args"]["begin"], r["args"]["end"])) == list(range(40)), "trace: tasks"
assert {r["pid"] for r in ok} == {0, 1}, "trace: not a process per rank"
assert any(r.get("cat") == "chunk" and r["args"]["outcome"] == "crashed" and r["pid"] == 1 for r in tr), "trace: no crash on 1"
PY
  head -1 j.tsv | grep -q '^# taskfarm joblog' || fail "the joblog there was not replaced"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' j.tsv | cut -f1 | sort -u | wc -l)" -eq 40 ] || fail "not 40 ok rows"
  ;;
exec)
  seq 1 15 >in.txt
  cat >fail.sh <<'WRAP'
#!/bin/sh
# task "4 y" (index 7) exits 3, "9 x" (index 16) is killed by a signal; the others are gate.sh's
[ "$1 $2" = "4 y" ] && exit 3
[ "$1 $2" = "9 x" ] && { ulimit -c 0; kill -SEGV $$; }
exec ./gate.sh "$@"
WRAP
  chmod +x fail.sh
  mpi run "$taskfarm" run --mpi -j 2 --exec --joblog j.tsv -- ./fail.sh {1} {2} :::: in.txt ::: x y
  [ $rc -eq 2 ] || fail "two failed tasks: exit $rc, not 2"
  diff <(sort run.out) <(for i in $(seq 1 15); do echo "$i x"; echo "$i y"; done | grep -v -e '^4 y$' -e '^9 x$' | sort) ||
    fail "the commands' output differs"
  grep -q "^taskfarm: failure: index 7 (attempt 0, slot [0-9]*, pid [0-9]*) on rank [01] ([^)]*): command exited with code 3: ./fail.sh 4 y$" run.err ||
    fail "rank 0 does not name the task that exited 3"
  grep -q "^taskfarm: failure: index 16 (attempt 0, slot [0-9]*, pid [0-9]*) on rank [01] ([^)]*): command killed by SIGSEGV: ./fail.sh 9 x$" run.err ||
    fail "rank 0 does not name the task killed by a signal"
  # The same words as one machine's for the same run (slots and pids aside; `killed` is there now:
  # gate.sh does not wait).
  set +e
  "$taskfarm" run -j 2 --exec -- ./fail.sh {1} {2} :::: in.txt ::: x y >one.out 2>one.err
  [ $? -eq 2 ] || fail "one machine: not exit 2"
  set -e
  named() { grep -E '^taskfarm: (failure|failed)' "$1" | sed -E 's/ on rank [01] \([^)]*\)//; s/slot [0-9]+, pid [0-9]+/slot S, pid P/' | sort; }
  [ "$(named run.err | wc -l)" -eq 4 ] || fail "not two failures, the failed indices and the retry note at rank 0"
  diff <(named one.err) <(named run.err) || fail "rank 0 does not name the failed tasks as one machine does"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' j.tsv | cut -f12 | sed 's/.*://' | sort -u | tr -d '\n')" = 01 ] ||
    fail "not both ranks in the joblog"
  # Each row records its task's inputs, then its node: a resume with other inputs is refused.
  [ "$(sed -n 2p j.tsv | cut -f11,12)" = "$(printf 'inputs\thost')" ] || fail "no inputs and host columns"
  sed -i 's/^7$/seven/' in.txt
  mpi resume "$taskfarm" run --mpi -j 2 --exec --joblog j.tsv --resume -- ./gate.sh {1} {2} :::: in.txt ::: x y
  [ $rc -eq 2 ] || fail "a resume with other inputs: exit $rc, not 2"
  grep -q "was written for other inputs: task Seq 1[34] " resume.err || fail "no message naming the first changed task"
  ;;
keep-order)
  seq 1 15 >in.txt
  cat >big.sh <<'WRAP'
#!/bin/sh
[ "$1" = 7 ] && head -c 200000 /dev/zero | tr '\0' a && echo
exec ./gate.sh "$@"
WRAP
  chmod +x big.sh
  mpi run "$taskfarm" run --mpi -j 2 --exec -k --joblog j.tsv -- ./big.sh {1} {2} :::: - ::: x y <in.txt
  [ $rc -eq 0 ] || fail "exit $rc"
  cmp run.out <(for i in $(seq 1 15); do
    if [ $i = 7 ]; then for v in x y; do head -c 200000 /dev/zero | tr '\0' a; echo; echo "$i $v"; done
    else echo "$i x"; echo "$i y"; fi; done) || fail "-k: the commands' output is not whole and in task order"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' j.tsv | cut -f1 | sort -u | wc -l)" -eq 30 ] || fail "not 30 ok rows"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' j.tsv | cut -f12 | sed 's/.*://' | sort -u | tr -d '\n')" = 01 ] ||
    fail "not both ranks in the joblog"
  printf '#!/bin/sh\nif [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then exec "%s" --print --fault kill-once --marker-dir "%s"; fi\nexec "%s" --print --fault gate --marker-dir "%s"\n' \
    "$worker" "$dir" "$worker" "$dir" >printing.sh && chmod +x printing.sh && rm -f killed
  mpi program "$taskfarm" run --mpi -j 2 -k --tasks 300 -- ./printing.sh
  [ $rc -eq 0 ] || fail "exit $rc"
  cmp program.out <(seq 0 299 | sed 's/^/task /') || fail "-k: a worker program's output is not once each, in task order"
  grep -q "300 of 300 tasks succeeded on 2 ranks (0 failed, 1 retries, 1 worker deaths" program.err || fail "no death of rank 1"
  ;;
joblog-kept)
  printf 'mine\n' >j.tsv
  printf 'my trace\n' >t.json
  mpi run "$taskfarm" run --mpi -j 2 --tasks 10 --joblog j.tsv --trace t.json --output out.npy --dtype int64 -- \
    "$worker" --fault early-exit
  [ $rc -ne 0 ] || fail "workers that never start, and exit 0"
  grep -q "0 of 10 tasks succeeded on 2 ranks" run.err || fail "no summary of the run on 2 ranks"
  [ ! -e out.npy ] || fail "the new output no task wrote to was left"
  grep -q "^taskfarm: removed .*/out.npy: no task succeeded$" run.err || fail "no word of the output removed"
  [ "$(cat j.tsv)" = mine ] || fail "the joblog there was replaced though no task ended"
  [ "$(cat t.json)" = "my trace" ] || fail "the trace there was replaced though no task ended"
  ;;
input-differs)
  seq 1 10 >in.txt
  mkdir other && seq 1 11 >other/in.txt
  printf '#!/bin/sh\nif [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then cd other; fi\nexec "$@"\n' >cd_by_rank.sh
  chmod +x cd_by_rank.sh
  mpi run ./cd_by_rank.sh "$taskfarm" run --mpi --exec -- echo {} :::: in.txt
  [ $rc -eq 2 ] || fail "ranks with different inputs: exit $rc, not 2"
  grep -q "rank 1 (.*:1) read other tasks than rank 0" run.err || fail "no message naming rank 1"
  [ ! -s run.out ] || fail "commands ran"
  ;;
spool-full)
  small_tmpfs_for_rank 1 64k small_rank1.sh
  mpi run ./small_rank1.sh "$taskfarm" run --mpi -j 1 --exec --tmpdir "$dir/small" --joblog j.tsv -- \
    sh -c 'head -c 70000 /dev/zero | tr "\0" x; echo; echo done {}' ::: $(seq 1 10)
  [ $rc -ne 77 ] || { echo "cannot mount a tmpfs here: skipped"; exit 77; }
  [ $rc -eq 102 ] || fail "a node whose --tmpdir filled: exit $rc, not 102"
  grep -q "^taskfarm: the output of index [0-9]* is PARTIAL: --tmpdir $dir/small is full" run.err || fail "no PARTIAL of rank 1"
  ok=$(awk -F'\t' 'NR > 2 && $7 == "ok"' j.tsv | wc -l)
  failed=$(awk -F'\t' 'NR > 2 && $7 == "failed"' j.tsv | wc -l)
  [ "$failed" -eq 1 ] && [ "$ok" -lt 9 ] || fail "joblog: $ok ok and $failed failed rows"
  grep -q "^taskfarm: $((10 - ok - failed)) of 10 tasks were not run (stopped early: the reason is above); --resume runs them$" run.err ||
    fail "no count of the tasks not run"
  ;;
input)
  "$taskfarm" run --tasks 40 --output in.npy --dtype f8 -- "$worker" 2>in.err
  "$taskfarm" run --tasks 40 --input in.npy --output single.npy --dtype f8 -- "$worker" --from-input 2>single.err
  mpi run "$taskfarm" run --mpi -j 2 --tasks 40 --input in.npy --output mpi.npy --dtype f8 -- "$worker" --from-input
  [ $rc -eq 0 ] || fail "--input under --mpi: exit $rc"
  cmp single.npy mpi.npy || fail "the MPI output differs from the single-machine output"
  RANKS=1 mpi header "$taskfarm" run --mpi -j 1 --tasks 40 --input in.npy --output header.npy --dtype f8 -- "$worker" \
    --from-input --scribble-header-at 3
  [ $rc -eq 103 ] || fail "a header written over under --mpi: exit $rc, not 103"
  grep -q "^taskfarm: a worker wrote over the .npy header of $dir/header.npy (restored); data near the start may be damaged too$" header.err ||
    fail "the restored header is not said"
  cmp single.npy header.npy || fail "the output whose header was restored differs from the single-machine output"
  ;;
halt)
  mpi run "$taskfarm" run --mpi -j 1 --halt now,fail=1 --retries 0 --tasks 600 --output out.npy --dtype int64 -- \
    "$worker" --fault segv --at 20 --spin-ms 1
  [ $rc -eq 1 ] || fail "--halt now,fail=1 with one failure: exit $rc, not 1"
  grep -q "^taskfarm: [1-9][0-9]* of 600 tasks were not run (halted by --halt on a node: no range went out after it)$" run.err ||
    fail "the other node went on after the halt"
  grep -q "^taskfarm: .*/out.npy is INCOMPLETE: [1-9][0-9]* of 600 tasks missing; add --joblog" run.err ||
    fail "an output with holes is not said to be one"
  ;;
joblog-full)
  small_tmpfs_for_rank 0 8k small_rank0.sh
  mpi run ./small_rank0.sh "$taskfarm" run --mpi -j 1 --tasks 600 --output out.npy --dtype int64 --joblog "$dir/small/j.tsv" -- \
    "$worker" --spin-ms 1
  [ $rc -ne 77 ] || { echo "cannot mount a tmpfs here: skipped"; exit 77; }
  [ $rc -eq 102 ] || fail "a joblog that cannot be written: exit $rc, not 102"
  grep -q "^taskfarm: cannot write joblog .*: No space left on device (no more rows are written, no more work is handed out)$" run.err ||
    fail "no word of the joblog"
  grep -q "^taskfarm: [1-9][0-9]* of 600 tasks were not run (stopped early: the reason is above); --resume runs them$" run.err ||
    fail "the run went on after its joblog failed"
  ;;
*) fail "unknown mode $mode" ;;
esac
[ -z "$(ls | grep '\.tmp$')" ] || fail "temporary file left: $(ls | grep '\.tmp$')"
expect_nothing_left
echo "mpi records $mode: ok"
