#!/usr/bin/env bash
# `taskfarm run --exec`: a command per task, GNU parallel's way, with the farm's promises —
# replacement strings, ::: / :::: sources and their cross product, order, grouped output,
# hostile file names, failures by exit code and signal, timeouts, a worker crash, resume, and
# output of any size in bounded memory. Expected strings are GNU parallel 20221122's answers.
source "$(dirname "$0")/lib.sh"
setup_workdir

# expect_stdout_is TEXT: stdout is exactly TEXT (printf escapes allowed).
expect_stdout_is() {
  printf "$1" >"$W/expected"
  cmp -s "$W/expected" "$W/stdout" || fail "stdout is $(od -c "$W/stdout" | head -20), expected $(od -c "$W/expected" | head -20)"
}

replacement_strings() {  # every replacement string, on the names GNU parallel was asked about
  tf run --exec -k -j 2 -- printf '[%s] [%s] [%s] [%s] [%s] #%s\n' {} {.} {/} {//} {/.} {#} \
    ::: dir.x/foo.tar.gz foo .bashrc a/b/ / dir/.hidden a/b.c/d foo. </dev/null
  expect_rc 0
  expect_stdout_is '[dir.x/foo.tar.gz] [dir.x/foo.tar] [foo.tar.gz] [dir.x] [foo.tar] #1
[foo] [foo] [foo] [.] [foo] #2
[.bashrc] [] [.bashrc] [.] [] #3
[a/b/] [a/b/] [] [a] [] #4
[/] [/] [] [/] [] #5
[dir/.hidden] [dir/] [.hidden] [dir] [] #6
[a/b.c/d] [a/b.c/d] [d] [a/b.c] [d] #7
[foo.] [foo] [foo.] [.] [foo] #8
'
  # Positional strings, and a word that holds several sources' values.
  tf run --exec -k -- echo {2}-{1} x{}y {2/.} ::: a b ::: 1 2.c </dev/null
  expect_rc 0
  expect_stdout_is '1-a xa 1y 1\n2.c-a xa 2.cy 2\n1-b xb 1y 1\n2.c-b xb 2.cy 2\n'
  # {%}: a slot number between 1 and -j; {#} counts from 1; --tasks N: the input is the index.
  tf run --exec -k -j 2 --tasks 6 -- echo {} {#} {%} </dev/null
  expect_rc 0
  awk '$1 + 1 != $2 || $3 < 1 || $3 > 2 { exit 1 }' "$W/stdout" || fail "bad {} {#} {%}: $(cat "$W/stdout")"
  [ "$(cut -d' ' -f1 "$W/stdout" | tr '\n' ' ')" = "0 1 2 3 4 5 " ] || fail "tasks out of order"
  # Braces that are not replacement strings stay as written; without any, the input is appended.
  tf run --exec -k -- echo {foo} {0} {1x} ::: a </dev/null
  expect_stdout_is '{foo} {0} {1x} a\n'
  # A source the template names but the command line lacks is a usage error.
  tf run --exec -- echo {3} ::: a ::: b </dev/null
  expect_rc 2
  expect_stderr "replacement string {3} names input source 3, but there are 2 input sources"
}

sources_and_cross_product() {  # ::: and :::: in order, their cross product row-major, stdin by default
  tf run --exec -k -- echo ::: a b ::: 1 2 </dev/null
  expect_rc 0
  expect_stdout_is 'a 1\na 2\nb 1\nb 2\n'
  printf 'x\ny\n' >"$W/xy"
  printf 'p\nq\n' | "$TASKFARM" run --exec -k -- echo {1}{2}{3} ::: a :::: "$W/xy" :::: - >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 0
  expect_stdout_is 'axp\naxq\nayp\nayq\n'
  # --input-lines is the first source; standard input (not a terminal) is the input by default.
  tf run --exec -k --input-lines "$W/xy" -- echo ::: 1 2 </dev/null
  expect_stdout_is 'x 1\nx 2\ny 1\ny 2\n'
  printf 'one\ntwo\nthree\n' | "$TASKFARM" run --exec -k -j 2 -- echo >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 0
  expect_stdout_is 'one\ntwo\nthree\n'
  tf run --exec -- echo </dev/null
  expect_rc 2
  expect_stderr "no tasks: give --tasks N, --shape AxB or --input-lines FILE, or ::: VALUES after the command (standard input, read for tasks since it is not a terminal, holds none)"
}

hostile_names() {  # spaces, quotes, $, backslashes, newlines, a leading dash: passed through untouched
  local names=("a b" "it's" 'say "hi"' '$HOME $(touch pwned) `touch pwned`' 'back\slash' $'new\nline' '-n' '*' '')
  cd "$W" || fail "cd"
  tf run --exec -k -- printf '<%s>\n' ::: "${names[@]}" </dev/null
  expect_rc 0
  printf '<%s>\n' "${names[@]}" >"$W/expected"
  cmp -s "$W/expected" "$W/stdout" || fail "names changed: $(od -c "$W/stdout" | head)"
  # The same through a shell (--shell): the values are quoted, never read as shell syntax.
  tf run --exec --shell -k -- 'printf "<%s>\n" {} | cat' ::: "${names[@]}" </dev/null
  expect_rc 0
  cmp -s "$W/expected" "$W/stdout" || fail "names changed through --shell: $(od -c "$W/stdout" | head)"
  [ ! -e "$W/pwned" ] || fail "a value was run as shell syntax"
  # NUL-separated input (find -print0) carries a newline in a name.
  printf '%s\0' "${names[@]}" >"$W/names0"
  tf run --exec -k -0 --input-lines "$W/names0" -- printf '<%s>\n' </dev/null
  expect_rc 0
  cmp -s "$W/expected" "$W/stdout" || fail "names changed through -0: $(od -c "$W/stdout" | head)"
  # A NUL byte inside a line cannot be an argument: that task is not run (it ran on "a" before).
  printf 'a\0b\nc\n' >"$W/nul.txt"
  tf run --exec -k -- printf '<%s>\n' :::: "$W/nul.txt" </dev/null
  expect_rc 1
  expect_stdout_is '<c>\n'
  expect_stderr "taskfarm-exec: an input holds a NUL byte, which no command argument can carry: not run (-0 reads NUL-separated input)"
  expect_stderr "failure: index 0 (attempt 0, slot "
}

grouped_output() {  # two tasks writing lines at once: each task's stdout and stderr come out whole
  tf run --exec -j 2 --shell -- 'for k in $(seq 300); do echo {}:$k; echo {}:$k >&2; done' ::: a b c d </dev/null
  expect_rc 0
  for stream in stdout stderr; do
    grep -v '^taskfarm:' "$W/$stream" | "$PYTHON" -c '
import sys
lines = [l.rstrip("\n") for l in sys.stdin]
tasks = [l.split(":")[0] for l in lines]
runs = [t for i, t in enumerate(tasks) if i == 0 or tasks[i - 1] != t]
assert sorted(runs) == ["a", "b", "c", "d"], f"interleaved: {runs[:20]}"
for t in "abcd":
    assert [l for l in lines if l.startswith(t + ":")] == [f"{t}:{k}" for k in range(1, 301)], t
' || fail "$stream interleaved"
  done
}

exit_code_and_signal() {  # non-zero exit: cause exit with its code; a signal: cause signal; the worker lives on
  tf run --exec -k -j 1 --retries 1 --joblog "$W/j.tsv" --events --shell -- \
    'echo out {}; echo err {} >&2; case {} in b) exit 3;; c) kill -SEGV $$;; esac' ::: a b c d </dev/null
  expect_rc 2
  expect_stderr "failure: index 1 (attempt 1, slot 0, pid"
  expect_stderr "): command exited with code 3: /bin/sh -c 'echo out b;"
  expect_stderr "): command killed by SIGSEGV: /bin/sh -c"
  expect_stderr "failed indices: 1-2"
  # Every attempt is a joblog row: two per failed task, with the exit code or the signal.
  awk -F'\t' 'NR > 2 { print $1, $6, $7, $8, $9, $10 }' "$W/j.tsv" | sort >"$W/rows"
  printf '%s\n' "0 0 ok 0 0 -" "1 0 retried 3 0 exit" "1 1 failed 3 0 exit" "2 0 retried 0 11 signal" \
    "2 1 failed 0 11 signal" "3 0 ok 0 0 -" >"$W/expected"
  cmp -s "$W/rows" "$W/expected" || fail "joblog rows: $(cat "$W/rows")"
  # The failed tasks' output is printed once (their last attempt's), in order; one worker did it all.
  [ "$(grep -c '"event":"worker"' "$W/stdout")" -eq 1 ] || fail "a failed command cost its worker"
  [ "$(grep -o '"text":"out [a-d]\\n"' "$W/stdout" | tr -d '\n')" = '"text":"out a\n""text":"out b\n""text":"out c\n""text":"out d\n"' ] ||
    fail "output events: $(grep output "$W/stdout")"
  grep -q '"event":"failure","index":1,"cause":"exit","attempt":0,"final":false,.*"exit_code":3' "$W/stdout" ||
    fail "no failure event with exit code 3"
  grep -q '"stderr_tail":"err b\\n"' "$W/stdout" || fail "the failure does not carry the command's stderr"
  [ "$(grep -c '^err ' "$W/stderr")" -eq 4 ] || fail "stderr of the tasks: $(grep '^err' "$W/stderr")"
  # A command that cannot be run fails like a shell says (127), its reason on its stderr.
  tf run --exec --retries 0 -- {} ::: ./no-such-program-here </dev/null
  expect_rc 1
  expect_stderr "command exited with code 127"
  expect_stderr "cannot run ./no-such-program-here: No such file or directory"
}

dash_i_links_and_inputs_as_commands() {  # -I STR for {}; :::+; no template: each input is a shell command (GNU parallel)
  tf run --exec -k -I XX -- echo XX {.} {} ::: a.b c.d </dev/null
  expect_rc 0
  expect_stdout_is 'a.b a {}\nc.d c {}\n'
  tf run --exec -k ::: 'echo a; echo b >&2' 'printf "%s\n" "$((6 * 7))"' </dev/null
  expect_rc 0
  expect_stdout_is 'a\n42\n'
  expect_stderr b
  tf run --exec -k -- ::: echo printf ::: x </dev/null  # sources joined by spaces, as GNU parallel
  expect_rc 0
  expect_stdout_is 'x\nx'
  # :::+ links a source to the one before, element-wise, as long as the shorter (GNU parallel 20221122).
  tf run --exec -k -- echo ::: a b c :::+ 1 2 </dev/null
  expect_rc 0
  expect_stdout_is 'a 1\nb 2\n'
  printf '1\n2\n3\n' >"$W/nums"
  tf run --exec -k -- echo {3}-{2}-{1} ::: a b ::: x y ::::+ "$W/nums" </dev/null
  expect_rc 0
  expect_stdout_is '1-x-a\n2-y-a\n1-x-b\n2-y-b\n'
  tf run --exec -- echo :::+ a </dev/null
  expect_rc 2
  expect_stderr "':::+' links to the input source before it, and there is none"
  tf run -I XX --tasks 1 -- "$CLI_WORKER" </dev/null
  expect_rc 2
  expect_stderr "-I needs --exec"
}

resume_refuses_other_inputs() {  # the joblog records each task's inputs: a resume with others names the first that differs
  tf run --exec --joblog "$W/j.tsv" -- true ::: a b c </dev/null
  expect_rc 0
  sed -n 2p "$W/j.tsv" | grep -q $'\tcause\tinputs$' || fail "no inputs column: $(sed -n 2p "$W/j.tsv")"
  cp "$W/j.tsv" "$W/before.tsv"
  tf run --exec --resume --joblog "$W/j.tsv" -- true ::: a b c </dev/null
  expect_rc 0
  expect_stderr "nothing to resume"
  tf run --exec --resume --joblog "$W/j.tsv" -- true ::: a x c </dev/null
  expect_rc 2
  # Rows are in completion order: the line is that of index 1's row.
  local line
  line=$(awk -F'\t' '$1 == 1 { print NR; exit }' "$W/j.tsv")
  expect_stderr "--resume: joblog '$W/j.tsv' was written for other inputs: task Seq 2 (index 1, line $line) had other inputs"
  cmp -s "$W/j.tsv" "$W/before.tsv" || fail "a refused resume changed the joblog"
  # A joblog from before its identity line said what ran (no runs=): its inputs column says
  # commands, so a worker program does not take its rows for its own (h11b).
  sed '1s/\truns=[^\t]*$//' "$W/j.tsv" >"$W/old.tsv"
  ! head -1 "$W/old.tsv" | grep -q runs= || fail "runs= not removed: $(head -1 "$W/old.tsv")"
  cp "$W/old.tsv" "$W/before.tsv"
  tf run --resume --joblog "$W/old.tsv" --tasks 3 -- "$CLI_WORKER" </dev/null
  expect_rc 2
  expect_stderr "ran its tasks as commands (--exec), this run as a worker program"
  cmp -s "$W/old.tsv" "$W/before.tsv" || fail "a refused resume changed the joblog"
  tf run --exec --resume --joblog "$W/old.tsv" -- true ::: a b c </dev/null  # and --exec still resumes it
  expect_rc 0
  expect_stderr "nothing to resume"
}

no_retries_by_default() {  # --exec: a failed command runs once (GNU parallel's default); --retries N is asked for
  tf run --exec --shell -- 'echo {} >>"'"$W"'/ran"; exit 1' ::: a </dev/null
  expect_rc 1
  [ "$(cat "$W/ran")" = a ] || fail "ran: $(cat "$W/ran")"
  expect_stderr "1 task: 0 succeeded, 1 failed, 0 retries"
  expect_stderr "failed commands were not run again: --exec's default is --retries 0"
  rm "$W/ran"
  tf run --exec --retries 2 --shell -- 'echo {} >>"'"$W"'/ran"; exit 1' ::: a </dev/null
  expect_rc 1
  [ "$(wc -l <"$W/ran")" -eq 3 ] || fail "--retries 2 ran it $(wc -l <"$W/ran") times"
  grep -q "not run again" "$W/stderr" && fail "the default's note with --retries given"
  tf run --tasks 1 -- "$CLI_WORKER" --throw-all </dev/null  # a worker program keeps 2
  expect_stderr "1 task: 0 succeeded, 1 failed, 2 retries"
}

failed_runtime_and_memory() {  # a failed command's joblog row has its runtime; under --mem-limit an allocation failure is `memory`
  # The command runs at least 0.3 s (its own work, not synchronisation) and fails: its row says so.
  tf run --exec --joblog "$W/j.tsv" --shell -- 'sleep 0.3; exit 4' ::: a </dev/null
  expect_rc 1
  awk -F'\t' 'NR == 3 && $5 >= 0.3 && $5 < 60 && $8 == 4 && $10 == "exit"' "$W/j.tsv" | grep -q . ||
    fail "the failed command's row: $(cat "$W/j.tsv")"
  [ -z "${TASKFARM_SANITIZE:-}" ] || { echo "SKIP: --mem-limit (RLIMIT_AS) cannot apply to a sanitizer runtime"; return 0; }
  tf run --exec --mem-limit 400M --joblog "$W/m.tsv" -- "$PYTHON" -c 'bytearray({} * 2**20)' ::: 1 4096 </dev/null
  expect_rc 1
  awk -F'\t' '$1 == 1 && $8 == 1 && $10 == "memory"' "$W/m.tsv" | grep -q . || fail "no memory row: $(cat "$W/m.tsv")"
  awk -F'\t' '$1 == 0 && $7 == "ok"' "$W/m.tsv" | grep -q . || fail "the small allocation failed: $(cat "$W/m.tsv")"
  expect_stderr "command ran out of memory (exited with code 1): $PYTHON -c 'bytearray(4096 * 2**20)' (worker memory limit 400.0 MiB)"
  # Without a limit the same message is just an exit (the runtime's words alone prove nothing).
  tf run --exec --joblog "$W/n.tsv" --shell -- 'echo "MemoryError" >&2; exit 1' ::: a </dev/null
  awk -F'\t' 'NR == 3 && $10 == "exit"' "$W/n.tsv" | grep -q . || fail "without --mem-limit: $(cat "$W/n.tsv")"
}

timeout_kills_the_command() {  # --timeout: TERM to the worker's process group, the command included
  tf run --exec -k -j 2 --timeout 1s --retries 0 --joblog "$W/j.tsv" --shell -- \
    'if [ {} = slow ]; then printf "half of {}"; echo err of {} >&2; echo $$ >"'"$W"'/pid"; exec sleep 100; fi; echo whole {}' \
    ::: slow fast </dev/null
  expect_rc 1
  # What the killed command wrote is printed (as GNU parallel does), and said to be partial; cut
  # mid-line, it ends its line, so that the next task's output starts a line of its own (F41).
  [ "$(cat "$W/stdout")" = $'half of slow\nwhole fast' ] || fail "stdout: $(od -c "$W/stdout" | head -3)"
  expect_stderr "err of slow"
  expect_stderr "taskfarm: the output of index 0 is PARTIAL: its command did not end (it was killed by --timeout)"
  [ "$(grep -c PARTIAL "$W/stderr")" -eq 1 ] || fail "only the killed task is partial"
  expect_stderr "index 0 (attempt 0, slot"
  expect_stderr "timed out"
  awk -F'\t' '$1 == 0 && $10 == "timeout"' "$W/j.tsv" | grep -q . || fail "no timeout row: $(cat "$W/j.tsv")"
  awk -F'\t' '$1 == 1 && $7 == "ok"' "$W/j.tsv" | grep -q . || fail "the other task did not succeed"
  [ -s "$W/pid" ] || fail "the slow command did not start"
  # Its worker was killed with nothing left to do: not said to be replaced (F18).
  expect_stderr "taskfarm: 1 worker died"$'\n'
  ! grep -q replaced "$W/stderr" || fail "a worker is said to be replaced: $(grep replaced "$W/stderr")"
  expect_gone "$(cat "$W/pid")"
  expect_no_segments "$TF_PID"
}

# stall_of ARGS...: starts taskfarm ARGS (with --events) in the background and sets $stall to its
# first stall event (failing after 30 s); the events that follow are read by finish_stalled.
stall_of() {
  local line
  stall=""
  rm -f "$W/ev"
  mkfifo "$W/ev"
  "$TASKFARM" "$@" </dev/null >"$W/ev" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/ev"
  while read -r -t 30 -u 3 line; do
    case $line in *'"event":"stall"'*) stall=$line; break ;; esac
  done
  [ -n "$stall" ] || fail "no stall event within 30 s"
}
finish_stalled() {  # the run ends with exit 0, its one task's output $1 and no segment left
  cat <&3 >"$W/rest"
  wait "$TF_PID"
  TF_RC=$?
  exec 3<&-
  expect_rc 0
  grep -qF "$1" "$W/rest" || fail "the command's output is missing: $(cat "$W/rest")"
  grep -q '"event":"end".*"succeeded":1' "$W/rest" || fail "the run did not complete: $(cat "$W/rest")"
  expect_no_segments "$TF_PID"
}

stopped_command_is_named() {  # a stopped command, not its worker, is named, with the kill -CONT that resumes it (F42)
  local worker cmd stopped
  stall_of run --exec --stall-warning 0.3 --events -- sh -c 'kill -STOP $$; echo resumed $0' ::: a
  worker=$(sed -nE 's/.*"pid":([0-9]+).*/\1/p' <<<"$stall")
  cmd=$(sed -nE 's/.*"task_pid":([0-9]+).*/\1/p' <<<"$stall")
  [ -n "$cmd" ] && [ "$cmd" != "$worker" ] || fail "the stall names no command: $stall"
  grep -q '"stopped":false,"task_pid":'"$cmd"',"task_state":"T","task_stopped":true' <<<"$stall" ||
    fail "the stall does not say the command is stopped: $stall"
  [ "$(cut -d' ' -f3 "/proc/$cmd/stat")" = T ] || fail "pid $cmd is not the stopped process"
  kill -CONT "$cmd"
  finish_stalled "resumed a"
  expect_stderr "taskfarm: slot 0 (pid $worker) has shown no progress for "
  expect_stderr " on task 0; its command (pid $cmd) is stopped (SIGSTOP?): kill -CONT $cmd resumes it; --timeout would"
  # What the command started is stopped (a step of its script): named too, with its own kill -CONT.
  stall_of run --exec --shell --stall-warning 0.3 --events -- 'sh -c "kill -STOP \$\$"; echo resumed {}' ::: b
  cmd=$(sed -nE 's/.*"task_pid":([0-9]+).*/\1/p' <<<"$stall")
  stopped=$(sed -nE 's/.*"stopped_pid":([0-9]+).*/\1/p' <<<"$stall")
  [ -n "$stopped" ] && [ "$stopped" != "$cmd" ] || fail "the stall names no stopped process: $stall"
  grep -q '"task_stopped":false' <<<"$stall" || fail "the command itself is said to be stopped: $stall"
  [ "$(cut -d' ' -f3 "/proc/$stopped/stat")" = T ] || fail "pid $stopped is not the stopped process"
  kill -CONT "$stopped"
  finish_stalled "resumed b"
  expect_stderr "; its command is pid $cmd; pid $stopped in its process group is stopped (SIGSTOP?): kill -CONT $stopped resumes it; --timeout"
}

# next_stall: sets $stall to the next stall event of the run stall_of started (failing after 30 s).
next_stall() {
  local line
  stall=""
  while read -r -t 30 -u 3 line; do
    case $line in *'"event":"stall"'*) stall=$line; break ;; esac
  done
  [ -n "$stall" ] || fail "no further stall event within 30 s"
}
field_of() { sed -nE 's/.*"'"$1"'":([0-9]+).*/\1/p' <<<"$stall"; }

