#!/usr/bin/env bash
# --exec with its lines from a stream (standard input, a pipe, a FIFO): tasks start as lines
# arrive (hostile F1: `yes | taskfarm run --exec -- echo {}` ran nothing until its limit). The
# test is the producer: it writes a line into a FIFO, waits (with a deadline) for that line's
# output, and only then writes the next — a run that reads its input whole first never prints
# the first line and fails at the deadline. No sleep anywhere.
source "$(dirname "$0")/lib.sh"
setup_workdir

# stream_run MODE ARGS...: taskfarm run ARGS in the background, its stdout on fd 3; the test
# writes its input on fd 4 — standard input (MODE stdin: a pipe), or the FIFO $W/in the ARGS
# name (MODE fifo: opened read-write by the test, so that no open() blocks).
stream_run() {
  local mode=$1 r w
  shift
  rm -f "$W/in"
  [ "$mode" = stdin ] || mkfifo "$W/in"
  if [ "$mode" = stdin ]; then
    coproc TFCO { exec "$TASKFARM" run "$@" 2>"$W/stderr"; }
  else
    coproc TFCO { exec "$TASKFARM" run "$@" 2>"$W/stderr" </dev/null; }
  fi
  TF_PID=$TFCO_PID
  BG+=("$TF_PID")
  r=${TFCO[0]} w=${TFCO[1]}
  exec 3<&"$r" {r}<&-
  # (after the coproc started: it must not inherit a writer of its own input)
  if [ "$mode" = stdin ]; then exec 4>&"$w" {w}>&-; else exec {w}>&- 4<>"$W/in"; fi
}

# expect_line TEXT: the next line of the run's stdout is TEXT (deadline 20 s).
expect_line() {
  local line
  read -r -t 20 -u 3 line || fail "no line '$1' from the run before the deadline (input read whole first?)"
  [ "$line" = "$1" ] || fail "line '$line', expected '$1'"
}

# end_input [TEXT]: closes the input; the run must end; sets TF_RC; the rest of its output is TEXT.
end_input() {
  exec 4>&-
  wait_gone "$TF_PID"
  wait "$TF_PID"
  TF_RC=$?
  local rest
  rest=$(timeout 20 cat <&3) || fail "stdout does not end"
  exec 3<&-
  [ "$rest" = "${1:-}" ] || fail "the rest of the output is '$rest', expected '${1:-}'"
}

first_task_before_second_line() {  # the first output arrives before the second line is written
  local how
  for how in stdin input-lines sources keep-order; do
    case $how in
      stdin) stream_run stdin --exec -- echo got ;;
      keep-order) stream_run stdin --exec -k -j 2 -- echo got ;;
      input-lines) stream_run fifo --exec --input-lines "$W/in" -- echo got ;;
      sources) stream_run fifo --exec -- echo got :::: "$W/in" ;;
    esac
    printf 'a\n' >&4
    expect_line "got a"
    printf 'b' >&4   # half a line is no task: the next output is the whole line's
    printf 'c\n' >&4
    expect_line "got bc"
    printf 'last' >&4  # a last line without its newline counts, as in a whole read
    end_input "got last"
    expect_rc 0
    expect_stderr "3 tasks: 3 succeeded"
    expect_no_segments "$TF_PID"
  done
}

