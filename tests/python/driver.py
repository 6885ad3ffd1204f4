"""End-to-end tests of Python kernels: `taskfarm run -- python3 worker.py ...` (tests/python/
worker.py), each result compared with the serial NumPy loop bit for bit.

    driver.py CASE      (ctest runs one case per test; CASE is a function below)

Needs TASKFARM (the binary), PY_WORK (a scratch folder) and PYTHONPATH reaching the built
package. Every run is checked for what it leaves: no /dev/shm segment of its master, no worker
alive after it. A case's folder is removed when it passes.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
import worker  # noqa: E402  (row_value, blur: the serial loop's kernels)

TASKFARM = os.environ["TASKFARM"]
WORKER = [sys.executable, os.path.join(HERE, "worker.py")]
# The worker greets at `import taskfarm`, before NumPy's import (seconds on a loaded machine):
# the default --start-timeout (5 s) covers only Python's own start (docs/python.md, Start-up).
START = []
W = ""  # this case's folder


class Failed(Exception):
    pass


def check(cond, what, run=None):
    if not cond:
        raise Failed(what + (f"\n--- exit {run.rc}\n--- stdout:\n{run.out[:3000]}\n--- stderr:\n{run.err[:4000]}"
                             if run else ""))


class Run:
    def __init__(self, rc, out, err, pid):
        self.rc, self.out, self.err, self.pid = rc, out, err, pid


def taskfarm(*args, worker_args=(), timeout=60, start=START, program=WORKER):
    """Runs `taskfarm run ARGS -- python3 worker.py WORKER_ARGS`; checks what it leaves behind."""
    cmd = [TASKFARM, "run", *start, *map(str, args), "--", *program, *map(str, worker_args)]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace")
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failed(f"taskfarm did not end within {timeout} s\n{err[-3000:]}")
    run = Run(p.returncode, out, err, p.pid)
    expect_nothing_left(run)
    return run


def expect_nothing_left(run, joblog=None):
    left = [n for n in os.listdir("/dev/shm") if n.startswith(f"taskfarm-{run.pid}-")]
    check(not left, f"segments left behind by master {run.pid}: {left}", run)
    if joblog:
        for pid in joblog_pids(joblog):
            try:
                with open(f"/proc/{pid}/stat") as f:
                    state = f.read().rsplit(")", 1)[1].split()[0]
            except FileNotFoundError:
                continue
            check(state == "Z", f"worker {pid} outlived its master (state {state})", run)


def joblog_rows(path):
    with open(path) as f:
        lines = [line.rstrip("\n").split("\t") for line in f if not line.startswith("#")]
    header, rows = lines[0], lines[1:]
    return [dict(zip(header, r)) for r in rows]


def joblog_pids(path):
    return {int(r["pid"]) for r in joblog_rows(path) if r.get("pid", "").isdigit()}


def expect_rows(path, n, missing=()):
    """The (n, 4) output equals the serial loop's rows, except the `missing` ones (still 0)."""
    got = np.load(path)
    want = np.array([worker.row_value(i) if i not in missing else np.zeros(4) for i in range(n)])
    check(got.dtype == np.float64 and got.shape == (n, 4), f"output is {got.dtype} {got.shape}")
    bad = np.argwhere(np.any(got != want, axis=1)).ravel()
    check(len(bad) == 0, f"rows differ from the serial loop's: {bad[:10]} (first: {got[bad[0]] if len(bad) else ''})")


def failure_lines(run):
    return [line for line in run.err.splitlines() if line.startswith("taskfarm: failure:")]


def events(run, kind):
    return [e for e in map(json.loads, run.out.splitlines()) if e.get("event") == kind]


# ---- cases -------------------------------------------------------------------------------

def rows_equal_serial_loop():
    out = f"{W}/rows.npy"
    run = taskfarm("-j", 2, "--tasks", 300, "--output", out, "--dtype", "float64", "--shape", "300x4",
                   worker_args=["rows"])
    check(run.rc == 0, "exit status", run)
    expect_rows(out, 300)


