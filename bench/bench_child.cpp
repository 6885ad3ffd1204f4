// bench_child [wait | parent N | orphan]: the bare child of the baselines. Without arguments it
// exits at once (what posix_spawn of a trivial C++ program costs); with `wait` it sleeps until
// killed (the bare child whose SIGKILL a pidfd poll detects). `parent N` is the bare master of
// the master-death baseline: it starts N `orphan`s and sleeps until killed; each orphan binds
// itself to it with PR_SET_PDEATHSIG(SIGKILL), as taskfarm workers do, prints its pid on stdout
// and spins (a busy worker) until that signal comes, or at most 30 s.
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern char** environ;

namespace {

// Dies with its parent, as taskfarm's bind_to_parent does: the signal, then a check that
// the parent did not die before prctl took effect.
void die_with_parent(pid_t parent) {
  ::prctl(PR_SET_PDEATHSIG, SIGKILL);
  if (::getppid() != parent) ::_exit(3);
}

int parent(const char* self, int n) {
  die_with_parent(::getppid());  // never outlive the bench either
  char pid_text[24];
  std::snprintf(pid_text, sizeof pid_text, "%d", static_cast<int>(::getpid()));
  char* argv[] = {const_cast<char*>(self), const_cast<char*>("orphan"), pid_text, nullptr};
  for (int k = 0; k < n; ++k) {
    pid_t pid = 0;
    if (::posix_spawn(&pid, self, nullptr, nullptr, argv, environ) != 0) return 4;
  }
  for (;;) ::pause();
}

int orphan(pid_t parent) {
  die_with_parent(parent);
  std::printf("%d\n", static_cast<int>(::getpid()));
  std::fflush(stdout);
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  while (std::chrono::steady_clock::now() < end) {
  }
  return 5;  // the signal never came
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "wait") == 0) {
    for (;;) ::pause();
  }
  if (argc > 2 && std::strcmp(argv[1], "parent") == 0) return parent(argv[0], std::atoi(argv[2]));
  if (argc > 2 && std::strcmp(argv[1], "orphan") == 0)
    return orphan(static_cast<pid_t>(std::atoi(argv[2])));
  return 0;
}
