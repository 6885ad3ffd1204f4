#!/usr/bin/env bash
# usage.sh MESSAGE ARGS...: `taskfarm ARGS` is refused: exit 2, one line on stderr naming the
# culprit (containing MESSAGE), and nothing created: no segment of that master, no output file.
# In ARGS, @W@ is this test's directory, @WORKER@ the test worker program, @EMPTY@ an empty argument.
# MESSAGE @SILENT@: nothing on stderr (an --mpi rank other than 0 leaves a fault of the command
# line to rank 0).
source "$(dirname "$0")/lib.sh"
setup_workdir
message=$1
shift

printf 'a\nb\n' >"$W/lines.txt"
: >"$W/empty.txt"
# numpy.save(in.npy, numpy.zeros(2)), byte for byte, without starting Python (72 cases, twice in CI).
{ printf '\x93NUMPY\x01\x00\x76\x00%-117s\n' "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }"; head -c 16 /dev/zero; } >"$W/in.npy"
printf '#!/bin/sh\n' >"$W/not-executable"
chmod 0644 "$W/not-executable"

args=()
for a in "$@"; do
  a=${a//@W@/$W}
  a=${a//@EMPTY@/}
  args+=("${a//@WORKER@/$CLI_WORKER}")
done
tf "${args[@]}" </dev/null
expect_rc 2
if [ "$message" = @SILENT@ ]; then
  [ ! -s "$W/stderr" ] || fail "stderr is not empty"
else
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "stderr is not one line"
  expect_stderr "$message"
  grep -q '^taskfarm: ' "$W/stderr" || fail "message does not start with 'taskfarm: '"
fi
[ "$(grep -o 'see taskfarm --help' "$W/stderr" | wc -l)" -le 1 ] || fail "the --help hint is repeated"
expect_no_segments "$TF_PID"
[ ! -e "$W/out.npy" ] || fail "bad input left an output file"
[ "$(find "$W" -newer "$W/not-executable" -not -name stdout -not -name stderr -not -path "$W" | wc -l)" -eq 0 ] ||
  fail "bad input created files: $(find "$W" -newer "$W/not-executable")"