results_equal_whole_read() {  # a stream runs what the same lines read whole from a file run
  { seq 1 60; printf '\n\nwith space\nlast'; } >"$W/lines.txt"
  tf run --exec -j 2 -- echo {#}:{} :::: "$W/lines.txt" </dev/null  # a regular file: read whole
  expect_rc 0
  sort "$W/stdout" >"$W/whole"
  awk '{ print NR ":" $0 }' "$W/lines.txt" | sort >"$W/serial"
  cmp -s "$W/whole" "$W/serial" || fail "whole read differs from the serial loop: $(diff "$W/whole" "$W/serial" | head -5)"
  tf run --exec -j 2 -- echo {#}:{} < <(cat "$W/lines.txt")  # standard input, a pipe: streamed
  expect_rc 0
  expect_stderr "64 tasks: 64 succeeded"
  sort "$W/stdout" | cmp -s - "$W/serial" || fail "streamed run differs from the serial loop: $(sort "$W/stdout" | diff - "$W/serial" | head -5)"
  tf run --exec -k -j 2 -- echo {#}:{} < <(cat "$W/lines.txt")  # -k: in input order
  expect_rc 0
  awk '{ print NR ":" $0 }' "$W/lines.txt" | cmp -s - "$W/stdout" || fail "streamed -k run differs from the serial loop"
  # NUL-separated, through :::: <(cmd).
  tf run --exec -0 -k -- echo :::: <(printf 'x y\0z\0') </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'x y\nz')" ] || fail "-0 whole: $(cat "$W/stdout")"
  tf run --exec -0 -- echo :::: <(printf 'x y\0z\0') </dev/null
  expect_rc 0
  [ "$(sort "$W/stdout")" = "$(printf 'x y\nz')" ] || fail "-0 streamed: $(cat "$W/stdout")"
}

no_lines_refused() {  # an input that ends before its first byte is refused as a whole read refuses it
  tf run --exec -- echo < <(true)
  expect_rc 2
  expect_stderr "standard input, read for tasks since it is not a terminal, holds none"
  tf run --exec --input-lines - -- echo < <(true)
  expect_rc 2
  expect_stderr "--input-lines: standard input holds no lines: no tasks to run"
  tf run --exec -- echo :::: <(true) </dev/null
  expect_rc 2
  expect_stderr "holds no lines: no tasks to run"
  expect_no_segments "$TF_PID"
}

limit_stops_reading() {  # at --input-lines-max the lines read run, reading stops, and it is said
  # Lines of 60 bytes: a segment of 32 + 8 + 68 per line bytes holds 14 of them in 1 KiB.
  seq -f 'line-%055g' 1 100000 >"$W/many"
  tf run --exec --input-lines-max 1K -- echo < <(cat "$W/many")
  expect_rc 102
  expect_stderr "standard input holds more than 1.0 KiB of lines: stopped reading it after 14 lines; the rest was not run"
  # What ran is exactly the first 14 lines, each once.
  [ "$(sort "$W/stdout")" = "$(head -n 14 "$W/many")" ] || fail "ran $(wc -l <"$W/stdout") lines, not the first 14"
  expect_no_segments "$TF_PID"
  # Not even the first line fits: refused as before, nothing run.
  tf run --exec --input-lines-max 40 -- echo < <(printf 'a long first line\n')
  expect_rc 2
  expect_stderr "standard input holds more than 40 B of lines: its first line alone is past that; nothing was run"
  [ ! -s "$W/stdout" ] || fail "ran something: $(cat "$W/stdout")"
  # Nor one longer than the plan reads of the input's start (met while streaming; h12 F11): the same.
  tf run --exec --input-lines-max 100K -- echo < <(head -c 200000 /dev/zero | tr '\0' x)
  expect_rc 2
  expect_stderr "standard input holds more than 100.0 KiB of lines: its first line alone is past that; nothing was run"
  [ "$(wc -l <"$W/stderr")" -eq 1 ] || fail "more than one line on stderr: $(cat "$W/stderr")"
  [ ! -s "$W/stdout" ] || fail "ran something: $(head -c 100 "$W/stdout")"
  expect_no_segments "$TF_PID"
}

sigint_while_waiting_for_lines() {  # SIGINT mid-stream: interrupted, workers and segments gone
  stream_run stdin --exec --shell -- 'echo {} $PPID'
  printf 'a\n' >&4
  local line
  read -r -t 20 -u 3 line || fail "no output for the first line"
  [ "${line%% *}" = a ] || fail "line '$line'"
  kill -INT "$TF_PID"
  wait_gone "$TF_PID"
  wait "$TF_PID"
  TF_RC=$?
  exec 4>&- 3<&-
  expect_rc 130
  expect_stderr "1 task: 1 succeeded"
  expect_stderr "interrupted by SIGINT"
  expect_no_segments "$TF_PID"
  expect_gone "${line#* }"  # the worker that ran it
}

endless_producer_and_head() {  # `yes | taskfarm run --exec -- echo {} | head` ends, as GNU parallel's
  local out rc
  # The master's pid (the subshell execs it), so that only its segments are checked: another
  # test's master, SIGKILLed a moment ago, may have left one that its own sweep removes later.
  out=$(timeout 30 bash -c '( echo "$BASHPID" >"$3"; exec "$1" run --exec -- echo {} < <(yes) 2>"$2" ) | head -n 3; echo "${PIPESTATUS[0]}"' \
    sh "$TASKFARM" "$W/stderr" "$W/master.pid")
  rc=$?
  [ "$rc" -eq 0 ] || fail "did not end (timeout: $rc)"
  [ "$(printf '%s\n' "$out" | head -n 3 | tr '\n' ' ')" = "y y y " ] || fail "output: $out"
  [ "$(printf '%s\n' "$out" | tail -n 1)" = 141 ] || fail "taskfarm's exit $(printf '%s\n' "$out" | tail -n 1), expected 141 (SIGPIPE)"
  expect_stderr "interrupted by SIGPIPE"
  expect_no_segments "$(cat "$W/master.pid")"  # its lines segment too
}

cross_product_streams_its_first_source() {  # the first source streams, the others are read whole
  stream_run stdin --exec -k -- echo :::: - ::: x y
  printf 'a\n' >&4
  expect_line "a x"
  expect_line "a y"
  printf 'b\n' >&4
  expect_line "b x"
  expect_line "b y"
  end_input
  expect_rc 0
  expect_stderr "4 tasks: 4 succeeded"
  expect_no_segments "$TF_PID"
  # The same as read whole from a file, in order, with {1} {2} and --input-lines as the first source.
  printf '1\n2\n3\n' >"$W/n.txt"
  tf run --exec -k -- echo {2}-{1} :::: "$W/n.txt" ::: p q </dev/null
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'p-1\nq-1\np-2\nq-2\np-3\nq-3')" ] || fail "whole: $(cat "$W/stdout")"
  mv "$W/stdout" "$W/whole"
  tf run --exec -k --input-lines - -- echo {2}-{1} ::: p q < <(cat "$W/n.txt")
  expect_rc 0
  cmp -s "$W/whole" "$W/stdout" || fail "streamed cross product: $(cat "$W/stdout")"
  # Standard input once; a source linked to the stream (:::+) makes the input read whole.
  tf run --exec -- echo :::: - :::: - < <(printf 'a\n')
  expect_rc 2
  expect_stderr ":::: -: standard input is already read by an earlier :::: -"
  tf run --exec -k -- echo :::: - :::+ p q < <(printf 'a\nb\nc\n')
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'a p\nb q')" ] || fail "linked: $(cat "$W/stdout")"
}

address_space_limit_shrinks_the_room() {  # every process maps the segment: under `ulimit -v` it must fit
  [ -z "${TASKFARM_SANITIZE:-}" ] || { echo "SKIP: needs ulimit -v, which a sanitizer runtime cannot run under"; exit 77; }
  (ulimit -v 1000000 && exec "$TASKFARM" run --exec -k -- echo < <(printf 'a\nb\n')) >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'a\nb')" ] || fail "output: $(cat "$W/stdout")"
}

whole_read_options() {  # what needs the number of tasks first reads a stream whole, as before
  tf run --exec -k --joblog "$W/j.tsv" -- echo < <(printf 'a\nb\n')
  expect_rc 0
  [ "$(cat "$W/stdout")" = "$(printf 'a\nb')" ] || fail "--joblog: $(cat "$W/stdout")"
  head -n 1 "$W/j.tsv" | grep -q $'\textent=2\t' || fail "joblog header: $(head -n 1 "$W/j.tsv")"
  tf run --exec --events -- echo < <(printf 'a\nb\n')
  expect_rc 0
  grep -q '"event":"start".*"total":2' "$W/stdout" || fail "start event: $(head -n 1 "$W/stdout")"
}

"$@"
