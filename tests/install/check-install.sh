#!/usr/bin/env bash
# Installs the build tree into a scratch prefix, builds tests/install/consumer against it with
# find_package(taskfarm), and runs the consumer: started by hand, a worker program must say
# how to run it and exit 2.
set -euo pipefail
build=$1 src=$2
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
# The installed binary drives the outside worker program.
out=$("$scratch/prefix/bin/taskfarm" run --tasks 5 --workers 2 -- "$scratch/consumer/consumer_worker" 2>&1)
echo "$out"
grep -q "5 succeeded, 0 failed" <<<"$out"
