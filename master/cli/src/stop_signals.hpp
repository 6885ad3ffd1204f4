// StopSignals: while alive, SIGINT, SIGTERM and SIGHUP ask the attached Farm to stop
// (Farm::request_stop is async-signal-safe: stop dispatching, stop workers, remove segments)
// and are remembered for the exit status (128 + signal). The handler is one-shot: a second
// signal takes the default action, killing the master at once. SIGPIPE is ignored so that a
// closed stdout is an error the master handles (see stop()), not a death that orphans workers;
// SIGXFSZ too, so that a joblog past the file size limit (RLIMIT_FSIZE) is a failed write
// (EFBIG) that stops the run, not a killed master. Workers start with default dispositions.
// One instance per process, created and destroyed on the main thread.
#pragma once

#include <csignal>

namespace taskfarm {
class Farm;
}

namespace taskfarm::cli {

class StopSignals {
 public:
  StopSignals();   ///< installs the handlers
  ~StopSignals();  ///< restores the previous ones
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  /// From now on a signal (or stop()) calls farm.request_stop(); the farm must outlive detach().
  void attach(Farm& farm) noexcept;
  void detach() noexcept;
  /// What a signal does, without one: remembers `sig` and asks the attached farm to stop.
  void stop(int sig) noexcept;
  /// The first signal received (or passed to stop()), 0 if none.
  int received() const noexcept;
  /// The flag behind received(), for a wait that must see a signal come (StdoutWriter::drain).
  const volatile std::sig_atomic_t* flag() const noexcept;
};

}  // namespace taskfarm::cli
