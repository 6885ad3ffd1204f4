#include "taskfarm/chaos.hpp"

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <stdexcept>

namespace taskfarm::chaos {

void trigger(Fault fault, std::uint64_t index) {
  switch (fault) {
    case Fault::segfault: ::raise(SIGSEGV); break;
    case Fault::abort: std::abort();
    case Fault::exit: std::_Exit(3);
    case Fault::exception: throw std::runtime_error("chaos: injected exception at index " + std::to_string(index));
    case Fault::hang:
      for (;;) ::pause();
  }
}

}  // namespace taskfarm::chaos
