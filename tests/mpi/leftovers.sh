# Sourced by the mpi test scripts, in their work folder, before mpirun: records what /dev/shm
# held, and puts Open MPI's shared-memory files in ./vader (another mpirun on the machine, a
# neighbour's test, writes its own into /dev/shm). expect_nothing_left, after the runs, fails
# on a new taskfarm segment whose creator is dead (a live creator belongs to a test running
# beside this one; the RESOURCE_LOCK dead_masters keeps away those that SIGKILL a master) and
# on any Open MPI file left in ./vader.
shm_before=$(ls /dev/shm)
mkdir vader && export OMPI_MCA_btl_vader_backing_directory=$PWD/vader

expect_nothing_left() {
  local s pid
  for s in $(comm -13 <(echo "$shm_before" | sort) <(ls /dev/shm | sort)); do
    pid=$(echo "$s" | sed -n 's/^taskfarm-\([0-9]*\)-.*/\1/p')
    # (a test beside this one may remove its segment just as its process ends: look again after)
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null && [ -e "/dev/shm/$s" ]; then
      echo "segment left behind: $s" >&2
      exit 1
    fi
  done
  [ -z "$(ls vader)" ] || { echo "Open MPI segment left behind: $(ls vader | head -1)" >&2; exit 1; }
}
