"""The tutorial's Mandelbrot in Python, one task per row, as a taskfarm worker program.

    taskfarm run --tasks N --output m.npy --dtype int32 --shape NxN -- \
        /usr/bin/python3 examples/python/mandelbrot.py --size N --max-iter K
    /usr/bin/python3 examples/python/mandelbrot.py --size N --max-iter K --serial m.npy

Row i of the picture is the tutorial's NumPy code on row i of the grid (z starts at c; for
i < max_iter: if |z| >= 4 the count is i, else z = z*z + c; -1 if it never escapes), written
by the worker straight into row i of the run's output: t.output is the shared array itself.
--serial runs the plain loop over the rows instead and saves it (np.save).
"""
import argparse

import taskfarm  # first: it tells the master this is a worker, so NumPy's import is not timed

import numpy as np  # noqa: E402

X, Y, R = -0.235, 0.827, 0.4


def compute_mandelbrot(c, max_iter):
    counts = np.full(c.shape, -1, dtype=np.int32)
    z = c.copy()
    active = np.ones(c.shape, dtype=bool)
    for i in range(max_iter):
        escaped = np.zeros(c.shape, dtype=bool)
        escaped[active] = np.abs(z[active]) >= 4
        counts[escaped] = i
        active &= ~escaped
        z[active] = z[active] * z[active] + c[active]
    return counts


def mandelbrot_row(i, size, max_iter):
    x = np.linspace(X - R, X + R, size)
    y = np.linspace(Y - R, Y + R, size)
    return compute_mandelbrot(x + 1j * y[i], max_iter)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=1000)
    parser.add_argument("--max-iter", type=int, default=20)
    parser.add_argument("--serial", metavar="OUT.npy", help="run the serial loop and save its result")
    args = parser.parse_args()
    if args.serial:
        np.save(args.serial, np.array([mandelbrot_row(i, args.size, args.max_iter) for i in range(args.size)]))
        return

    def kernel(t):
        t.output[t.index] = mandelbrot_row(t.index, args.size, args.max_iter)

    taskfarm.run_worker(kernel)


if __name__ == "__main__":
    main()
