#!/usr/bin/env bash
# --version, --help (with the exit-status table), info, clean.
source "$(dirname "$0")/lib.sh"
setup_workdir

version_and_help() {
  tf --version
  expect_rc 0
  grep -qE '^taskfarm [0-9]+\.[0-9]+\.[0-9]+$' "$W/stdout" || fail "--version prints '$(cat "$W/stdout")'"
  tf --help
  expect_rc 0
  for s in run clean info "Exit status" "1-100" "101" "130/143"; do expect_stdout "$s"; done
  tf run --help
  expect_rc 0
  for s in --workers --tasks --shape --input-lines --chunk --output --dtype --input --keep-order \
           --retries --timeout --mem-limit --halt --progress --no-progress --joblog --resume \
           --trace --events --chaos "Exit status"; do
    expect_stdout "$s"
  done
}

info_and_clean() {
  tf info
  expect_rc 0
  for s in "usable CPUs:" "/dev/shm free:" "open files:" "address space:"; do expect_stdout "$s"; done
  # A segment whose creator is dead: the pid of a process that has exited.
  true &
  local dead=$!
  wait "$dead"
  local seg="/dev/shm/taskfarm-$dead-0123456789abcdef-clitest"
  : > "$seg"
  tf clean
  expect_rc 0
  [ ! -e "$seg" ] || fail "clean left $seg"
  # A live master's segment is never touched.
  local live="/dev/shm/taskfarm-$$-0123456789abcdef-clitest"
  : > "$live"
  tf clean
  [ -e "$live" ] || fail "clean removed the segment of a live process"
  rm -f "$live"
  expect_rc 0
}

"$@"
