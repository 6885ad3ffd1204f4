// How a task's exception is described in its FailureRecord (cause, exception_type, message):
// one rule wherever a task runs — a farm worker's serving loop, a submitted call's process, a
// thread of the threads backend. Any process, any thread.
#pragma once

#include <exception>
#include <string>

namespace taskfarm::detail {

/// The demangled dynamic type of `e`, "std::domain_error" (the mangled name if that fails).
std::string exception_type_name(const std::exception& e);

/// The exception being handled: std::bad_alloc is out of memory, any std::exception has its
/// type and what(), anything else is "unknown exception".
struct CaughtException {
  bool out_of_memory = false;
  std::string type, message;
};

/// Describes the exception being handled; call it only inside a catch block.
CaughtException caught_exception();

}  // namespace taskfarm::detail