def greets_before_slow_imports():
    # A start-up slower than --start-timeout after `import taskfarm` (a heavy import): the worker
    # said Hello at the import, so it is not killed as "not a worker program"; the work waits.
    out = f"{W}/rows.npy"
    run = taskfarm("-j", 2, "--tasks", 20, "--output", out, "--dtype", "float64", "--shape", "20x4",
                   worker_args=["rows", "--slow-start", "1.5"], start=["--start-timeout", "1s"])
    check(run.rc == 0, "a worker slow after its import was taken for a non-worker", run)
    expect_rows(out, 20)


def worker_stuck_after_greeting_is_stopped():
    # `import taskfarm` greets the master, which hands the worker work at once; a worker stuck
    # after that (a slow import, here 20 s) held its tasks until it served, while the other idled
    # with nothing left — for ever if it never did, whatever --timeout (outside pass h12 F13). It
    # ran no task: it is stopped once the others idle, and its work goes to them.
    script = f"{W}/stuck.py"
    with open(script, "w") as f:
        f.write("import os, time\n"
                "import taskfarm\n"
                "try:\n"
                f"    os.close(os.open({W + '/first'!r}, os.O_CREAT | os.O_EXCL | os.O_WRONLY))\n"
                "    time.sleep(20)  # the first worker: stuck in a 'heavy import'\n"
                "except FileExistsError:\n"
                "    pass\n"
                "def kernel(t):\n"
                "    print(t.index)\n"
                "taskfarm.run_worker(kernel)\n")
    run = taskfarm("-j", 2, "--tasks", 20, "--timeout", "5s", program=[sys.executable, script])
    check(run.rc == 0, "exit status", run)
    check(sorted(map(int, run.out.split())) == list(range(20)), "tasks missing or repeated", run)
    check("had not begun its work" in run.err, "the stuck worker is not said to be stopped", run)


def every_worker_stuck_after_greeting_ends_with_timeout():
    # Every worker stuck after its greeting: nobody idles to take the work (h12b N7: the run
    # waited for ever, --timeout or not). With a task timeout, a worker that has begun none of its
    # work start_timeout + task_timeout after its start is a failed start; the run gives up after
    # max_start_failures of them in a row, saying why.
    script = f"{W}/allstuck.py"
    with open(script, "w") as f:
        f.write("import time\n"
                "import taskfarm\n"
                "time.sleep(30)  # a hung import\n"
                "def kernel(t):\n"
                "    print(t.index)\n"
                "taskfarm.run_worker(kernel)\n")
    run = taskfarm("-j", 1, "--tasks", 4, "--timeout", "0.5s", start=["--start-timeout", "0.5s"],
                   program=[sys.executable, script])
    check(run.rc == 3, "exit status", run)
    check("greeted but had begun none of the work it was given 1 s after its start (start_timeout + task_timeout"
          in run.err, "the stuck workers are not named", run)


def no_numpy_for_an_array_job_is_said_once_per_worker():
    # A python3 without NumPy (here: its import blocked) on a job with an array: every task of
    # every attempt failed with a full traceback (h12b N16: 3,624 stderr lines for 200 tasks).
    # Each worker says why once and exits; the run stops saying it.
    script = f"{W}/nonumpy.py"
    with open(script, "w") as f:
        f.write("import sys\n"
                "sys.modules['numpy'] = None  # as a python3 without NumPy\n"
                "import taskfarm\n"
                "def kernel(t):\n"
                "    t.output[t.index] = 1\n"
                "taskfarm.run_worker(kernel)\n")
    run = taskfarm("-j", 2, "--tasks", 200, "--output", f"{W}/np.npy", "--dtype", "f8", program=[sys.executable, script])
    check(run.rc == 3, "exit status", run)
    check("cannot import NumPy" in run.err, "the cause is not said", run)
    check(run.err.count("\n") < 30, f"{run.err.count(chr(10))} lines on stderr", run)


