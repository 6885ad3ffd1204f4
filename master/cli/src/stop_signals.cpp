#include "stop_signals.hpp"

#include <atomic>
#include <csignal>

#include "taskfarm/farm.hpp"

namespace taskfarm::cli {
namespace {

constexpr int kSignals[] = {SIGINT, SIGTERM, SIGHUP};

std::atomic<Farm*> g_farm{nullptr};
volatile std::sig_atomic_t g_received = 0;
struct sigaction g_previous[3];
struct sigaction g_previous_pipe;
struct sigaction g_previous_xfsz;

void on_signal(int sig) {
  if (g_received == 0) g_received = sig;
  if (Farm* farm = g_farm.load()) farm->request_stop();
}

}  // namespace

StopSignals::StopSignals() {
  static_assert(std::atomic<Farm*>::is_always_lock_free);
  g_received = 0;
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = static_cast<int>(SA_RESETHAND);  // the second Ctrl-C kills
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &sa, &g_previous[i]);
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  ::sigaction(SIGPIPE, &ignore, &g_previous_pipe);
  ::sigaction(SIGXFSZ, &ignore, &g_previous_xfsz);
}

StopSignals::~StopSignals() {
  detach();
  for (int i = 0; i < 3; ++i) ::sigaction(kSignals[i], &g_previous[i], nullptr);
  ::sigaction(SIGPIPE, &g_previous_pipe, nullptr);
  ::sigaction(SIGXFSZ, &g_previous_xfsz, nullptr);
}

void StopSignals::attach(Farm& farm) noexcept {
  g_farm.store(&farm);
  if (g_received != 0) farm.request_stop();  // a signal came before the farm existed
}

void StopSignals::detach() noexcept { g_farm.store(nullptr); }

void StopSignals::stop(int sig) noexcept { on_signal(sig); }

int StopSignals::received() const noexcept { return static_cast<int>(g_received); }

const volatile std::sig_atomic_t* StopSignals::flag() const noexcept { return &g_received; }

}  // namespace taskfarm::cli