stall_said_again_when_what_is_stopped_changes() {  # a stall is said again after each change of what is stopped
  local first second cmd
  # Two steps of a pipeline stopped: the line names one; once it is resumed, the other (h11b).
  stall_of run --exec --shell --stall-warning 0.3 --events -- \
    'sh -c "kill -STOP \$\$; echo one" | sh -c "kill -STOP \$\$; cat"; echo done {}' ::: b
  first=$(field_of stopped_pid)
  [ -n "$first" ] || fail "the stall names no stopped process: $stall"
  kill -CONT "$first"
  next_stall
  second=$(field_of stopped_pid)
  [ -n "$second" ] && [ "$second" != "$first" ] || fail "the other stopped step is not named: $stall"
  [ "$(cut -d' ' -f3 "/proc/$second/stat")" = T ] || fail "pid $second is not stopped"
  kill -CONT "$second"
  finish_stalled "done b"
  grep -qF "one" "$W/rest" || fail "the pipeline's output is missing: $(cat "$W/rest")"
  expect_stderr "; pid $second in its process group is stopped (SIGSTOP?): kill -CONT $second resumes it"
  # A command that stops itself twice: said stopped twice.
  stall_of run --exec --stall-warning 0.3 --events -- sh -c 'kill -STOP $$; kill -STOP $$; echo resumed $0' ::: a
  cmd=$(field_of task_pid)
  grep -q '"task_stopped":true' <<<"$stall" || fail "the command is not said to be stopped: $stall"
  kill -CONT "$cmd"
  next_stall
  [ "$(field_of task_pid)" = "$cmd" ] && grep -q '"task_stopped":true,"stopped_again":true' <<<"$stall" ||
    fail "the command stopped again is not said to be: $stall"
  kill -CONT "$cmd"
  finish_stalled "resumed a"
  expect_stderr "; its command (pid $cmd) is stopped (SIGSTOP?): kill -CONT $cmd resumes it; it ran and stopped again since the last line"
  # A command stopped after its stall was said (not stopped then): said again, stopped.
  mkfifo "$W/go"
  stall_of run --exec --shell --stall-warning 0.3 --events -- 'read x <"'"$W"'/go"; echo resumed {}' ::: c
  cmd=$(field_of task_pid)
  [ -n "$cmd" ] && grep -q '"task_stopped":false' <<<"$stall" || fail "the first stall is not of a running command: $stall"
  kill -STOP "$cmd"
  next_stall
  [ "$(field_of task_pid)" = "$cmd" ] && grep -q '"task_stopped":true' <<<"$stall" ||
    fail "the command stopped later is not said to be: $stall"
  kill -CONT "$cmd"
  timeout 10 sh -c 'echo go >"$1"' sh "$W/go" || fail "the command did not read its input"
  finish_stalled "resumed c"
}

