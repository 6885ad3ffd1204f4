#!/usr/bin/env bash
# taskfarm run --mpi under mpirun -n RANKS: the examples' Mandelbrot worker writes an output
# byte-identical to the single-machine run (cmp), rank 0's --progress ends at all tasks, every rank's node master and worker is gone
# when mpirun returns (no process left in this test's session), and no segment is left behind.
# With "gather": every rank but 0 in a directory of its own, where the relative --output names
# no file (as without a shared file system), and no --mpi-gather: rank 0 finds that they do not
# see its output and they gather without being told; those directories stay empty. Without: no
# rank gathers. Either way rank 0's probe file is gone afterwards.
# With IMAGE_STACK: the image-stack example's worker (--input, a strided 3-D float32 stack) under
# the same mpirun -n RANKS writes an output byte-identical to the example's own serial loop.
#   mpi_mandelbrot.sh TASKFARM MANDELBROT RANKS WORKDIR [gather|-] [IMAGE_STACK]
set -euo pipefail
taskfarm=$1 mandelbrot=$2 ranks=$3 dir=$4 gather=${5:-} stack=${6:-}
[ "$gather" != - ] || gather=
rm -rf "$dir" && mkdir -p "$dir" && cd "$dir"
tf=$taskfarm extra=
if [ "$gather" = gather ]; then
  printf '#!/bin/sh\n[ "$OMPI_COMM_WORLD_RANK" = 0 ] || cd "%s/rank$OMPI_COMM_WORLD_RANK"\nexec "%s" "$@"\n' "$dir" "$taskfarm" >ranks_apart.sh
  chmod +x ranks_apart.sh
  for ((r = 1; r < ranks; ++r)); do mkdir "rank$r"; done
  tf=$dir/ranks_apart.sh
fi
size=120
# Under the ASan suite: Open MPI's own allocations outlive MPI_Finalize (lsan.supp says which).
export LSAN_OPTIONS="suppressions=$(dirname "$(readlink -f "$0")")/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"
source "$(dirname "$(readlink -f "$0")")/leftovers.sh"
"$taskfarm" run -j 2 --tasks $size --output single.npy --dtype int32 --shape ${size}x$size -- \
  "$mandelbrot" --worker --size $size --max-iter 64 2>single.err
[ -z "$stack" ] || "$stack" --serial --rows 40 --cols 60 --slices 12 --save-input stack-in.npy --output stack-serial.npy >/dev/null
# Every process mpirun starts stays in this session: whatever is left in it afterwards leaked.
set +e
setsid --wait bash -c '
  mpirun --oversubscribe --allow-run-as-root -n "$0" "$1" run --mpi $4 -j 2 --progress --tasks "$3" --output mpi.npy --dtype int32 \
    --shape "$3x$3" -- "$2" --worker --size "$3" --max-iter 64 >mpi.out 2>mpi.err
  rc=$?
  if [ $rc -eq 0 ] && [ -n "$5" ]; then
    mpirun --oversubscribe --allow-run-as-root -n "$0" "$1" run --mpi -j 2 --tasks 12 --input stack-in.npy \
      --output stack-mpi.npy --dtype float32 --shape 40x12x60 -- "$5" --worker >stack.out 2>stack.err
    rc=$?
    [ $rc -eq 0 ] || { cat stack.err >&2; echo "image stack under mpirun: exit $rc" >&2; }
  fi
  # (this shell and its own children, the ps, excepted; a leaked process is an orphan)
  sid=$(ps -o sid= -p $$)
  ps -e -o sid=,pid=,ppid=,comm= >ps.txt
  left=$(awk -v s="$sid" -v me=$$ "\$1 == s && \$2 != me && \$3 != me" ps.txt)
  [ -z "$left" ] || { echo "left running after mpirun: $left" >&2; exit 90; }
  exit $rc' "$ranks" "$tf" "$mandelbrot" "$size" "$extra" "$stack"
rc=$?
set -e
cat mpi.err >&2
[ $rc -eq 0 ] || { echo "mpirun -n $ranks: exit $rc" >&2; exit 1; }
grep -q "$size of $size tasks succeeded on $ranks rank" mpi.err || { echo "no summary naming $ranks ranks" >&2; exit 1; }
# --progress on rank 0 counts every node's tasks (its last line: all of them)
grep -q "^taskfarm: $size/$size 100%" mpi.err || { echo "no progress line of $size/$size" >&2; exit 1; }
cmp single.npy mpi.npy || { echo "the MPI output differs from the single-machine output" >&2; exit 1; }
if [ -n "$stack" ]; then
  grep -q "12 of 12 tasks succeeded on $ranks rank" stack.err || { cat stack.err >&2; echo "image stack: no summary naming $ranks ranks" >&2; exit 1; }
  cmp stack-serial.npy stack-mpi.npy || { echo "the MPI image stack differs from the serial loop's" >&2; exit 1; }
fi
if [ "$gather" = gather ]; then
  left=$(find . -path './rank*' -mindepth 2)
  [ -z "$left" ] || { echo "left in a rank's directory: $left" >&2; exit 1; }
  grep -q "; [1-9][0-9]* bytes gathered to rank 0$" mpi.err || { echo "no bytes gathered in the summary" >&2; exit 1; }
elif grep -q "bytes gathered" mpi.err; then
  echo "ranks that share rank 0's file system gathered" >&2
  exit 1
fi
[ -z "$(find . -name '.taskfarm-probe-*')" ] || { echo "probe file left: $(find . -name '.taskfarm-probe-*')" >&2; exit 1; }
expect_nothing_left
echo "mpirun -n $ranks${gather:+ ($gather)}: output${stack:+s} identical to the single-machine run${stack:+ and the serial loop}"
