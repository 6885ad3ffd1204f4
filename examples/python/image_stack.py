"""The tutorial's image stack in Python: every slice data[:, i, :] of a (rows, slices, cols)
float32 stack blurred by scipy.ndimage.gaussian_filter, one task per slice, as a taskfarm
worker program.

    taskfarm run --tasks S --input in.npy --output out.npy --dtype float32 --shape RxSxC -- \
        /usr/bin/python3 examples/python/image_stack.py --sigma 3,5
    /usr/bin/python3 examples/python/image_stack.py --sigma 3,5 --serial in.npy out.npy

t.input and t.output are the shared arrays themselves: SciPy reads the strided slice of the
input in place and writes its result straight into the output's slice (output=...). --serial
runs the plain loop instead and saves it (np.save). Needs SciPy (python3-scipy; see
examples/README.md for running it beside Boost 1.81).
"""
import argparse

import taskfarm  # first: it tells the master this is a worker, so the imports below are not timed

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402


def blur_slice(data, out, i, sigma):
    ndimage.gaussian_filter(data[:, i, :], sigma=sigma, output=out[:, i, :])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sigma", default="3,5", help="sigma along rows,cols (one value: both)")
    parser.add_argument("--serial", nargs=2, metavar=("IN.npy", "OUT.npy"), help="run the serial loop")
    args = parser.parse_args()
    sigma = tuple(float(s) for s in args.sigma.split(","))
    sigma = sigma * 2 if len(sigma) == 1 else sigma
    if args.serial:
        data = np.load(args.serial[0])
        out = np.empty_like(data)
        for i in range(data.shape[1]):
            blur_slice(data, out, i, sigma)
        np.save(args.serial[1], out)
        return

    def kernel(t):
        blur_slice(t.input, t.output, t.index, sigma)

    taskfarm.run_worker(kernel)


if __name__ == "__main__":
    main()