stall_names_no_process_an_earlier_task_left() {  # h12 F12, h12b N13: not the previous task's stopped process
  local left
  mkfifo "$W/go2"
  stall_of run --exec -j 1 --chunk 1 --stall-warning 0.3 --events -- sh -c '{}' ::: \
    'sleep 1000 & kill -STOP $!; echo $! >"'"$W"'/left"' 'read x <"'"$W"'/go2"; echo second'
  left=$(cat "$W/left")
  grep -q '"index":1' <<<"$stall" || fail "the stall is not of task 1: $stall"
  ! grep -q '"stopped_pid"' <<<"$stall" || fail "task 0's stopped process is named for task 1: $stall (left: $left)"
  kill -KILL "$left"
  timeout 10 sh -c 'echo go >"$1"' sh "$W/go2" || fail "the command did not read its input"
  cat <&3 >"$W/rest"
  wait "$TF_PID"
  TF_RC=$?
  exec 3<&-
  expect_rc 0
  grep -q '"event":"end".*"succeeded":2' "$W/rest" || fail "the run did not complete: $(cat "$W/rest")"
  expect_no_segments "$TF_PID"
}

commands_do_not_inherit_the_channel() {  # fd 3 of a command is not the worker's channel (h12b N4)
  # A command writing to fd 3 corrupted the protocol: another, healthy task was charged, its output lost.
  tf run --exec -j 1 -k -- sh -c 'if [ {} = 2 ]; then echo garbage >&3; fi; echo {}' ::: 1 2 3 4 5 6 </dev/null
  expect_rc 0
  expect_stdout_is '1\n2\n3\n4\n5\n6\n'
  tf run --exec -- sh -c 'ls -l /proc/$$/fd' ::: a </dev/null
  expect_rc 0
  ! grep -q socket "$W/stdout" || fail "a command holds a socket: $(cat "$W/stdout")"
}