def numpy_imported_before_the_first_task():
    # A kernel as README shows it, with no `import numpy` of its own: t.output is a NumPy view,
    # and NumPy's import (0.2-0.5 s, seconds under load) used to happen at the first t.output,
    # inside the task and on its --timeout clock, in every fresh worker (h11 F6: with --timeout
    # 100ms every task failed). The runtime imports it before taking the first task: every task,
    # each worker's first too, finds it imported when it starts.
    script = f"{W}/lazy.py"
    with open(script, "w") as f:
        f.write("import sys\n"
                "import taskfarm\n"
                "def kernel(t):\n"
                "    before = 'numpy' in sys.modules\n"
                "    t.output[t.index] = 1 if before else -1\n"
                "taskfarm.run_worker(kernel)\n")
    out = f"{W}/lazy.npy"
    run = taskfarm("-j", 2, "--tasks", 20, "--output", out, "--dtype", "int64", program=[sys.executable, script])
    check(run.rc == 0, "exit status", run)
    a = np.load(out)
    check((a == 1).all(), f"tasks that started before NumPy was imported: {np.flatnonzero(a != 1).tolist()}", run)
    # A job without an array (text out) does not pay for NumPy (~0.24 s and ~30 MB a worker).
    text = f"{W}/text.py"
    with open(text, "w") as f:
        f.write("import sys\n"
                "import taskfarm\n"
                "def kernel(t):\n"
                "    print('numpy' in sys.modules)\n"
                "taskfarm.run_worker(kernel)\n")
    run = taskfarm("-j", 2, "--tasks", 6, program=[sys.executable, text])
    check(run.rc == 0, "exit status", run)
    check(run.out.split() == ["False"] * 6, "a job without arrays imported NumPy", run)


def arrays_are_views_of_the_shared_files():
    n = 40
    src, out = f"{W}/in.npy", f"{W}/out.npy"
    data = np.random.default_rng(7).random((n, 3))
    np.save(src, data)
    run = taskfarm("-j", 2, "--tasks", n, "--input", src, "--output", out, "--dtype", "f8", "--shape", f"{n}x8",
                   worker_args=["views", "--in-path", os.path.realpath(src), "--out-path", os.path.realpath(out)])
    check(run.rc == 0, "exit status", run)
    got = np.load(out)
    names = ["output mapped from its file", "input mapped from its file", "output a writable view",
             "input read-only (ValueError on write)", "one view per job", "output dtype/shape", "input dtype/shape"]
    for k, name in enumerate(names):
        check(np.all(got[:, k] == 1.0), f"{name}: false for tasks {np.argwhere(got[:, k] != 1.0).ravel()}", run)
    check(np.array_equal(got[:, 7], data[:, 0]), "t.input[i, 0] was not the input's value")
    check(np.array_equal(np.load(src), data), "the input file changed")


def stack_input_equals_serial_loop():
    rows, slices, cols = 40, 9, 30
    src, out = f"{W}/stack.npy", f"{W}/blurred.npy"
    data = np.random.default_rng(3).random((rows, slices, cols), dtype=np.float32)
    np.save(src, data)
    run = taskfarm("-j", 2, "--tasks", slices, "--input", src, "--output", out, "--dtype", "float32",
                   "--shape", f"{rows}x{slices}x{cols}", worker_args=["stack"])
    check(run.rc == 0, "exit status", run)
    want = np.empty_like(data)
    for i in range(slices):
        want[:, i, :] = worker.blur(data[:, i, :])
    check(np.array_equal(np.load(out), want), "the blurred stack differs from the serial loop's")


