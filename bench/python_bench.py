"""bench/python_bench.py BUILD_DIR [--quick]: the Python-kernel rows of bench/run.

Prints one JSON object per row on stdout, as the C++ bench programs do (bench/run runs it with
Debian's python3 and the package of BUILD_DIR on PYTHONPATH):

  python.mandelbrot  the tutorial's Mandelbrot in Python (examples/python/mandelbrot.py, NumPy
                     per row, one task per row, 1600x1600, max_iter 256) on 2 workers: speed-up
                     of `taskfarm run -- python3 mandelbrot.py` (whole process: the Python
                     workers' start-up included) over the serial loop in this process, beside
                     the same Pool program run the same way: `python3 pool_mandelbrot.py`, whole
                     process (its interpreter's start and NumPy's import included, as the farm's
                     workers' are), which maps the row function with multiprocessing.Pool(2) and
                     saves the picture. Also measured, in `extra`: Pool(2).map forked from this
                     warm process (no interpreter start at all), which a farm of fresh Python
                     workers cannot match by the ~0.1 s their NumPy import takes. Repetitions
                     interleaved; every result is checked equal to the serial one.
  python.frames_pool the seeds' shared-array pattern as Python users write it: a warm
                     multiprocessing.Pool(2) (created and warmed outside the timing) maps
                     `out[f] = inp[f] * 2` over 100 frames of 512x512 f64 held in
                     multiprocessing.shared_memory.SharedMemory, one task per frame (GB/s of
                     output), beside NumPy's copy of the same bytes into touched memory in this
                     process. bench/run sets frames.warm_fork beside it (frames.warm_fork_over_pool).
  python.startup     `taskfarm run` of 2 trivial tasks on 2 Python workers, whole process,
                     beside one bare `python3 -c "import numpy, taskfarm"`: what starting the
                     Python workers costs.
"""
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "examples", "python"))
import mandelbrot  # noqa: E402  (the example's row function: the kernel all three run)

PYTHON = sys.executable


def row_of(args):
    i, size, max_iter = args
    return mandelbrot.mandelbrot_row(i, size, max_iter)


def timed(fn):
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def run(argv):
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError(f"{argv[0]} exited with {p.returncode}: {p.stderr.strip()[-300:]}")


def mandelbrot_row(taskfarm, work, quick):
    size, max_iter, reps = (32, 4, 1) if quick else (1600, 256, 3)
    out = os.path.join(work, "m.npy")
    farm_argv = [taskfarm, "run", "-j", "2", "--no-progress", "--start-timeout", "60s", "--tasks", str(size), "--output", out,
                 "--dtype", "int32", "--shape", f"{size}x{size}", "--",
                 PYTHON, os.path.join(REPO, "examples", "python", "mandelbrot.py"),
                 "--size", str(size), "--max-iter", str(max_iter)]
    jobs = [(i, size, max_iter) for i in range(size)]
    pool_out = os.path.join(work, "pool.npy")
    pool_script = os.path.join(work, "pool_mandelbrot.py")
    with open(pool_script, "w") as f:  # what a Pool user runs: the same row function, a whole program
        f.write("import multiprocessing, sys\n"
                f"sys.path.insert(0, {os.path.join(REPO, 'examples', 'python')!r})\n"
                "import numpy as np\nimport mandelbrot\n"
                f"def row(i):\n    return mandelbrot.mandelbrot_row(i, {size}, {max_iter})\n"
                "if __name__ == '__main__':\n"
                "    with multiprocessing.get_context('fork').Pool(2) as pool:\n"
                f"        np.save({pool_out!r}, np.array(pool.map(row, range({size}))))\n")
    serial_s, farm_s, pool_s, warm_pool_s = [], [], [], []
    expected = None
    for _ in range(reps):  # interleaved: serial, farm, Pool program, Pool from this process
        t, rows = timed(lambda: np.array([row_of(j) for j in jobs]))
        serial_s.append(t)
        expected = rows
        t, _ = timed(lambda: run(farm_argv))
        farm_s.append(t)
        if not np.array_equal(np.load(out), expected):
            raise RuntimeError("the farm's picture differs from the serial loop's")
        t, _ = timed(lambda: run([PYTHON, pool_script]))
        pool_s.append(t)
        if not np.array_equal(np.load(pool_out), expected):
            raise RuntimeError("the Pool program's picture differs from the serial loop's")

        def pool_map():
            with multiprocessing.get_context("fork").Pool(2) as pool:
                return np.array(pool.map(row_of, jobs))
        t, rows = timed(pool_map)
        warm_pool_s.append(t)
        if not np.array_equal(rows, expected):
            raise RuntimeError("Pool's picture differs from the serial loop's")
    serial = statistics.median(serial_s)
    farm, pool = [serial / t for t in farm_s], [serial / t for t in pool_s]
    warm_pool = [serial / t for t in warm_pool_s]
    return {"name": "python.mandelbrot",
            "what": f"Mandelbrot {size}x{size}, max_iter {max_iter}, NumPy per row, a task per row, 2 workers: "
                    "speed-up of taskfarm run -- python3 mandelbrot.py over the serial loop",
            "unit": "x", "better": "higher", "statistic": "median",
            "value": statistics.median(farm), "best": max(farm), "repetitions": reps, "samples": farm,
            "baseline": "python3 pool_mandelbrot.py: multiprocessing.Pool(2).map of the same row function, "
                        "whole process as the farm's (interpreter start and NumPy import included)",
            "baseline_value": statistics.median(pool), "baseline_repetitions": reps, "baseline_samples": pool,
            "extra": {"serial_s": serial_s, "farm_s": farm_s, "pool_program_s": pool_s,
                      "warm_pool_s": warm_pool_s, "warm_pool_speedup": statistics.median(warm_pool),
                      "farm_over_warm_pool": statistics.median(farm) / statistics.median(warm_pool)},
            "note": ""}


