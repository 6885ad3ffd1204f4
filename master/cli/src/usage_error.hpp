// UsageError: the command line, or an input it names, is wrong. The CLI prints what() as one
// line ("taskfarm: <what>") and exits with status 2. Thrown only before anything is created,
// so a usage error never leaves an output file or a segment behind.
#pragma once

#include <string>

#include "taskfarm/error.hpp"

namespace taskfarm::cli {

/// Bad command line or bad input: exit status 2. what() names the culprit.
class UsageError : public Error {
 public:
  using Error::Error;
};

}  // namespace taskfarm::cli
