#!/bin/sh
# Checks example-image-stack against scipy.ndimage.gaussian_filter.
# usage: scipy_check.sh EXAMPLE PYTHON WORKDIR [--random-input RxSxC] [example options...]
# The stack is the example's default one, or uniform noise in [0, 1) (NumPy, seed 1).
# SciPy cannot be apt-installed beside Boost 1.81 (python3-scipy pulls libboost-dev 1.74), so
# it is unpacked privately into WORKDIR/scipy (apt-get download + dpkg -x, done once).
# Exits 77 (the test's SKIP_RETURN_CODE) only if SciPy cannot be fetched.
set -eu
example=$1 python=$2 work=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
root="$work/scipy/root"
mkdir -p "$work/scipy"

if [ ! -d "$root/usr/lib/python3/dist-packages/scipy" ]; then
  echo "scipy_check: unpacking python3-scipy privately into $root"
  if ! (cd "$work/scipy" && apt-get download python3-scipy python3-decorator); then
    echo "SKIP: scipy_check: 'apt-get download python3-scipy python3-decorator' failed" \
         "(no network or no apt lists?); cannot compare with SciPy"
    exit 77
  fi
  rm -rf "$root.tmp"
  for deb in "$work"/scipy/*.deb; do dpkg -x "$deb" "$root.tmp"; done
  mv "$root.tmp" "$root"
fi

name=$(echo "$*" | tr -c 'A-Za-z0-9\n' '_')
in="$work/scipy-in$name.npy" out="$work/scipy-out$name.npy"
if [ "${1:-}" = --random-input ]; then
  "$python" -c "import numpy as np, sys; shape = tuple(int(e) for e in sys.argv[2].split('x'));
np.save(sys.argv[1], np.random.default_rng(1).random(shape, dtype=np.float32))" "$in" "$2"
  shift 2
  "$example" --workers 2 --input "$in" --output "$out" "$@"
else
  "$example" --workers 2 --save-input "$in" --output "$out" "$@"
fi
# The sigma the example used: the last --sigma given, else its default 3,5.
sigma=3,5
prev=
for arg in "$@"; do
  [ "$prev" = --sigma ] && sigma=$arg
  prev=$arg
done
case $sigma in *,*) ;; *) sigma=$sigma,$sigma ;; esac
PYTHONPATH="$root/usr/lib/python3/dist-packages" \
  "$python" "$here/scipy_reference.py" "$in" "$out" "${sigma%,*}" "${sigma#*,}"
