#include "calls.hpp"

#include <algorithm>

namespace taskfarm::detail {

bool Calls::wait(const Call& call, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (call.finished()) return true;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

void Calls::wait_completed(std::size_t count, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    if (completed() >= count || in_flight() == 0) return;
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return;
    poll(std::min(left, std::chrono::milliseconds(100)));
  }
}

}  // namespace taskfarm::detail