worker_crash_retried() {  # the worker of task 3 is SIGKILLed (once) by its command: retried, output whole
  tf run --exec -k -j 2 --chunk 1 --retries 1 --joblog "$W/j.tsv" --shell -- \
    'if [ {} = 3 ] && mkdir "'"$W"'/once" 2>/dev/null; then kill -KILL $PPID; fi; echo task {}' \
    ::: 0 1 2 3 4 5 6 7 </dev/null
  expect_rc 0
  expect_stdout_is 'task 0\ntask 1\ntask 2\ntask 3\ntask 4\ntask 5\ntask 6\ntask 7\n'
  awk -F'\t' '$1 == 3 && $7 == "retried" && $9 == 9 && $10 == "signal"' "$W/j.tsv" | grep -q . ||
    fail "no retried row for the killed worker: $(cat "$W/j.tsv")"
  expect_stderr "1 worker died"  # (replaced unless the other worker ran the rest first)
  expect_no_segments "$TF_PID"
}

resume_after_interrupt() {  # task 5 interrupts the master (SIGINT); --resume runs only what was not done
  local job=(--exec -j 1 --chunk 1 --joblog "$W/j.tsv" --shell --)
  local cmd='echo {} >>"'"$W"'/ran"; if [ {} = 5 ] && mkdir "'"$W"'/once" 2>/dev/null; then kill -INT $(ps -o ppid= -p $PPID); fi'
  tf run "${job[@]}" "$cmd" ::: 0 1 2 3 4 5 6 7 8 9 </dev/null
  expect_rc 130
  local done_before
  done_before=$(awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/j.tsv" | sort -n | tr '\n' ' ')
  # (5 may be done or not; so may 6: the worker may hold it already, and on a loaded machine it
  # can run before the master acts on the signal — the joblog says which, exactly)
  case "$done_before" in "0 1 2 3 4 " | "0 1 2 3 4 5 " | "0 1 2 3 4 5 6 ") ;; *) fail "done before the interruption: $done_before" ;; esac
  tf run --resume "${job[@]}" "$cmd" ::: 0 1 2 3 4 5 6 7 8 9 </dev/null
  expect_rc 0
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/j.tsv" | sort -n | tr '\n' ' ')" = "0 1 2 3 4 5 6 7 8 9 " ] ||
    fail "not every task done exactly once: $(cat "$W/j.tsv")"
  # Each task done before the interruption ran once; the rest ran in the resumed run.
  for k in $done_before; do [ "$(grep -cx "$k" "$W/ran")" -eq 1 ] || fail "task $k ran again"; done
  for k in 6 7 8 9; do [ "$(grep -cx "$k" "$W/ran")" -eq 1 ] || fail "task $k: $(grep -cx "$k" "$W/ran") runs"; done
}

