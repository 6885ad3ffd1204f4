// make_output: where an example's result array lives — a .npy file when the user asked for
// one (--output), else an anonymous shm segment. Either way forked workers write into it in
// place. Called in the master process before the workers are forked.
#pragma once

#include <cstdio>
#include <string>

#include "taskfarm/shared_array.hpp"

namespace examples {

/// A zero-filled shared array of `shape`: the .npy file `npy_path`, or shm if it is empty. The
/// file is written under a temporary name: a file of the user's at `npy_path` stays as it was
/// until publish_output() — an example that fails or is interrupted leaves no half-done output.
template <class T>
taskfarm::SharedArray<T> make_output(const std::string& npy_path, taskfarm::Shape shape) {
  if (npy_path.empty()) return taskfarm::SharedArray<T>::create(std::move(shape));
  return taskfarm::SharedArray<T>::create_npy(npy_path, std::move(shape), taskfarm::AnySharedArray::Publish::later);
}

/// The output is complete: renames it over `npy_path` and says so (nothing for shm).
template <class T>
void publish_output(taskfarm::SharedArray<T>& array, const std::string& npy_path, const char* what = "") {
  if (npy_path.empty()) return;
  array.any().publish();
  std::printf("wrote %s%s\n", npy_path.c_str(), what);
}

}  // namespace examples