def lines_and_grid_index_spaces():
    names = ["plain", "with space", "quote'\"", "dollar $HOME", "caf\u00e9", "latin1 \udce9"]
    path = f"{W}/lines.txt"
    with open(path, "wb") as f:
        f.write(b"".join(os.fsencode(n) + b"\n" for n in names))
    out = f"{W}/lens.npy"
    run = taskfarm("-j", 2, "-k", "--input-lines", path, "--output", out, "--dtype", "int64", worker_args=["lines"])
    check(run.rc == 0, "exit status (lines)", run)
    check(run.out.splitlines() == [n.encode("utf-8", "surrogateescape").decode("utf-8", "replace") for n in names],
          "printed lines differ from the input lines", run)
    check(np.load(out).tolist() == [len(os.fsencode(n)) for n in names], "line lengths differ")
    grid = f"{W}/grid.npy"
    run = taskfarm("-j", 1, "--shape", "6x7", "--output", grid, "--dtype", "int64", worker_args=["grid"])
    check(run.rc == 0, "exit status (grid)", run)
    check(np.array_equal(np.load(grid), np.add.outer(np.arange(6) * 1000, np.arange(7))), "coords differ")


def print_captured_per_task():
    n = 30
    run = taskfarm("-j", 2, "-k", "--tasks", n, "--output", f"{W}/o.npy", "--dtype", "f8", "--shape", f"{n}x4",
                   worker_args=["rows", "--print"])
    check(run.rc == 0, "exit status", run)
    want = "".join(f"task {i} says hello\ntask {i} raw\n" for i in range(n))
    check(run.out == want, "stdout is not each task's print() and os.write output, whole and in order", run)


def exception_reported_with_traceback():
    n, bad = 20, 7
    out, joblog = f"{W}/o.npy", f"{W}/j.tsv"
    run = taskfarm("-j", 2, "--tasks", n, "--retries", 1, "--joblog", joblog, "--output", out, "--dtype", "f8",
                   "--shape", f"{n}x4", worker_args=["rows", "--raise-at", bad])
    check(run.rc == 1, "exit status must count the one failed task", run)
    lines = failure_lines(run)  # the summary names final failures; the joblog every attempt
    check(len(lines) == 1, "one task must fail", run)
    path = WORKER[1]
    frames = (f"{path}:{line_of('fail(args.raise_at[i], i)')} in kernel -> {path}:{line_of('divide(0)')} in fail -> "
              f"{path}:{line_of('return 1 // x')} in divide: return 1 // x)")
    for line in lines:
        check(f"index {bad} " in line and "threw ZeroDivisionError: integer division or modulo by zero "
              "(traceback, most recent call last: " in line, "summary line lacks type and message", run)
        check(line.endswith(frames), f"summary line lacks the traceback's tail ({frames})", run)
    check("Traceback (most recent call last):" in run.err and f"task {bad} raised" in run.err,
          "the whole traceback is not on stderr", run)
    causes = [(r["index"], r["outcome"], r["cause"]) for r in joblog_rows(joblog) if r["outcome"] != "ok"]
    check(causes == [(str(bad), "retried", "exception"), (str(bad), "failed", "exception")],
          f"joblog records {causes}", run)
    expect_rows(out, n, missing={bad})
    expect_nothing_left(run, joblog)
    check("o.npy is INCOMPLETE: 1 of 20 tasks missing" in run.err, "the output is not flagged incomplete", run)


def line_of(text):
    with open(WORKER[1]) as f:
        for k, line in enumerate(f, 1):
            if text in line and not line.lstrip().startswith("#"):
                return k
    raise Failed(f"'{text}' not in worker.py")


def exception_types_named():
    n = 8
    run = taskfarm("-j", 1, "--events", "--tasks", n, "--retries", 0, "--output", f"{W}/o.npy", "--dtype", "f8",
                   "--shape", f"{n}x4", worker_args=["rows", "--raise-at", "2:custom,4:numpy,6:memory"])
    check(run.rc == 3, "exit status: three failed tasks", run)
    got = {e["index"]: (e["cause"], e["exception_type"]) for e in events(run, "failure")}
    want = {2: ("exception", "CustomError"), 4: ("exception", "numpy.linalg.LinAlgError"), 6: ("memory", "MemoryError")}
    check(got == want, f"failure events {got}, expected {want}", run)
    expect_rows(f"{W}/o.npy", n, missing={2, 4, 6})


