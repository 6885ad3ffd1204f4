#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds tests/install/consumer against it with
# find_package(taskfarm), and runs the consumer: started by hand, a worker program must say
# how to run it and exit 2; a Pool equals the serial loop; a joblog written by a run that dies
# midway (SIGKILL) is resumed through the library alone; the installed binary drives the worker
# and, with --exec, commands (its worker taskfarm-exec installed in libexec/taskfarm).
# With the Python package built (PYTHON_DIR given: its place under the prefix), a Python kernel
# runs through the installed binary from the installed package, and that place under /usr/local
# is one Debian's python3 searches.
set -euo pipefail
build=$1 src=$2 python=${3:-} python_dir=${4:-}
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
cmake -S "$src/tests/install/consumer" -B "$scratch/consumer" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/consumer" >/dev/null
set +e
msg=$(env -u TASKFARM_WORKER "$scratch/consumer/consumer_worker" 2>&1)
code=$?
set -e
echo "$msg"
[ "$code" -eq 2 ] || { echo "expected exit 2, got $code"; exit 1; }
grep -q "taskfarm worker program" <<<"$msg"
# The library embedded in a program: Pool (taskfarm::master) against the serial loop.
"$scratch/consumer/consumer_pool"
# Joblog and resume from an embedding program (README's code, checked to be the consumer's).
readme_code=$(sed -n '/^\/\/ README-BEGIN/,/^\/\/ README-END/p' "$src/tests/install/consumer/resume_main.cpp" | sed '1d;$d')
[ -n "$readme_code" ] || { echo "no README-BEGIN/END block in resume_main.cpp"; exit 1; }
[[ "$(cat "$src/README.md")" == *"$readme_code"* ]] || { echo "README.md does not show resume_main.cpp's compute() as is"; exit 1; }
work="$scratch/resume"
mkdir "$work"
set +e
"$scratch/consumer/consumer_resume" "$work" first 1650 2>"$work/first.err"
code=$?
set -e
[ "$code" -eq 137 ] || { cat "$work/first.err"; echo "the first run should die by SIGKILL (137), got $code"; exit 1; }
ok_rows() { awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$work/run.joblog"; }
first=$(ok_rows | wc -l)
[ "$first" -gt 0 ] && [ "$first" -lt 2000 ] || { echo "the first run recorded $first of 2000 tasks"; exit 1; }
! ok_rows | grep -qx 1650 || { echo "index 1650 (its task killed the master) is recorded as done"; exit 1; }
"$scratch/consumer/consumer_resume" "$work" resume
# Every task has exactly one ok row: the resume ran none that the first run had recorded.
[ "$(ok_rows | wc -l)" -eq 2000 ] && [ -z "$(ok_rows | sort -n | uniq -d)" ] ||
  { echo "the joblog does not hold exactly one ok row per task"; exit 1; }
# The installed binary drives the outside worker program.
out=$("$scratch/prefix/bin/taskfarm" run --tasks 5 --workers 2 -- "$scratch/consumer/consumer_worker" 2>&1)
echo "$out"
grep -q "5 succeeded, 0 failed" <<<"$out"
# The installed binary finds its installed --exec worker (PREFIX/libexec/taskfarm/taskfarm-exec).
out=$("$scratch/prefix/bin/taskfarm" run --exec -k -- echo ::: a b </dev/null 2>&1)
echo "$out"
grep -q "2 succeeded, 0 failed" <<<"$out"
grep -qx "a" <<<"$out"

[ -n "$python_dir" ] || exit 0
"$python" -c 'import sys; sys.exit(0 if sys.argv[1] in sys.path else
  f"{sys.argv[1]} is not on the sys.path of {sys.executable}: {sys.path}")' "/usr/local/$python_dir"
cat >"$scratch/w.py" <<'PY'
import os, sys, taskfarm
assert taskfarm.__file__.startswith(sys.argv[1]), taskfarm.__file__
def kernel(t):
    t.output[t.index] = t.index * t.index
taskfarm.run_worker(kernel)
PY
PYTHONPATH="$scratch/prefix/$python_dir" "$scratch/prefix/bin/taskfarm" run --tasks 7 --workers 2 \
  --output "$scratch/squares.npy" --dtype int64 -- "$python" "$scratch/w.py" "$scratch/prefix/$python_dir"
"$python" -c 'import numpy as np, sys; sys.exit(0 if np.load(sys.argv[1]).tolist() == [i * i for i in range(7)]
  else "wrong squares from the installed Python package")' "$scratch/squares.npy"