# The Pool's workers attach the two segments once (at their start) and keep the views.
_frames = {}


def _attach(in_name, out_name, shape):
    from multiprocessing import shared_memory
    _frames["segs"] = [shared_memory.SharedMemory(name=n) for n in (in_name, out_name)]
    _frames["inp"], _frames["out"] = (np.ndarray(shape, np.float64, buffer=s.buf) for s in _frames["segs"])


def _double_frame(f):
    np.multiply(_frames["inp"][f], 2.0, out=_frames["out"][f])


def frames_pool_row(work, quick):
    from multiprocessing import shared_memory
    count, side, reps = (10, 512, 2) if quick else (100, 512, 7)
    shape = (count, side, side)
    nbytes = count * side * side * 8
    segs = [shared_memory.SharedMemory(create=True, size=nbytes) for _ in range(2)]
    try:
        inp, out = (np.ndarray(shape, np.float64, buffer=s.buf) for s in segs)
        inp[...] = (np.arange(inp.size) % 1000).reshape(shape) * 0.5
        out[...] = 0  # touched, as the C++ row's output array is by its warm-up call
        touched = np.ones(shape)
        gb = nbytes / 1e9
        pool_rate, copy_rate = [], []
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(2, initializer=_attach, initargs=(segs[0].name, segs[1].name, shape)) as pool:
            for _ in range(8):  # warm: workers started and in steady state, as bench_frames' workers
                pool.map(_double_frame, range(count), chunksize=1)
            for _ in range(reps):
                out[:, side // 2, side // 2] = -1  # a frame the Pool skipped shows
                t, _ = timed(lambda: pool.map(_double_frame, range(count), chunksize=1))
                pool_rate.append(gb / t)
                if not np.array_equal(out[:, side // 2, side // 2], inp[:, side // 2, side // 2] * 2):
                    raise RuntimeError("the Pool skipped a frame")
                t, _ = timed(lambda: np.copyto(touched, inp))
                copy_rate.append(gb / t)
        if not np.array_equal(out, inp * 2):
            raise RuntimeError("the Pool's frames differ from the serial result")
    finally:
        for s in segs:
            s.close()
            s.unlink()
    return {"name": "python.frames_pool",
            "what": f"frame x 2 into SharedMemory, {count} frames of {side}x{side} f64, a task per frame, "
                    "warm multiprocessing.Pool(2)",
            "unit": "GB/s", "better": "higher", "statistic": "median",
            "value": statistics.median(pool_rate), "best": max(pool_rate), "repetitions": reps,
            "samples": pool_rate,
            "baseline": "one process: NumPy copy of the same bytes into touched memory",
            "baseline_value": statistics.median(copy_rate), "baseline_repetitions": reps,
            "baseline_samples": copy_rate, "extra": {"frames": count, "bytes": nbytes}, "note": ""}


def startup_row(taskfarm, work, quick):
    reps = 1 if quick else 7
    script = os.path.join(work, "trivial.py")
    with open(script, "w") as f:
        f.write("import numpy, taskfarm\n"
                "def kernel(t):\n    t.output[t.index] = t.index\n"
                "taskfarm.run_worker(kernel)\n")
    farm_argv = [taskfarm, "run", "-j", "2", "--no-progress", "--start-timeout", "60s", "--tasks", "2", "--output",
                 os.path.join(work, "s.npy"), "--dtype", "int64", "--", PYTHON, script]
    bare_argv = [PYTHON, "-c", "import numpy, taskfarm"]
    if not quick:
        run(farm_argv)  # page cache warm
    farm, bare = [], []
    for _ in range(reps):
        farm.append(timed(lambda: run(farm_argv))[0] * 1e3)
        bare.append(timed(lambda: run(bare_argv))[0] * 1e3)
    return {"name": "python.startup",
            "what": "taskfarm run of 2 trivial tasks on 2 Python workers (import numpy, taskfarm), whole process",
            "unit": "ms", "better": "lower", "statistic": "median",
            "value": statistics.median(farm), "best": min(farm), "repetitions": reps, "samples": farm,
            "baseline": "one bare python3 -c 'import numpy, taskfarm'",
            "baseline_value": statistics.median(bare), "baseline_repetitions": reps, "baseline_samples": bare,
            "extra": {}, "note": ""}


def main():
    build, quick = os.path.abspath(sys.argv[1]), "--quick" in sys.argv[2:]
    taskfarm = os.path.join(build, "bin", "taskfarm")
    with tempfile.TemporaryDirectory() as work:
        for row in (mandelbrot_row(taskfarm, work, quick), frames_pool_row(work, quick),
                    startup_row(taskfarm, work, quick)):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
