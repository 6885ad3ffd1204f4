#include "taskfarm/error.hpp"

#include <cxxabi.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <new>
#include <typeinfo>

#include "taskfarm/detail/caught.hpp"

namespace taskfarm {

SystemError::SystemError(const std::string& context, int err)
    : Error(context + ": " + std::strerror(err)), code_(err) {}

void throw_errno(const std::string& context) { throw SystemError(context, errno); }

namespace detail {

std::string exception_type_name(const std::exception& e) {
  int status = 0;
  char* d = abi::__cxa_demangle(typeid(e).name(), nullptr, nullptr, &status);
  std::string s = status == 0 && d != nullptr ? d : typeid(e).name();
  std::free(d);
  return s;
}

CaughtException caught_exception() {
  try {
    throw;
  } catch (const std::bad_alloc& e) {
    return {true, exception_type_name(e), e.what()};
  } catch (const std::exception& e) {
    return {false, exception_type_name(e), e.what()};
  } catch (...) {
    return {false, "unknown exception", ""};
  }
}

}  // namespace detail

}  // namespace taskfarm