big_output_bounded() {  # 2 x 200 MiB from commands: all of it arrives, no process holds it in memory
  "$PYTHON" - "$TASKFARM" "$W/stderr" "$W/pid" <<'PY' || fail "big output"
import os, resource, subprocess, sys
tf, err, pid_file = sys.argv[1:]
n = 200 << 20
with open(err, "wb") as e:
    p = subprocess.Popen([tf, "run", "--exec", "-k", "--", "sh", "-c", f"head -c {n} /dev/zero", ":::", "a", "b"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=e)
    open(pid_file, "w").write(str(p.pid))
    size = 0
    while chunk := p.stdout.read(1 << 20):
        size += len(chunk)
    rc = p.wait(timeout=50)
assert rc == 0, f"exit {rc}"
assert size == 2 * n, f"{size} bytes of output"
# The largest of every process the run started (master, workers, commands): ru_maxrss of children.
peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
assert peak_mib < 64 or os.environ.get("TASKFARM_SANITIZE"), f"peak RSS {peak_mib:.0f} MiB for 400 MiB of output"
print(f"peak RSS {peak_mib:.0f} MiB for 400 MiB of output")
PY
  local left
  left=$(compgen -G "${TMPDIR:-/tmp}/taskfarm-$(cat "$W/pid")-??????" || true)
  [ -z "$left" ] || fail "spool directory left behind: $left"
}

master_sigkill_leaves_no_command() {  # a SIGKILLed master takes its workers along, and they their commands
  mkdir "$W/tmp"
  "$TASKFARM" run --exec -j 2 --tmpdir "$W/tmp" --shell -- 'echo $$ >"'"$W"'/pid.{}"; exec sleep 100' ::: a b \
    </dev/null >"$W/stdout" 2>"$W/stderr" &
  local master=$!
  BG+=("$master")
  local deadline=$((SECONDS + 20))
  until [ -s "$W/pid.a" ] && [ -s "$W/pid.b" ]; do  # each command says it runs (bounded poll)
    [ $SECONDS -lt $deadline ] || fail "the commands did not start"
    sleep 0.01
  done
  kill -KILL "$master"
  wait "$master" 2>/dev/null
  wait_gone "$(cat "$W/pid.a")" "$(cat "$W/pid.b")"
  # Its spool directory is left behind (and its segments); the next --exec run there removes them.
  [ -n "$(compgen -G "$W/tmp/taskfarm-$master-??????")" ] || fail "no spool directory of the killed master"
  tf run --exec --tmpdir "$W/tmp" -- true ::: x </dev/null
  expect_rc 0
  [ -z "$(ls -A "$W/tmp")" ] || fail "left in --tmpdir: $(ls -A "$W/tmp")"
  expect_no_segments "$master"
}

master_sigkill_kills_the_commands_children() {  # ... and what those commands started (hostile F6)
  # A shell's background job, a double fork: both stay in the worker's process group, which the
  # worker's keeper kills when the worker dies. All of it runs in a session of its own, so what
  # is left in that session after the master's SIGKILL leaked (tests/mpi/mpi_mandelbrot.sh).
  setsid --wait bash -c '
    "$0" run --exec -j 2 --tmpdir "$1" -- sh -c "sleep 30 & (sleep 31 &); echo >\"$1/started.\$1\"; sleep 32" sh {} \
      ::: a b </dev/null >"$1/stdout" 2>"$1/stderr" &
    master=$!
    deadline=$((SECONDS + 20))
    until [ -e "$1/started.a" ] && [ -e "$1/started.b" ]; do  # each command says it runs (bounded poll)
      [ $SECONDS -lt $deadline ] || { echo "the commands did not start" >&2; exit 91; }
      sleep 0.01
    done
    kill -KILL $master
    wait $master 2>/dev/null
    sid=$(ps -o sid= -p $$)
    deadline=$((SECONDS + 10))
    while :; do  # (this shell and its own children, the ps, excepted; a leaked process is an orphan)
      ps -e -o sid=,pid=,ppid=,stat=,args= >"$1/ps.txt"
      left=$(awk -v s="$sid" -v me=$$ "\$1 == s && \$2 != me && \$3 != me && \$4 !~ /^Z/" "$1/ps.txt")
      [ -n "$left" ] || exit 0
      [ $SECONDS -lt $deadline ] || { echo "left running 10 s after the master was SIGKILLed:" >&2; echo "$left" >&2; exit 90; }
      sleep 0.05
    done' "$TASKFARM" "$W"
  local rc=$?
  [ $rc -eq 0 ] || fail "exit $rc (see above)"
}

gzip_equals_serial() {  # 50 small files through gzip -c: byte for byte the serial loop's output
  mkdir "$W/files"
  for k in $(seq 50); do seq "$k" >"$W/files/f$k.txt"; done
  local files=("$W"/files/*.txt)
  for f in "${files[@]}"; do gzip -c "$f"; done >"$W/serial.gz"
  tf run --exec -k -j 2 -- gzip -c ::: "${files[@]}" </dev/null
  expect_rc 0
  cmp -s "$W/serial.gz" "$W/stdout" || fail "gzip output differs from the serial loop's"
}

not_a_worker_program_says_exec() {  # GNU parallel habits without --exec: told what to add
  echo hi | "$TASKFARM" run -j 2 -- echo {} >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  expect_rc 3
  expect_stderr "echo exited with code 0 before starting the taskfarm protocol: it is not a worker program (use --exec to run a command per task)"
  # What it printed is no task's output: on stderr (forwarded, and again in the failure's tail).
  [ ! -s "$W/stdout" ] || fail "a non-worker's print on stdout: $(cat "$W/stdout")"
  [ "$(grep -c '^{}$' "$W/stderr")" -le 2 ] || fail "echo {} was started more than once: $(cat "$W/stderr")"
  # The first exit before the handshake ends the run: never started again after it. Started
  # once when it exits within the probe's 50 ms grace (design §13), but a loaded machine can
  # take longer to run `sh`, and then the other -j - 1 start too (the Dispatcher tests hold
  # the grace itself, without timing): at most -j starts here, none after the first exit.
  tf run -j 4 --tasks 8 -- sh -c 'echo started >>"$0"' "$W/starts" </dev/null
  expect_rc 3
  expect_stderr "sh exited with code 0 before starting the taskfarm protocol: it is not a worker program"
  [ "$(wc -l <"$W/starts")" -le 4 ] || fail "the non-worker program was started $(wc -l <"$W/starts") times"
  expect_no_segments "$TF_PID"
  tf run ::: a b c </dev/null
  expect_rc 2
  expect_stderr "':::' belongs after the command: taskfarm run --exec [options] -- COMMAND ::: VALUES..."
  tf run --tasks 2 -- echo ::: a b </dev/null
  expect_rc 2
  expect_stderr "add --exec"
  tf run --exec --tasks 2 --output "$W/o.npy" --dtype f8 -- echo </dev/null
  expect_rc 2
  expect_stderr "--output with --exec"
  tf run --exec -- no-such-command-anywhere ::: a </dev/null
  expect_rc 2
  expect_stderr "command 'no-such-command-anywhere' not found in PATH"
  tf run --shell --tasks 2 -- "$CLI_WORKER" </dev/null
  expect_rc 2
  expect_stderr "--shell needs --exec"
}


keep_order_resume_after_sigkill() {  # -k: a task held for order is logged once printed; --resume prints it (F9)
  local cmd='if [ {} = 1 ] && [ ! -e "'"$W"'/open" ]; then exec cat "'"$W"'/gate" >/dev/null; fi; echo out{}'
  local job=(--exec -k -j 2 --chunk 1 --joblog "$W/k.tsv" --events --shell -- "$cmd" ::: 1 2 3 4 5 6)
  mkfifo "$W/gate"
  kill_while_held "2 3 4 5" "${job[@]}"  # done, held behind task 0, which waits at the gate
  [ -z "$(awk -F'\t' 'NR > 2 && $7 == "ok"' "$W/k.tsv")" ] || fail "joblog says done what was never printed: $(cat "$W/k.tsv")"
  touch "$W/open"
  tf run --resume "${job[@]}"
  expect_rc 0
  expect_outputs_once 'out1\nout2\nout3\nout4\nout5\nout6\n' "$W/events.killed" "$W/stdout"
}

full_tmpdir_stops_the_run() {  # a spool write that fails is never silent: the task fails, the run stops, exit 102 (F3)
  # A 64 KiB tmpfs as --tmpdir, mounted in a user and mount namespace of the run's own.
  unshare -rm true 2>/dev/null || { echo "no user namespaces here: skipped"; exit 77; }
  mkdir "$W/small"
  local cmd='if [ {} = 1 ]; then echo small; else echo begin {}; head -c 70000 /dev/zero | tr "\0" x; echo; echo done {}; fi'
  unshare -rm sh -c 'mount -t tmpfs -o size=64k taskfarm-test "$1" || exit 77; shift; exec "$@"' sh "$W/small" \
    "$TASKFARM" run --exec -k -j 1 --tmpdir "$W/small" --shell -- "$cmd" ::: 1 2 3 4 </dev/null >"$W/stdout" 2>"$W/stderr"
  TF_RC=$?
  [ "$TF_RC" -ne 77 ] || { echo "cannot mount a tmpfs here: skipped"; exit 77; }
  expect_rc 102
  expect_stderr "taskfarm: stopped: --tmpdir $W/small is full (No space left on device): the stdout of index 1 could not be written whole"
  expect_stderr "taskfarm: the output of index 1 is PARTIAL: --tmpdir $W/small is full"
  # Task 1 whole, task 2 cut where the disk was full (and said so), nothing of the tasks after.
  [ "$(head -2 "$W/stdout")" = "$(printf 'small\nbegin 2')" ] || fail "stdout starts $(head -c 100 "$W/stdout")"
  ! grep -q "done\|begin [34]" "$W/stdout" || fail "stdout has output of tasks after the full disk"
}

stdout_cut_midway_is_partial() {  # standard output refusing a task's output midway: that task is said PARTIAL (h12 F16)
  command -v prlimit >/dev/null || { echo "no prlimit here: skipped"; exit 77; }
  mkfifo "$W/gate"
  local cmd='if [ {} = 0 ]; then : >"'"$W"'/started"; cat "'"$W"'/gate" >/dev/null; fi; head -c 3000 /dev/zero | tr "\0" {}; echo'
  # (The limit is on every file the master writes; its stderr stays far below it.)
  "$TASKFARM" run --exec -k -j 1 --chunk 1 --shell -- "$cmd" ::: 0 1 2 </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  # Once task 0 runs (the master's shared segments are made: they would not fit under the limit).
  local i
  for ((i = 0; i < 300; i++)); do [ -e "$W/started" ] && break; read -r -t 0.1 <> <(:) || true; done
  [ -e "$W/started" ] || fail "task 0 did not start within 30 s"
  prlimit --pid "$TF_PID" --fsize=5000:5000 || fail "prlimit failed"
  : >"$W/gate"  # task 0 goes on
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 102
  expect_stderr "taskfarm: the output of index 1 is PARTIAL: standard output could not take it whole (File too large)"
  [ "$(wc -c <"$W/stdout")" -eq 5000 ] || fail "stdout holds $(wc -c <"$W/stdout") bytes"
  ! grep -q "index 0 is PARTIAL" "$W/stderr" || fail "task 0, whole, is said to be PARTIAL"
}

spool_file_removed_is_lost_output() {  # output gone from the spool meanwhile is lost, not "printed nothing" (F17)
  # Tasks 2 and 3 are done, their output held for order behind task 0 (waiting at the gate);
  # then 2.out is removed and 3.out emptied, as a tmp cleaner or a user's rm would.
  local cmd='if [ {} = 0 ]; then cat "'"$W"'/gate" >/dev/null; fi; echo out{}'
  local job=(--exec -k -j 2 --chunk 1 --tmpdir "$W/tmp" --joblog "$W/j.tsv" --shell -- "$cmd" ::: 0 1 2 3)
  mkdir "$W/tmp"
  mkfifo "$W/gate"
  "$TASKFARM" run "${job[@]}" </dev/null >"$W/stdout" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  local deadline=$((SECONDS + 20))
  until [ -s "$(echo "$W"/tmp/taskfarm-*/2.out)" ] && [ -s "$(echo "$W"/tmp/taskfarm-*/3.out)" ]; do
    [ "$SECONDS" -lt "$deadline" ] || fail "tasks 2 and 3 never left their output in the spool"
    sleep 0.01
  done
  local spool
  spool=$(echo "$W"/tmp/taskfarm-*)
  rm "$spool/2.out"
  : >"$spool/3.out"
  timeout 20 sh -c ': >"$1"' sh "$W/gate" || fail "task 0 does not wait at the gate"
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 102
  expect_stdout_is 'out0\nout1\n'
  expect_stderr "taskfarm: the output of index 2 is PARTIAL: its stdout file $spool/2.out was removed while the run held it (5 bytes written)"
  expect_stderr "taskfarm: the output of index 3 is PARTIAL: its stdout file $spool/3.out was cut to 0 bytes while the run held it (5 bytes written)"
  expect_stderr "taskfarm: stopped: the output of index 2 was lost: its stdout file $spool/2.out was removed"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/j.tsv" | sort | tr '\n' ' ')" = "0 1 " ] ||
    fail "joblog says done what was lost: $(cat "$W/j.tsv")"
  tf run --resume "${job[@]}"  # the lost ones run again
  expect_rc 0
  expect_stdout_is 'out2\nout3\n'
}

