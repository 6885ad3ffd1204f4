// bench_child [wait]: the bare child of the baselines. Without arguments it exits at once
// (what posix_spawn of a trivial C++ program costs); with `wait` it sleeps until killed
// (the bare child whose SIGKILL a pidfd poll detects).
#include <unistd.h>

#include <cstring>

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "wait") == 0) {
    for (;;) ::pause();
  }
  return 0;
}