def misuse_is_a_task_failure():
    n = 8
    run = taskfarm("-j", 1, "--chunk", 8, "--events", "--tasks", n, "--retries", 0, "--output", f"{W}/o.npy",
                   "--dtype", "f8", "--shape", f"{n}x4", worker_args=["rows", "--return-at", 3, "--stale-task-at", 5])
    check(run.rc == 2, "exit status: two failed tasks", run)
    f = {e["index"]: e for e in events(run, "failure")}
    check(f[3]["exception_type"] == "TypeError" and "write results into t.output" in f[3]["message"],
          "a returned value is not a TypeError", run)
    check(f[5]["exception_type"] == "taskfarm.Error" and "kernel call that has returned" in f[5]["message"],
          "a Task used after its call is not a taskfarm.Error", run)
    got = np.load(f"{W}/o.npy")
    check(np.array_equal(got[3], worker.row_value(3)), "the row written before the TypeError was lost")


def segfault_isolated_rest_kept():
    n, bad = 30, 11
    out, joblog = f"{W}/o.npy", f"{W}/j.tsv"
    run = taskfarm("-j", 2, "--tasks", n, "--retries", 1, "--joblog", joblog, "--output", out, "--dtype", "f8",
                   "--shape", f"{n}x4", worker_args=["rows", "--segfault-at", bad])
    check(run.rc == 1, "exit status must count the one failed task", run)
    lines = failure_lines(run)
    check(len(lines) == 1 and f"index {bad} (attempt 1," in lines[0] and lines[0].endswith("killed by SIGSEGV"),
          "the segfault is not a signal failure of its index", run)
    rows = [(r["index"], r["outcome"], r["signal"]) for r in joblog_rows(joblog) if r["outcome"] != "ok"]
    check(rows == [(str(bad), "retried", "11"), (str(bad), "failed", "11")], f"joblog records {rows}", run)
    check("Fatal Python error: Segmentation fault" in run.err and "in kernel" in run.err,
          "faulthandler's Python stack is not on stderr", run)
    expect_rows(out, n, missing={bad})
    expect_nothing_left(run, joblog)


def header_written_over_is_restored_and_said():
    # The hostile test's F10: a kernel's stray write just before t.output lands in the .npy
    # header (same page: nothing can protect it). The run used to say "8 succeeded", exit 0, and
    # np.load failed. The master puts back the header it wrote and says so, exit 103.
    n = 8
    out = f"{W}/h.npy"
    run = taskfarm("-j", 2, "--tasks", n, "--output", out, "--dtype", "f8", "--shape", f"{n}x4",
                   worker_args=["rows", "--scribble-header-at", 3])
    check(run.rc == 103, "exit status must say the output is damaged", run)
    check(f"taskfarm: a worker wrote over the .npy header of {out} (restored); data near the start may be "
          "damaged too" in run.err, "the restored header is not said", run)
    expect_rows(out, n)  # loads again; the stray write hit only the header here


def killed_worker_retried_output_complete():
    n = 40
    out, joblog = f"{W}/o.npy", f"{W}/j.tsv"
    run = taskfarm("-j", 2, "--tasks", n, "--joblog", joblog, "--output", out, "--dtype", "f8", "--shape", f"{n}x4",
                   worker_args=["rows", "--kill-once-at", 17, f"{W}/killed"])
    check(run.rc == 0, "a retried kill must not fail the run", run)
    check("1 worker died" in run.err, "the death is not reported", run)
    rows = [(r["index"], r["outcome"], r["signal"]) for r in joblog_rows(joblog) if r["outcome"] != "ok"]
    check(rows == [("17", "retried", "9")], f"joblog records {rows}", run)
    expect_rows(out, n)
    expect_nothing_left(run, joblog)