# line_buffer_run ARGS...: taskfarm run --exec --line-buffer ARGS in the background, its stdout
# on fd 3 (a FIFO) for read_line; the gates g1, g2 made (FIFOs the commands wait on).
line_buffer_run() {
  mkfifo "$W/ev" "$W/g1" "$W/g2"
  "$TASKFARM" run --exec --line-buffer "$@" </dev/null >"$W/ev" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/ev"
}
# expect_line TEXT: the next line of the run's stdout is TEXT (deadline 20 s).
expect_line() {
  local line
  read -r -t 20 -u 3 line || fail "no line '$1' from the run (output not passed on as it comes?)"
  [ "$line" = "$1" ] || fail "line '$line', expected '$1'"
}
open_gate() { timeout 20 sh -c 'echo go >"$1"' sh "$W/$1" || fail "nobody waits at gate $1"; }
expect_run_ends() {
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 0
  local rest
  rest=$(timeout 20 cat <&3) || fail "stdout does not end"
  [ -z "$rest" ] || fail "more output: $rest"
  exec 3<&-
}

line_buffer_passes_lines_as_they_come() {  # --line-buffer: whole lines, live, never a cut one (issue 13)
  # Task 1 has written "first" and half a line and waits; task 2 prints after the test read "first".
  line_buffer_run -j 2 --shell -- \
    'if [ {} = 1 ]; then printf "first\npar"; read x <"'"$W"'/g1"; echo tial; else read x <"'"$W"'/g2"; echo second; fi' ::: 1 2
  expect_line first
  open_gate g2
  expect_line second  # not "parsecond": a line is printed once it is whole
  open_gate g1
  expect_line partial
  expect_run_ends
  # Lines written in pieces by two tasks at once: each line whole, each task's in order.
  tf run --exec --line-buffer -j 2 --shell -- \
    'i=0; while [ $i -lt 300 ]; do printf "{}-$i-"; printf "end\n"; i=$((i + 1)); done' ::: a b </dev/null
  expect_rc 0
  [ "$(grep -c . "$W/stdout")" -eq 600 ] || fail "$(grep -c . "$W/stdout") lines"
  for t in a b; do
    [ "$(grep "^$t-" "$W/stdout" | tr '\n' ' ')" = "$(seq -f "$t-%g-end" 0 299 | tr '\n' ' ')" ] ||
      fail "task $t's lines cut or out of order: $(grep -v '^[ab]-[0-9]*-end$' "$W/stdout" | head -3)"
  done
}

line_buffer_keep_order_prints_the_oldest_live() {  # -k --line-buffer: the oldest task live, the later ones in turn
  line_buffer_run -k -j 2 --shell -- \
    'if [ {} = 1 ]; then echo a1; read x <"'"$W"'/g1"; echo a2; else echo b1; echo b2; fi' ::: 1 2
  expect_line a1
  open_gate g1
  expect_line a2
  expect_line b1
  expect_line b2
  expect_run_ends
  tf run --line-buffer --tasks 2 -- "$CLI_WORKER" </dev/null
  expect_rc 2
  expect_stderr "--line-buffer needs --exec"
  tf run --exec --line-buffer --events -- echo ::: a </dev/null
  expect_rc 2
  expect_stderr "--line-buffer with --events"
}

