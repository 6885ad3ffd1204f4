// Errors that carry their context. Every exception taskfarm throws derives from
// taskfarm::Error and names the thing it is about (a segment, a worker slot, a pid, a path).
// Expected outcomes of tasks (a worker crashed, a kernel threw) are not errors: they are
// FailureRecord values (master/include/taskfarm/failure.hpp).
#pragma once

#include <stdexcept>
#include <string>

namespace taskfarm {

/// Base of every exception taskfarm throws.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// An OS call failed: `what()` is "<context>: <strerror(err)>"; `code()` is the errno value.
class SystemError : public Error {
 public:
  SystemError(const std::string& context, int err);
  int code() const noexcept { return code_; }

 private:
  int code_;
};

/// Throws SystemError(context, errno).
[[noreturn]] void throw_errno(const std::string& context);

}  // namespace taskfarm
