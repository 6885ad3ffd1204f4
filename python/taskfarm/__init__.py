"""Kernels written in Python for taskfarm: a worker program in a few lines.

    import taskfarm

    def kernel(t):                      # t.index, t.coord(k), t.extent, t.line, t.input, t.output
        t.output[t.index] = row(t.index)  # t.output: a NumPy view of the run's --output

    taskfarm.run_worker(kernel)

run as `taskfarm run --tasks N --output out.npy --dtype int32 --shape NxN -- python3 w.py`.
The master (the `taskfarm` binary, or a C++ Farm) starts the script, which serves tasks until
it is told to stop. t.output and t.input are NumPy arrays over the shared memory itself (no
copy in either direction; t.input is read-only). What a task prints is captured per task. An
exception a kernel raises fails that task only (cause `exception`, with its type, message and
the innermost frames of its traceback); the worker keeps serving. A crash (a segfault in an
extension, os.abort) kills the worker: the master reports the signal, retries the task and
keeps every other result. Details: docs/python.md.
"""
import faulthandler
import os
import signal
import sys
import traceback

from taskfarm._native import Error, Task, started_by_master
from taskfarm._native import greet as _greet
from taskfarm._native import serve as _serve

# The master's --start-timeout (5 s) runs from the worker's start to its Hello: said here, at
# import, so that the imports after `import taskfarm` (NumPy, SciPy: seconds on a loaded
# machine) do not count. The work the master hands out meanwhile waits for run_worker.
if started_by_master():
    _greet()

__all__ = ["Error", "Task", "run_worker", "started_by_master"]
Error.__module__ = Task.__module__ = __name__  # named taskfarm.Error in tracebacks and reports

_FRAMES_IN_MESSAGE = 3  # innermost frames of a traceback that go into the failure's message
_HERE = os.path.dirname(os.path.abspath(__file__))


def run_worker(kernel):
    """Serves the master that started this process with `kernel`, called once per task with a
    Task `t`; returns when the master says stop. `kernel` may also be a dict of named kernels
    (for a C++ master that names the kernel of its job).

    A kernel writes its result into t.output (a return value other than None fails the task:
    it would be lost). Started by hand, this prints how to run the script and exits with
    status 2, as a C++ worker program does; if the runtime cannot set up, it exits 4.

    While serving: SIGINT ends the worker at once, as it does a C++ worker (the master reports
    the signal); faulthandler is enabled, so a crash in native code prints the Python stack on
    stderr before the worker dies by its signal.
    """
    kernels = _kernel_table(kernel)
    if not started_by_master():
        script = sys.argv[0] or "this script"
        print(f"{script} is a taskfarm worker program: run it through the master, e.g. "
              f"`taskfarm run --tasks N -- {sys.executable} {script} ...`", file=sys.stderr)
        raise SystemExit(2)
    _flush()  # what was printed before serving goes where stdout was, not into task 0's output
    old_sigint = signal.signal(signal.SIGINT, signal.SIG_DFL)
    had_faulthandler = faulthandler.is_enabled()
    if not had_faulthandler:
        faulthandler.enable(file=2)  # fd 2 itself: sys.stderr may have been replaced
    try:
        status = _serve(kernels, _call)
    finally:
        if not had_faulthandler:
            faulthandler.disable()
        signal.signal(signal.SIGINT, old_sigint)
    if status != 0:
        raise SystemExit(status)


def _kernel_table(kernel):
    if callable(kernel):
        return {"": kernel}
    if isinstance(kernel, dict) and kernel:
        for name, fn in kernel.items():
            if not isinstance(name, str) or not callable(fn):
                raise TypeError(f"run_worker: kernel {name!r} must be a callable named by a str")
        return dict(kernel)
    raise TypeError(f"run_worker: expected a callable kernel or a dict of them, got {type(kernel).__name__}")


def _call(kernel, task):
    """Runs one task. Returns None, or (type, message, out_of_memory) if the kernel raised."""
    try:
        result = kernel(task)
        if result is not None:
            raise TypeError(f"the kernel returned a {type(result).__name__}; write results into "
                            f"t.output instead (a returned value would be lost)")
        if sys.stdout is not None:  # what the task printed is captured per task: complete it now
            sys.stdout.flush()
    except SystemExit as e:  # sys.exit(n) in a kernel: the worker exits n, like exit(n) in C++
        _exit_with(e.code)
    except KeyboardInterrupt:  # as Python itself ends on one: killed by SIGINT
        _flush()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.raise_signal(signal.SIGINT)
        os._exit(128 + signal.SIGINT)
    except BaseException as e:  # noqa: B036 -- every other exception fails only this task
        failure = _describe(e, task)
        _flush()
        return failure
    return None


def _describe(e, task):
    tb = e.__traceback__
    while tb is not None and os.path.dirname(tb.tb_frame.f_code.co_filename) == _HERE:
        tb = tb.tb_next  # our own frames (_call) are not the user's traceback
    frames = traceback.extract_tb(tb)
    try:
        message = str(e)
    except BaseException:  # noqa: B036 -- a broken __str__ must not hide the failure
        message = f"<{type(e).__name__} whose str() raised>"
    if frames:
        where = " -> ".join(f"{f.filename}:{f.lineno} in {f.name}" for f in frames[-_FRAMES_IN_MESSAGE:])
        code = f": {frames[-1].line}" if frames[-1].line else ""
        elided = "... -> " if len(frames) > _FRAMES_IN_MESSAGE else ""
        message = f"{message} (traceback, most recent call last: {elided}{where}{code})".lstrip()
    # The whole traceback on stderr, as Python prints one (the master forwards the worker's stderr).
    try:
        index = task.index
    except Error:
        index = "?"
    lines = traceback.format_exception(type(e), e, tb)
    try:
        sys.stderr.write(f"taskfarm worker {os.getpid()}: task {index} raised\n" + "".join(lines))
    except (AttributeError, OSError, ValueError):  # no usable stderr: the record still says it
        pass
    module = type(e).__module__
    name = type(e).__qualname__ if module in ("builtins", "__main__") else f"{module}.{type(e).__qualname__}"
    return name, message, isinstance(e, MemoryError)


def _flush():
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except (OSError, ValueError):  # closed or broken: nothing more can be said there
                pass


def _exit_with(code):
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # sys.exit("message"): printed, status 1, as Python does
        print(code, file=sys.stderr)
        status = 1
    _flush()
    os._exit(status & 0xFF)
