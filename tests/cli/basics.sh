#!/usr/bin/env bash
# --version, --help (with the exit-status table), info, clean (and what clean cannot remove).
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

# The --exec output directory of a dead master holding a file taskfarm did not put there is
# named and left whole — none of its files removed; one holding only taskfarm's files is removed.
clean_leaves_foreign_spool_alone() {
  true &
  local dead=$!
  wait "$dead"
  mkdir "$W/tmp"
  local mixed="$W/tmp/taskfarm-$dead-AAAAAA" ours="$W/tmp/taskfarm-$dead-BBBBBB"
  mkdir "$mixed" "$ours"
  echo held >"$mixed/0.out"
  echo mine >"$mixed/notes.txt"
  echo held >"$ours/0.out"
  echo held >"$ours/w$dead-1-7.err"
  TMPDIR="$W/tmp" tf clean
  expect_rc 1
  expect_stderr "$mixed: holds files taskfarm did not make there, left as it is"
  [ "$(cat "$mixed/0.out" 2>/dev/null)" = held ] && [ "$(cat "$mixed/notes.txt")" = mine ] ||
    fail "clean changed a directory it says it left as it is: $(ls -A "$mixed")"
  [ ! -e "$ours" ] || fail "clean left $ours: $(ls -A "$ours")"
  expect_stdout "removed $ours"
}

clean_reports_unremovable() {
  # A segment of a dead master that `clean` may not remove (root's, in the sticky /dev/shm,
  # swept by an unprivileged user): named with the reason, exit 1; root's clean removes it.
  [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null && [ -k /dev/shm ] ||
    { echo "SKIP: needs root, setpriv and a sticky /dev/shm"; exit 77; }
  true &
  local dead=$!
  wait "$dead"
  local name="taskfarm-$dead-0123456789abcdef-unremovable"
  : >"/dev/shm/$name"
  setpriv --reuid=65534 --regid=65534 --clear-groups "$TASKFARM" clean >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  "$TASKFARM" clean >"$W/root-clean" 2>&1
  local root_rc=$?
  [ ! -e "/dev/shm/$name" ] || { rm -f "/dev/shm/$name"; fail "root's clean left /dev/shm/$name"; }
  [ "$root_rc" -eq 0 ] || fail "root's clean exited $root_rc: $(cat "$W/root-clean")"
  grep -qF "removed /dev/shm/$name" "$W/root-clean" || fail "root's clean did not list $name"
  expect_rc 1
  grep -qE "^taskfarm: clean: cannot remove /dev/shm/$name: (Permission denied|Operation not permitted)$" "$W/stderr" ||
    fail "clean did not say why it could not remove $name"
  expect_stdout "could not remove"
  grep -q "no segments of dead masters" "$W/stdout" && fail "clean said there was nothing to do"
  return 0
}

"$@"
