// make_output: where an example's result array lives — a .npy file when the user asked for
// one (--output), else an anonymous shm segment. Either way forked workers write into it in
// place. Called in the master process before the workers are forked.
#pragma once

#include <string>

#include "taskfarm/shared_array.hpp"

namespace examples {

/// A zero-filled shared array of `shape`: the .npy file `npy_path`, or shm if it is empty.
template <class T>
taskfarm::SharedArray<T> make_output(const std::string& npy_path, taskfarm::Shape shape) {
  if (npy_path.empty()) return taskfarm::SharedArray<T>::create(std::move(shape));
  return taskfarm::SharedArray<T>::create_npy(npy_path, std::move(shape));
}

}  // namespace examples