# unread_stdout ARGS...: runs taskfarm ARGS in the background with its stdout a FIFO that the
# test holds open on fd 3 and does not read (a pager nobody scrolls, h12 F17).
unread_stdout() {
  mkfifo "$W/out"
  "$TASKFARM" "$@" </dev/null >"$W/out" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/out"
}
# until_there FILE [TEXT]: waits (deadline 30 s) until FILE exists, or holds TEXT.
until_there() {
  local i
  for ((i = 0; i < 300; i++)); do
    if [ $# -eq 1 ]; then [ -s "$1" ] && return 0; else grep -qF -- "$2" "$1" 2>/dev/null && return 0; fi
    read -r -t 0.1 <> <(:) || true
  done
  fail "$1${2:+ does not say '$2'}: not there after 30 s"
}
# until_workers_gone CONDITION: waits (deadline 30 s) until CONDITION (shell, true once the run
# has begun) holds and the master has no worker left: every task done, the master waits for its
# reader alone.
until_workers_gone() {
  local i
  for ((i = 0; i < 300; i++)); do
    eval "$1" && [ -z "$(pgrep -P "$TF_PID")" ] && return 0
    read -r -t 0.1 <> <(:) || true
  done
  fail "the workers did not end within 30 s"
}
# read_out: reads the rest of the run's stdout into $W/stdout (deadline 30 s), then its status.
read_out() {
  timeout 30 cat <&3 >"$W/stdout" || fail "stdout does not end"
  exec 3<&-
  wait "$TF_PID"
  TF_RC=$?
}

unread_stderr_times_out_a_hung_task() {  # 2>&1 into an unread pipe: the workers' forwarded stderr does not block the run
  mkfifo "$W/out"
  # Each worker says 85 KB on stderr before run_worker (more than a pipe holds); task 1 hangs.
  "$TASKFARM" run --tasks 4 -j 2 --timeout 1s --retries 0 --joblog "$W/j.tsv" -- sh -c \
    'i=0; while [ $i -lt 5000 ]; do echo "worker noise $i" >&2; i=$((i + 1)); done; exec "$0" --print --block-at 1' \
    "$CLI_WORKER" </dev/null >"$W/out" 2>&1 &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/out"
  until_there "$W/j.tsv" "timeout"
  read_out
  expect_rc 1
  grep -q "timed out" "$W/stdout" || fail "no timeout said: $(tail -3 "$W/stdout")"
  [ "$(grep -c '^worker noise' "$W/stdout")" -ge 10000 ] || fail "the workers' stderr was not forwarded whole"
}

unread_stdout_of_another_user() {  # a pipe the master may not open anew (sudo -u): made non-blocking itself (h13 F12)
  [ "$(id -u)" -eq 0 ] && command -v runuser >/dev/null || { echo "not root, or no runuser: skipped"; exit 77; }
  chmod 755 "$W" && mkdir -m 777 "$W/nobody"
  mkfifo "$W/out"
  runuser -u nobody -- "$TASKFARM" run --exec -j 2 --timeout 1s --joblog "$W/nobody/j.tsv" --shell -- \
    'if [ {} = 1 ]; then exec sleep 60; fi; head -c 300000 /dev/zero' ::: 0 1 </dev/null >"$W/out" 2>"$W/stderr" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/out"
  until_there "$W/nobody/j.tsv" "timeout"
  read_out
  expect_rc 1
  [ "$(wc -c <"$W/stdout")" -eq 300000 ] || fail "stdout holds $(wc -c <"$W/stdout") bytes"
  # The same with stderr such a pipe (h13b N2).
  mkfifo "$W/err"
  runuser -u nobody -- "$TASKFARM" run --exec -j 2 --timeout 1s --joblog "$W/nobody/j2.tsv" --shell -- \
    'if [ {} = 1 ]; then exec sleep 60; fi; head -c 300000 /dev/zero >&2' ::: 0 1 </dev/null >/dev/null 2>"$W/err" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/err"
  until_there "$W/nobody/j2.tsv" "timeout"
  read_out
  expect_rc 1
  [ "$(tr -d '\0' <"$W/stdout" | grep -c 'timed out')" -eq 1 ] || fail "stderr: $(tr -d '\0' <"$W/stdout" | head -3)"
}

# ok_rows: the indices the joblog $W/j.tsv records done, sorted.
ok_rows() { awk -F'\t' 'NR > 2 && $7 == "ok" { print $1 }' "$W/j.tsv" | sort -n; }

unread_stdout_stop_after_the_tasks() {  # SIGTERM once the tasks are done, their output waiting: 143, cut task PARTIAL (h13 F3, F6)
  local cmd='head -c 100000 /dev/zero | tr "\0" {}; echo'
  unread_stdout run --exec -j 2 --joblog "$W/j.tsv" --shell -- "$cmd" ::: 1 2 3 4 5 6
  # Every task done: the master has no worker left (it waits for its reader alone).
  until_workers_gone '[ -s "$W/j.tsv" ]'
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  read_out
  expect_rc 143
  expect_stderr "interrupted by SIGTERM"
  expect_stderr "is PARTIAL: standard output had not taken all of it when the run ended"
  # What went out whole is what the joblog records; --resume prints the rest, each task once.
  awk 'length($0) == 100000 { print substr($0, 1, 1) }' "$W/stdout" | sort -n >"$W/whole"
  [ "$(ok_rows | tr '\n' ' ')" = "$(awk '{ print $1 - 1 }' "$W/whole" | tr '\n' ' ')" ] ||
    fail "printed whole: $(tr '\n' ' ' <"$W/whole"); recorded: $(ok_rows | tr '\n' ' ')"
  tf run --resume --exec -j 2 --joblog "$W/j.tsv" --shell -- "$cmd" ::: 1 2 3 4 5 6 </dev/null
  expect_rc 0
  awk 'length($0) == 100000 { print substr($0, 1, 1) }' "$W/stdout" >>"$W/whole"
  [ "$(sort -n "$W/whole" | tr '\n' ' ')" = "1 2 3 4 5 6 " ] || fail "tasks printed whole: $(sort -n "$W/whole" | tr '\n' ' ')"
}

unread_stdout_keep_order_stop_records_what_went_out() {  # -k, a stop, an unread pipe: the joblog is exact (h13 F2)
  unread_stdout run --tasks 100000 -j 2 -k --stall-warning 1s --joblog "$W/j.tsv" -- "$CLI_WORKER" --print
  until_there "$W/stderr" "(a pager not read?): no new task starts until it takes more"
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  read_out
  expect_rc 143
  # (Its last line may be cut: only lines that end are whole.)
  whole_lines() { "$PYTHON" -c 'import sys; print("".join(l[5:] + "\n" for l in open(sys.argv[1], errors="replace").read().split("\n")[:-1]), end="")' "$1"; }
  whole_lines "$W/stdout" >"$W/whole"
  [ "$(ok_rows | md5sum)" = "$(md5sum <"$W/whole")" ] ||
    fail "printed whole $(wc -l <"$W/whole") tasks, the joblog records $(ok_rows | wc -l)"
  tf run --resume --tasks 100000 -j 2 -k --joblog "$W/j.tsv" -- "$CLI_WORKER" --print </dev/null
  expect_rc 0
  whole_lines "$W/stdout" >>"$W/whole"
  [ "$(sort -n "$W/whole" | md5sum)" = "$(seq 0 99999 | md5sum)" ] || fail "not every task printed whole exactly once"
}

unread_stderr_sigterm_ends_the_run() {  # 2>&1 into an unread pipe: one SIGTERM ends the run, summary or not (h13 F1)
  mkfifo "$W/out"
  # Task 0's 200 KB of stderr fill the pipe; task 1 runs until the stop.
  "$TASKFARM" run --exec -j 2 --shell -- \
    'if [ {} = 1 ]; then echo $$ >"'"$W"'/pid"; exec sleep 60; fi; head -c 200000 /dev/zero | tr "\0" e >&2; echo >"'"$W"'/done0"' \
    ::: 0 1 </dev/null >"$W/out" 2>&1 &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/out"
  until_there "$W/pid"
  until_there "$W/done0"  # (its stderr, printed once the master has its result, fills the pipe)
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID" "$(cat "$W/pid")"
  read_out
  expect_rc 143
  expect_no_segments "$TF_PID"
}

unread_stderr_stop_records_what_went_out() {  # --exec: a task is recorded once its stderr is out too (h13b N1)
  mkfifo "$W/err"
  local cmd='head -c 100000 /dev/zero | tr "\0" {} >&2; echo >&2; echo out {}'
  "$TASKFARM" run --exec -j 2 --joblog "$W/j.tsv" --shell -- "$cmd" ::: 1 2 3 4 5 6 </dev/null >"$W/stdout" 2>"$W/err" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/err"
  until_workers_gone '[ -s "$W/stdout" ]'
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  timeout 30 cat <&3 >"$W/stderr" || fail "stderr does not end"
  exec 3<&-
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 143
  # Only the tasks whose stderr went out whole are done (their stdout waits behind it).
  awk 'length($0) == 100000 { print substr($0, 1, 1) - 1 }' "$W/stderr" | sort -n >"$W/whole"
  [ "$(ok_rows | tr '\n' ' ')" = "$(tr '\n' ' ' <"$W/whole")" ] ||
    fail "stderr out whole: $(tr '\n' ' ' <"$W/whole"); recorded: $(ok_rows | tr '\n' ' ')"
  [ "$(wc -l <"$W/whole")" -lt 6 ] || fail "all of the stderr went out: the test proves nothing"
}

unread_stderr_bounds_forwarded_lines() {  # a stderr nobody reads: forwarded worker stderr past 16 MiB is counted, not kept (h13b N4)
  mkfifo "$W/err"
  # (--start-timeout: the 30 MB come before run_worker; under ASan and load they took past 5 s,
  # the worker was killed as a failed start and, the run held, not replaced until stderr was read.)
  "$TASKFARM" run --tasks 2 -j 2 --start-timeout 60s -- sh -c 'head -c 30000000 /dev/zero | tr "\0" e | fold -w 100 >&2; : >"'"$W"'/said.$$"; exec "$0" --print' \
    "$CLI_WORKER" </dev/null >"$W/stdout" 2>"$W/err" &
  TF_PID=$!
  BG+=("$TF_PID")
  exec 3<"$W/err"
  # Both workers wrote all of their stderr (the master took it: a pipe holds 64 KiB) before any
  # of it is read. (Not "until the tasks are done": 16 MiB waiting holds the run, so whether the
  # second task was handed out before that is a matter of timing — under ASan it was not.)
  local i
  for ((i = 0; i < 300; i++)); do
    [ "$(ls "$W" | grep -c '^said\.')" -eq 2 ] && break
    read -r -t 0.1 <> <(:) || true
  done
  [ "$i" -lt 300 ] || fail "the workers did not write their stderr within 30 s"
  timeout 30 cat <&3 >"$W/stderr" || fail "stderr does not end"
  exec 3<&-
  wait "$TF_PID"
  TF_RC=$?
  expect_rc 0
  [ "$(sort "$W/stdout" | tr '\n' ' ')" = "task 0 task 1 " ] || fail "stdout: $(tr '\n' ' ' <"$W/stdout")"
  expect_stderr "bytes of the workers' stderr not shown: stderr took nothing meanwhile"
  [ "$(wc -c <"$W/stderr")" -lt 20000000 ] || fail "$(wc -c <"$W/stderr") bytes of stderr kept"
}

unread_stdout_keeps_large_outputs_as_ranges() {  # a worker program's large output waits as a range of its memfd, not a copy (h13 F10, h14 F1)
  local order anon bytes=50000000
  # (Under a sanitizer RSS is not checked: 20 MB, past the 16 MiB that holds the run, will do.)
  [ -z "${TASKFARM_SANITIZE:-}" ] || bytes=20000000
  for order in "" -k; do  # (with -k a result also waits for its turn: in its memfd too)
    unread_stdout run --tasks 3 -j 2 $order --stall-warning 1s -- "$HOSTILE_WORKER" --mode flood-stdout --at all --bytes $bytes
    until_there "$W/stderr" "no new task starts until it takes more"  # (held: 50 MB or more waits)
    anon=$(awk '/^RssAnon:/ { print $2 }' "/proc/$TF_PID/status")
    read_out
    expect_rc 0
    [ "$(wc -c <"$W/stdout")" -eq $((3 * bytes)) ] || fail "${order:-unordered}: stdout holds $(wc -c <"$W/stdout") bytes, not $((3 * bytes))"
    # (A sanitizer's allocator inflates RSS: there the bound means nothing; copied, it was 50 MB more.)
    [ -n "${TASKFARM_SANITIZE:-}" ] || [ "$anon" -lt 32768 ] ||
      fail "${order:-unordered}: the master's RssAnon was $anon kB while 50 MB or more waited for the reader: copied, not kept"
    rm -f "$W/out" "$W/stderr"
  done
}

stderr_that_cannot_be_written_stops_the_run() {  # --exec: a command's stderr lost is output lost: exit 102 (h14 F14)
  local rc=0
  "$TASKFARM" run --exec -j 2 --joblog "$W/j.tsv" --tasks 20 -- sh -c 'echo out {}; echo err {} >&2' </dev/null >"$W/stdout" 2>/dev/full || rc=$?
  [ "$rc" -eq 102 ] || fail "exit $rc with stderr on /dev/full, not 102"
  [ "$(ok_rows | wc -l)" -lt 20 ] || fail "every task recorded done, though no stderr went out"
  # The resume runs what the joblog does not record; every task's stdout is out in the end.
  tf run --resume --exec -j 2 --joblog "$W/j.tsv" --tasks 20 -- sh -c 'echo out {}; echo err {} >&2' </dev/null
  expect_rc 0
  [ "$(ok_rows | wc -l)" -eq 20 ] || fail "the resume left tasks unrecorded"
}

unread_stdout_line_buffer_stop_blames_no_one() {  # --line-buffer, a stop, an unread pipe: no "file removed" for what waited (h14 F13)
  unread_stdout run --exec --line-buffer -j 2 --stall-warning 1s --shell -- ': {}; head -c 1000000 /dev/zero | tr "\0" x | fold -w 99' ::: $(seq 0 99)
  until_there "$W/stderr" "no new task starts until it takes more"
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  read_out
  expect_rc 143
  expect_stderr "standard output had not taken all of it"
  ! grep -q "was removed while the run held it" "$W/stderr" || fail "a spool file said removed: $(grep -m1 removed "$W/stderr")"
}

unread_stdout_stop_prints_no_more_stderr() {  # -k, stdout unread, stderr a file, a stop: the tasks not printed print no stderr either (h14 F9)
  unread_stdout run --exec -k -j 2 --stall-warning 1s --joblog "$W/j.tsv" --shell -- 'head -c 1000000 /dev/zero | tr "\0" o; echo err {} >&2' ::: $(seq 0 499)
  until_there "$W/stderr" "no new task starts until it takes more"
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  read_out
  expect_rc 143
  local said
  said=$(grep -c '^err ' "$W/stderr" || true)
  # Each task's stderr comes after its stdout: only tasks printed (recorded), and the one cut, may show it.
  [ "$said" -le $(($(ok_rows | wc -l) + 1)) ] || fail "$said tasks' stderr printed, $(ok_rows | wc -l) tasks recorded done"
}

unread_stdout_times_out_a_hung_task() {  # while nobody reads stdout, --timeout still kills (h12 F17)
  unread_stdout run --exec -j 2 --timeout 1s --shell -- \
    'if [ {} = 1 ]; then echo $$ >"'"$W"'/pid"; exec sleep 60; fi; head -c 300000 /dev/zero' ::: 0 1
  until_there "$W/pid"
  # The master blocked in write(2) with task 0's 300000 bytes did nothing else: no timeout.
  wait_gone "$(cat "$W/pid")"
  read_out
  expect_rc 1
  [ "$(wc -c <"$W/stdout")" -eq 300000 ] || fail "stdout holds $(wc -c <"$W/stdout") bytes"
  expect_stderr "index 1 (attempt 0"
  expect_stderr "timed out"
  expect_no_segments "$TF_PID"
}

unread_stdout_sigterm_ends_the_run() {  # SIGTERM is acted on; what stdout did not take is not recorded done
  local cmd='if [ {} = 1 ] && [ ! -e "'"$W"'/resumed" ]; then echo $$ >"'"$W"'/pid"; exec sleep 60; fi; head -c 300000 /dev/zero | tr "\0" {}'
  unread_stdout run --exec -j 2 --joblog "$W/j.tsv" --shell -- "$cmd" ::: 0 1
  until_there "$W/pid"
  until_there "$W/j.tsv" "outcome"
  kill -TERM "$TF_PID"
  # It ends 1 s after the stop although nobody reads (it waited for the reader before).
  wait_gone "$TF_PID" "$(cat "$W/pid")"
  read_out
  expect_rc 143
  expect_stderr "taskfarm: standard output had not taken all of it 1.0 s after the stop: the output it had not taken was not printed"
  expect_stderr "the joblog records 0 of the 1 tasks that succeeded; the other 1 run again on --resume"
  [ "$(wc -c <"$W/stdout")" -lt 300000 ] || fail "all of task 0's output was taken"
  : >"$W/resumed"
  tf run --resume --exec -j 2 --joblog "$W/j.tsv" --shell -- "$cmd" ::: 0 1 </dev/null
  expect_rc 0
  # Both again: task 0's output was not all taken, task 1 was interrupted.
  [ "$(tr -d 0 <"$W/stdout" | wc -c)" -eq 300000 ] && [ "$(tr -d 1 <"$W/stdout" | wc -c)" -eq 300000 ] ||
    fail "the resumed run printed $(wc -c <"$W/stdout") bytes"
  [ "$(awk -F'\t' 'NR > 2 && $7 == "ok"' "$W/j.tsv" | wc -l)" -eq 2 ] || fail "joblog: $(cat "$W/j.tsv")"
}

unread_stdout_holds_new_work() {  # no new task starts while 64 MiB of output waits; all of it comes out after
  unread_stdout run --exec -j 2 --stall-warning 2s --shell -- \
    'head -c 524288 /dev/zero; echo {} >>"'"$W"'/ran"' ::: $(seq 300)
  until_there "$W/stderr" "(a pager not read?): no new task starts until it takes more"
  local ran
  ran=$(wc -l <"$W/ran")
  # 128 tasks' output is the bound; what the workers held when it was reached runs on.
  [ "$ran" -lt 250 ] || fail "$ran tasks ran while their output waited"
  read_out
  expect_rc 0
  [ "$(wc -l <"$W/ran")" -eq 300 ] || fail "$(wc -l <"$W/ran") tasks ran"
  [ "$(wc -c <"$W/stdout")" -eq $((300 * 524288)) ] || fail "stdout holds $(wc -c <"$W/stdout") bytes"
  [ "$(tr -d '\0' <"$W/stdout" | wc -c)" -eq 0 ] || fail "stdout holds other bytes"
}

unread_stdout_worker_program_stops_on_sigterm() {  # a worker program's text output: held in memory, bounded, SIGTERM heard
  # 100 MB of lines of 2000 bytes: 16 MiB of text (the bound) waits after some 8000 tasks.
  head -c 2000 /dev/zero | tr '\0' x >"$W/line"
  awk -v line="$(cat "$W/line")" 'BEGIN { for (i = 0; i < 50000; i++) print line }' >"$W/lines"
  unread_stdout run --input-lines "$W/lines" -j 2 --stall-warning 1s -- "$CLI_WORKER" --print
  until_there "$W/stderr" "(a pager not read?): no new task starts until it takes more"
  local rss
  rss=$(awk '/^RssAnon/ { print $2 }' "/proc/$TF_PID/status")  # (the input's segment is shared memory)
  # (A sanitizer's runtime keeps freed memory in quarantine: the bound is checked without one.)
  [ "${rss:-0}" -lt 60000 ] || [ -n "${TASKFARM_SANITIZE:-}" ] || fail "the master holds $rss kB waiting for its stdout"
  kill -TERM "$TF_PID"
  wait_gone "$TF_PID"
  read_out
  expect_rc 143
  expect_stderr "interrupted by SIGTERM"
  expect_no_segments "$TF_PID"
}

"$@"
