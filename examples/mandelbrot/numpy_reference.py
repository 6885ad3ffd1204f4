"""The tutorial's NumPy Mandelbrot: the exact reference for example-mandelbrot.

usage: numpy_reference.py COUNTS.npy SIZE MAX_ITER

Computes the picture with NumPy (z starts at c; for i < max_iter: if |z| >= 4 the count is i,
else z = z*z + c; -1 if it never escapes) and exits 0 only if COUNTS.npy equals it exactly.
"""
import sys

import numpy as np

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


def main():
    path, n, max_iter = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    x = np.linspace(X - R, X + R, n)
    y = np.linspace(Y - R, Y + R, n)
    c = x[np.newaxis, :] + 1j * y[:, np.newaxis]  # element [i, j] is x[j] + i*y[i]
    expected = compute_mandelbrot(c, max_iter)
    got = np.load(path)
    if got.dtype != np.int32 or got.shape != expected.shape:
        print(f"{path}: {got.dtype} {got.shape}, expected int32 {expected.shape}")
        return 1
    wrong = np.argwhere(got != expected)
    if len(wrong):
        i, j = wrong[0]
        print(f"{path}: {len(wrong)} counts differ from NumPy's; first at [{i}, {j}]: "
              f"{got[i, j]} instead of {expected[i, j]}")
        return 1
    print(f"{path}: all {n}x{n} counts (max_iter {max_iter}) equal NumPy's exactly "
          f"({np.count_nonzero(expected == -1)} points never escape)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
