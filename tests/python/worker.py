"""A Python worker program for the tests (tests/python/driver.py), the Python twin of
tests/helpers/cli_worker and fault_worker: well-behaved kernels, and faults at chosen indices.

    worker.py rows [FAULTS]     t.output[i] = row_value(i): a (tasks, 4) float64 output
    worker.py stack             t.output[:, i, :] = blur(t.input[:, i, :]): (rows, slices, cols)
    worker.py views             t.output[i, :7] = checks that t.input / t.output are views of
                                the mapped files; t.output[i, 7] = t.input[i, 0]
    worker.py lines             t.output[i] = len(t.line_bytes); prints t.line
    worker.py grid              --shape 6x7 index space: t.output[i, j] = i * 1000 + j
    worker.py keep              a view kept from job 1 read in job 2 (two_jobs_master.cpp)
    worker.py gil --dir DIR     task 0 starts a thread that needs the GIL while the worker
                                waits for messages (see gil_kernel)

FAULTS: --raise-at I[:KIND],... (KIND zero (default), custom, numpy, memory), --segfault-at I, --exit-at I CODE,
--interrupt-at I, --kill-once-at I MARKER (SIGKILLs its own worker the first time: MARKER is
made with O_EXCL), --print (every task prints two lines, one through fd 1 directly),
--return-at I, --stale-task-at I (uses the Task of an earlier call), --slow-start S (sleeps S seconds
after `import taskfarm`, as a heavy import would).
"""
import argparse
import ctypes
import os
import signal
import sys
import threading
import time

import taskfarm  # first: it greets the master, so the imports after it do not count against --start-timeout

if "--slow-start" in sys.argv:  # the tests' stand-in for a heavy import (SciPy on a loaded machine)
    time.sleep(float(sys.argv[sys.argv.index("--slow-start") + 1]))

import numpy as np  # noqa: E402


def row_value(i):
    return i + np.arange(4) * 0.25


def blur(frame):
    """A NumPy-only 3x3 box blur with edge replication: the --input kernel, deterministic."""
    p = np.pad(frame.astype(np.float64), 1, mode="edge")
    acc = sum(p[a:a + frame.shape[0], b:b + frame.shape[1]] for a in range(3) for b in range(3))
    return (acc / 9.0).astype(np.float32)


class CustomError(Exception):
    pass


def divide(x):
    return 1 // x


def fail(kind, i):
    if kind == "zero":
        divide(0)
    elif kind == "custom":
        raise CustomError(f"custom failure at {i}")
    elif kind == "numpy":
        np.linalg.inv(np.zeros((2, 2)))
    elif kind == "memory":
        raise MemoryError("pretend the heap is gone")


def rows_kernel(args):
    stale = []

    def kernel(t):
        i = t.index
        if args.print:
            print(f"task {i} says hello")
            sys.stdout.flush() if i % 2 else None  # flushed or not: captured the same
            os.write(1, f"task {i} raw\n".encode())
        if i in args.raise_at:
            fail(args.raise_at[i], i)
        if i == args.segfault_at:
            ctypes.string_at(0)
        if args.exit_at and i == args.exit_at[0]:
            sys.exit(args.exit_at[1])
        if i == args.interrupt_at:
            raise KeyboardInterrupt
        if args.kill_once_at and i == int(args.kill_once_at[0]):
            try:
                os.close(os.open(args.kill_once_at[1], os.O_CREAT | os.O_EXCL | os.O_WRONLY))
                os.kill(os.getpid(), signal.SIGKILL)
            except FileExistsError:
                pass
        if i == args.fork_at:  # both processes return from the kernel: the worker ends the child
            os.fork()
        if i == args.scribble_header_at:  # a stray write just before the output (F10): its header
            ctypes.memset(t.output.ctypes.data - 64, 0x41, 64)
        if i == args.stale_task_at and stale:
            stale[0].index  # raises taskfarm.Error
        stale[:] = [t]
        t.output[i] = row_value(i)
        if i == args.return_at:
            return t.output[i]
        return None

    return kernel


def stack_kernel(t):
    t.output[:, t.index, :] = blur(t.input[:, t.index, :])


