// Fault injection for users' own tests: make a chosen index of a kernel crash, throw, hang or
// exit, to prove a pipeline is retry-safe and its error handling works. Together with
// FarmOptions::chaos_rate (random SIGKILLs of busy workers during a run, never charged to an
// index, so results must not change). The faults fire in whichever process runs the kernel:
// use them with the process farm, never the threads backend.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

namespace taskfarm::chaos {

enum class Fault : std::uint8_t {
  segfault,   ///< SIGSEGV
  abort,      ///< SIGABRT
  exit,       ///< exit(3) in the middle of the task
  exception,  ///< throws std::runtime_error("chaos: injected exception at index N")
  hang,       ///< never returns (pair with a task timeout)
};

/// Performs `fault` now, as if the task at `index` misbehaved.
void trigger(Fault fault, std::uint64_t index);

/// Wraps a kernel taking a flat index: at `index` it misbehaves as `fault`, elsewhere it is fn.
template <class F>
auto fault_at(std::uint64_t index, Fault fault, F fn) {
  return [index, fault, fn = std::move(fn)](std::uint64_t i) mutable {
    if (i == index) trigger(fault, i);
    return fn(i);
  };
}

}  // namespace taskfarm::chaos
