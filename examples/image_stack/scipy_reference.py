"""SciPy's gaussian_filter as the reference for example-image-stack.

usage: scipy_reference.py IN.npy OUT.npy SIGMA_ROWS SIGMA_COLS

For every slice i of the float32 (rows, slices, cols) stack IN, computes
scipy.ndimage.gaussian_filter(IN[:, i, :], sigma=(SIGMA_ROWS, SIGMA_COLS)) (mode 'reflect',
truncate 4.0) and exits 0 only if OUT[:, i, :] is within TOLERANCE of it everywhere.
"""
import sys

import numpy as np
from scipy import ndimage

# float32 results, accumulated in float64 by both sides: they differ only by the last bits of
# NumPy's exp (its SIMD exp may differ from libm's by an ulp) and the order of one sum.
TOLERANCE = 1e-5


def main():
    data, out = np.load(sys.argv[1]), np.load(sys.argv[2])
    sigma = (float(sys.argv[3]), float(sys.argv[4]))
    if data.dtype != np.float32 or out.dtype != np.float32 or data.shape != out.shape:
        print(f"expected two float32 stacks of one shape: {data.dtype} {data.shape}, "
              f"{out.dtype} {out.shape}")
        return 1
    worst, where = 0.0, None
    for i in range(data.shape[1]):
        expected = ndimage.gaussian_filter(data[:, i, :], sigma=sigma)
        diff = np.abs(out[:, i, :].astype(np.float64) - expected.astype(np.float64))
        if diff.max() > worst:
            worst, where = float(diff.max()), (i,) + np.unravel_index(diff.argmax(), diff.shape)
    ok = worst <= TOLERANCE
    print(f"{'ok' if ok else 'FAILED'}: {data.shape} stack, sigma {sigma}: max |ours - SciPy's| "
          f"= {worst:.3g} (tolerance {TOLERANCE:g})"
          + (f", at slice {where[0]}, row {where[1]}, col {where[2]}" if where else ""))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
