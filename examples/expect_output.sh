#!/bin/sh
# usage: expect_output.sh TEXT PROGRAM [ARGS...]
# Runs PROGRAM, shows its output, and fails unless it exits 0 and printed a line containing
# TEXT (a fixed string). For example tests whose printout is the point.
text=$1
shift
output=$("$@" 2>&1)
status=$?
printf '%s\n' "$output"
if [ $status -ne 0 ]; then
  echo "expect_output: $1 exited with status $status" >&2
  exit 1
fi
if ! printf '%s\n' "$output" | grep -qF -- "$text"; then
  echo "expect_output: $1 did not print: $text" >&2
  exit 1
fi
