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

# peak_kib STDIN_CMD ARGS...: runs `STDIN_CMD | taskfarm ARGS` (STDIN_CMD "" for none) with a
# deadline and prints "RC PEAK" — the exit status and the largest resident set (KiB) of
# taskfarm and everything it waited for (getrusage of the children, ru_maxrss).
peak_kib() {
  "$PYTHON" - "$TASKFARM" "$@" <<'PY'
import resource, subprocess, sys
taskfarm, producer, args = sys.argv[1], sys.argv[2], sys.argv[3:]
feed = subprocess.Popen(producer.split(), stdout=subprocess.PIPE) if producer else None
try:
    rc = subprocess.run([taskfarm, *args], stdin=feed.stdout if feed else subprocess.DEVNULL,
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=40).returncode
finally:
    if feed:
        feed.stdout.close()
        feed.kill()
        feed.wait()
print(rc, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}

memory_bounded() {
  # The lines' memory is what they hold, counted as the segment counts them: an endless
  # producer is refused with taskfarm's peak RSS within --input-lines-max of its peak on one
  # line (it was 1.5x the limit: capacity doubling; and twice with --exec's copy per source),
  # and a file of lines that is run peaks near its segment's size, not at three times it.
  [ -z "${TASKFARM_SANITIZE:-}" ] || { echo "SKIP: a sanitizer runtime's own memory is no measure of ours"; exit 77; }
  local base rc peak limit=$((32 * 1024))
  printf 'x\n' >"$W/one.txt"
  read -r rc base < <(peak_kib "" run --exec --halt now -- false :::: "$W/one.txt")
  [ "$rc" -eq 1 ] || fail "one failing task: exit $rc"
  # (--events reads the input whole before the run, stream.sh: the whole read is what is measured)
  read -r rc peak < <(peak_kib yes run --exec --events --input-lines-max 32M -- echo {})
  [ "$rc" -eq 2 ] || fail "yes | taskfarm --events --input-lines-max 32M: exit $rc, expected 2"
  echo "endless: peak $peak KiB, one line $base KiB, limit $limit KiB"
  [ "$peak" -le $((base + limit + 1024)) ] || fail "endless input: peak RSS $peak KiB > $base + $limit KiB (+1 MiB)"
  # 2 M lines of "x" (and `::: a`): a segment of 9 bytes a line (18 MB); the run stops at the first
  # failed task (--halt now), so it costs the reading and one task.
  "$PYTHON" -c "import sys; sys.stdout.write('x\n' * 2_000_000)" >"$W/two.txt"
  local segment=$(( (8 * 2000004 + 2000001) / 1024 ))
  read -r rc peak < <(peak_kib "" run --exec --halt now -j1 -- false :::: "$W/two.txt" ::: a)
  [ "$rc" -eq 1 ] || fail "2M lines, first task failing: exit $rc"
  echo "2M lines: peak $peak KiB, segment $segment KiB"
  [ "$peak" -le $((base + segment + 5 * 1024)) ] || fail "2M lines: peak RSS $peak KiB > $base + $segment KiB (+5 MiB)"
}

"$@"