def views_kernel(args):
    def mapping_of(address):
        with open("/proc/self/maps") as maps:
            for entry in maps:
                fields = entry.split(maxsplit=5)
                lo, hi = (int(a, 16) for a in fields[0].split("-"))
                if lo <= address < hi:
                    return fields[5].strip() if len(fields) > 5 else ""
        return ""

    def kernel(t):
        out, inp = t.output, t.input
        try:
            inp[0, 0] = 1.0
            read_only_raises = False
        except ValueError:  # "assignment destination is read-only": not a SIGSEGV
            read_only_raises = True
        # Mapped from the files themselves (the output under its temporary name until the master
        # renames it): no copy anywhere in this process.
        out[t.index, :7] = [
            mapping_of(out.ctypes.data).startswith(args.out_path),
            mapping_of(inp.ctypes.data) == args.in_path,
            not out.flags.owndata and out.flags.writeable and out.flags.c_contiguous,
            not inp.flags.writeable and read_only_raises,
            out is t.output and inp is t.input,  # one view per job, not one per access
            out.shape == (t.extent[0], 8) and out.dtype == np.float64,
            inp.shape == (t.extent[0], 3) and inp.dtype == np.float64,
        ]
        out[t.index, 7] = inp[t.index, 0]

    return kernel


def lines_kernel(t):
    print(t.line)
    t.output[t.index] = len(t.line_bytes)


def grid_kernel(t):
    assert t.extent == (6, 7), t.extent
    t.output[t.coord(0), t.coord(1)] = t.coord(0) * 1000 + t.coord(1)


def gil_kernel(args):
    """Task 0 starts a thread that waits (blocked in open(), without the GIL) on the FIFO
    DIR/gate and then writes DIR/mark, which needs the GIL; says DIR/started (its pid) and
    returns once DIR/go exists. The test then stops the master, so the worker waits for
    messages, opens the gate, and expects the mark while the worker still waits."""
    def wait_then_mark():
        with open(os.path.join(args.dir, "gate"), "rb") as gate:
            gate.read()
        with open(os.path.join(args.dir, "mark"), "w") as mark:
            mark.write("ran\n")

    def kernel(t):
        t.output[t.index] = t.index
        if t.index != 0:
            return
        threading.Thread(target=wait_then_mark, daemon=True).start()
        with open(os.path.join(args.dir, "started.tmp"), "w") as f:
            f.write(str(os.getpid()))
        os.rename(os.path.join(args.dir, "started.tmp"), os.path.join(args.dir, "started"))
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(args.dir, "go")):
            if time.monotonic() > deadline:
                raise TimeoutError("the test never said go")
            time.sleep(0.005)

    return kernel


KEPT = []


def keep_kernel(t):
    """Job 1 (t.output is the first view seen) writes i*i; a later job writes job 1's value + 1,
    read through the view kept from job 1 (tests/python/two_jobs_master.cpp)."""
    if not KEPT:
        KEPT.append(t.output)
    if t.output is KEPT[0]:
        t.output[t.index] = t.index * t.index
    else:
        t.output[t.index] = KEPT[0][t.index] + 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["rows", "stack", "views", "lines", "grid", "gil", "keep"])
    p.add_argument("--raise-at", default={}, type=lambda text: {
        int(i): (kind or "zero") for i, _, kind in (item.partition(":") for item in text.split(","))})
    p.add_argument("--segfault-at", type=int, default=-1)
    p.add_argument("--exit-at", type=int, nargs=2)
    p.add_argument("--interrupt-at", type=int, default=-1)
    p.add_argument("--kill-once-at", nargs=2)
    p.add_argument("--return-at", type=int, default=-1)
    p.add_argument("--stale-task-at", type=int, default=-1)
    p.add_argument("--scribble-header-at", type=int, default=-1)
    p.add_argument("--fork-at", type=int, default=-1)
    p.add_argument("--print", action="store_true")
    p.add_argument("--slow-start", type=float)  # handled at import, above
    p.add_argument("--in-path")
    p.add_argument("--out-path")
    p.add_argument("--dir")
    args = p.parse_args()
    kernels = {"rows": lambda: rows_kernel(args), "stack": lambda: stack_kernel,
               "views": lambda: views_kernel(args), "lines": lambda: lines_kernel,
               "grid": lambda: grid_kernel, "gil": lambda: gil_kernel(args), "keep": lambda: keep_kernel}
    taskfarm.run_worker(kernels[args.mode]())


if __name__ == "__main__":
    main()
