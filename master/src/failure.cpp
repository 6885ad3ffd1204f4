#include "taskfarm/failure.hpp"

#include <string.h>

#include <algorithm>
#include <csignal>
#include <cstring>

#include "taskfarm/farm.hpp"

namespace taskfarm {

std::string_view to_string(FailureCause cause) noexcept {
  switch (cause) {
    case FailureCause::signal: return "signal";
    case FailureCause::exit: return "exit";
    case FailureCause::exception: return "exception";
    case FailureCause::timeout: return "timeout";
    case FailureCause::memory: return "memory";
    case FailureCause::protocol: return "protocol";
    case FailureCause::start: return "start";
  }
  return "unknown";
}

std::string signal_name(int sig) {
  const char* abbrev = ::sigabbrev_np(sig);
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

std::string FailureRecord::describe() const { return describe_whose() + ": " + describe_cause(); }

std::string FailureRecord::describe_whose() const {
  std::string s = index ? "index " + std::to_string(*index) : "worker";
  return s + " (attempt " + std::to_string(attempt) + ", slot " + std::to_string(slot) + ", pid " + std::to_string(pid) + ")";
}

std::string FailureRecord::describe_cause() const {
  std::string s;
  switch (cause) {
    case FailureCause::signal: s += (task_process ? "command killed by " : "killed by ") + signal_name(signal); break;
    case FailureCause::exit: s += (task_process ? "command exited with code " : "worker exited with code ") + std::to_string(exit_code); break;
    case FailureCause::exception: s += "threw " + exception_type + ": " + message; break;
    case FailureCause::timeout: s += "timed out; " + message; break;
    case FailureCause::memory:
      if (task_process)  // a command that failed for want of memory: how it ended, then the command
        s += "command ran out of memory (" +
             (signal != 0 ? "killed by " + signal_name(signal) : "exited with code " + std::to_string(exit_code)) + ")";
      else
        s += "out of memory: " + message;
      break;
    case FailureCause::protocol: s += "sent an invalid message, killed: " + message; break;
    case FailureCause::start: s += "could not start: " + message; break;
  }
  if (!message.empty() && task_process) s += ": " + message;
  else if (!message.empty() && (cause == FailureCause::signal || cause == FailureCause::exit)) s += " (" + message + ")";
  return s;
}

std::vector<std::uint64_t> RunReport::failed_indices() const {
  std::vector<std::uint64_t> v;
  for (const auto& f : failures)
    if (f.final && f.index) v.push_back(*f.index);
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

std::uint64_t RunReport::unfinished_count() const noexcept {
  std::uint64_t n = 0;
  for (auto [b, e] : unfinished) n += e - b;
  return n;
}

}  // namespace taskfarm