def fork_in_kernel_ends_the_child():
    # os.fork() without _exit in the child: the child returns from the kernel too. It must not
    # go on serving beside its parent (the run waited for ever): the worker ends it and says so.
    n = 40
    run = taskfarm("-j", 2, "--tasks", n, "--output", f"{W}/o.npy", "--dtype", "f8", "--shape", f"{n}x4",
                   worker_args=["rows", "--fork-at", 3], timeout=30)
    check(run.rc == 0, "exit status: every task succeeded", run)
    check("forked and the child" in run.err and "must end with _exit() or exec()" in run.err,
          "the child that returned from the kernel is not named", run)
    expect_rows(f"{W}/o.npy", n)


def sys_exit_and_keyboard_interrupt():
    n = 10
    run = taskfarm("-j", 1, "--tasks", n, "--retries", 0, "--output", f"{W}/o.npy", "--dtype", "f8",
                   "--shape", f"{n}x4", worker_args=["rows", "--exit-at", 4, 3, "--interrupt-at", 6])
    check(run.rc == 2, "exit status: two failed tasks", run)
    lines = failure_lines(run)
    check(any(s.endswith("worker exited with code 3") and "index 4 " in s for s in lines),
          "sys.exit(3) in a kernel is not an exit of its worker with code 3", run)
    check(any(s.endswith("killed by SIGINT") and "index 6 " in s for s in lines),
          "KeyboardInterrupt in a kernel does not end its worker by SIGINT", run)
    expect_rows(f"{W}/o.npy", n, missing={4, 6})


def gil_released_while_waiting():
    os.mkfifo(f"{W}/gate")
    cmd = [TASKFARM, "run", *START, "-j", "1", "--tasks", "1", "--output", f"{W}/o.npy", "--dtype", "i8", "--",
           *WORKER, "gil", "--dir", W]
    master = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        pid = int(wait_for_file(f"{W}/started", 30))
        master.send_signal(signal.SIGSTOP)  # from here on no message reaches the worker
        open(f"{W}/go", "w").close()
        # The kernel returns, and the worker's main thread waits in poll() for its next message.
        deadline = time.monotonic() + 30
        while read_text(f"/proc/{pid}/syscall").split(" ")[0] != "7":  # poll(2)
            check(time.monotonic() < deadline, "the worker never waited for a message")
            time.sleep(0.005)
        with open(f"{W}/gate", "wb"):
            pass  # lets the worker's thread on: it needs the GIL now
        check(wait_for_file(f"{W}/mark", 20) == "ran\n",
              "the worker's thread did not run while the worker waited for messages: GIL held")
    finally:
        master.send_signal(signal.SIGCONT)
        out, err = master.communicate(timeout=60)
    run = Run(master.returncode, out, err, master.pid)
    check(run.rc == 0, "exit status", run)
    expect_nothing_left(run)


def started_by_hand_exits_2():
    p = subprocess.run([*WORKER, "rows"], capture_output=True, text=True, timeout=60)
    check(p.returncode == 2, f"exit status {p.returncode}, expected 2")
    check(p.stderr.startswith(f"{WORKER[1]} is a taskfarm worker program: run it through the master, e.g. "
                              f"`taskfarm run --tasks N -- {sys.executable} {WORKER[1]} ...`"),
          f"stderr: {p.stderr}")


def wait_for_file(path, seconds):
    deadline = time.monotonic() + seconds
    while not os.path.exists(path):
        check(time.monotonic() < deadline, f"{path} did not appear within {seconds} s")
        time.sleep(0.005)
    return read_text(path)


def read_text(path):
    with open(path) as f:
        return f.read()


def main():
    global W
    case = globals().get(sys.argv[1]) if len(sys.argv) == 2 else None
    if not callable(case):
        sys.exit(f"usage: driver.py CASE (one of the test functions in {__file__})")
    os.makedirs(os.environ["PY_WORK"], exist_ok=True)
    W = tempfile.mkdtemp(prefix=f"{sys.argv[1]}.", dir=os.environ["PY_WORK"])
    try:
        case()
    except Failed as e:
        print(f"FAIL: {e}\n(files kept in {W})", file=sys.stderr)
        return 1
    shutil.rmtree(W)
    print(f"ok: {sys.argv[1]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
