#include "taskfarm/error.hpp"

#include <cerrno>
#include <cstring>

namespace taskfarm {

SystemError::SystemError(const std::string& context, int err)
    : Error(context + ": " + std::strerror(err)), code_(err) {}

void throw_errno(const std::string& context) { throw SystemError(context, errno); }

}  // namespace taskfarm
