#!/usr/bin/env bash
# Sources of lines (--input-lines, :::: FILE): one rule for both. A FIFO or pipe is a source
# (`<(cmd)`, GNU parallel's habit), opened without blocking: a named FIFO whose writer comes
# later is read once it comes; a device, socket or directory is refused by its kind. Every
# wait here has a deadline (timeout, wait_gone); no sleep.
source "$(dirname "$0")/lib.sh"
setup_workdir

# bg_tf ARGS...: taskfarm in the background, stdout/stderr to $W; sets TF_PID.
bg_tf() {
  "$TASKFARM" "$@" </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
}

# finish: waits (with a deadline) for the background taskfarm; sets TF_RC.
finish() {
  wait_gone "$TF_PID"
  wait "$TF_PID"
  TF_RC=$?
}

pipes_and_fifos() {
  # --input-lines <(cmd), refused before as "a FIFO", is read like :::: <(cmd).
  tf run --exec -k --input-lines <(printf 'a\nb\nc\n') -- echo x </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'x a\nx b\nx c')" ] || fail "--input-lines <(printf): $(cat "$W/stdout")"
  tf run --exec -k -- echo y :::: <(printf '1\n2\n') </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'y 1\ny 2')" ] || fail ":::: <(printf): $(cat "$W/stdout")"

  # A named FIFO whose writer comes after taskfarm opened it: the writer's open() returns only
  # once a reader has the FIFO open, so it is the event; its lines are the tasks, in order.
  mkfifo "$W/fifo"
  local opt
  for opt in "--input-lines" "::::"; do
    if [ "$opt" = "::::" ]; then bg_tf run --exec -k -- echo z :::: "$W/fifo"
    else bg_tf run --exec -k --input-lines "$W/fifo" -- echo z; fi
    timeout 20 sh -c 'printf "p\nq\n" >"$1"' sh "$W/fifo" || fail "$opt: taskfarm never opened the FIFO"
    finish
    expect_rc 0
    [ "$(cat "$W/stdout")" = "$(printf 'z p\nz q')" ] || fail "$opt FIFO: $(cat "$W/stdout")"
    expect_no_segments "$TF_PID"
  done
  [ -p "$W/fifo" ] || fail "the FIFO was removed"
}

kinds_refused() {
  # A device is refused by its kind for --input-lines as for ::::, without being read.
  tf run --exec --input-lines /dev/zero -- echo </dev/null
  expect_rc 2
  expect_stderr "--input-lines: '/dev/zero' is a character device, not a file of lines"
  # A directory: ":::: 'DIR'", the marker once (it said "::::: 'DIR'").
  tf run --exec -- echo :::: "$W" </dev/null
  expect_rc 2
  expect_stderr "taskfarm: :::: '$W' is a directory, not a file of lines"
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "stderr is not one line"
}

"$@"
