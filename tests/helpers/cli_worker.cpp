// A worker program for the `taskfarm` CLI tests. Each task writes value(k) into every output
// element k it owns (the elements of row i when the output's first axis is the task count, else
// element i), and/or prints a line; it misbehaves at chosen indices.
//   cli_worker [--print] [--from-input] [--crash-at K,..] [--throw-at K,..] [--exit-at K,..]
//              [--throw-all] [--crash-once-at K --marker-dir DIR] [--block-from K] [--spin-ms MS]
//              [--gate FIFO] [--block-at K,..] [--scribble-header-at K]
// value(k) = (k * 7919) % 65521, reduced % 251 for uint8; --from-input: 2 * input.flat[k]
// (float64 input). --print: "task i" or, with --input-lines, "i: <line i>". --block-from K:
// every index >= K blocks until the worker is killed (the master's death kills it); --block-at:
// those indices do. --spin-ms:
// each task burns MS of CPU first (a slow task; the worker runtime reports finished chunks
// at least every millisecond, so each one reaches the master before the next starts).
// --gate FIFO: the worker's first task first reads the FIFO to its end, so it cannot finish
// before the test has written into it and closed it (an event, not a timing).
// --scribble-header-at K: task K writes 64 bytes just before the output's data first — over the
// .npy header that shares its page (a stray write the master must find and undo: F10).
#include <fcntl.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>

#include "taskfarm/worker.hpp"

namespace {

constexpr std::uint64_t kNone = ~0ull;

double value(std::uint64_t k) { return static_cast<double>((k * 7919) % 65521); }

void store(taskfarm::AnySharedArray& out, std::uint64_t k, double v) {
  void* p = out.data();
  switch (out.dtype()) {
    case taskfarm::DType::u8: static_cast<std::uint8_t*>(p)[k] = static_cast<std::uint8_t>(static_cast<int>(v) % 251); break;
    case taskfarm::DType::u16: static_cast<std::uint16_t*>(p)[k] = static_cast<std::uint16_t>(v); break;
    case taskfarm::DType::i32: static_cast<std::int32_t*>(p)[k] = static_cast<std::int32_t>(v); break;
    case taskfarm::DType::i64: static_cast<std::int64_t*>(p)[k] = static_cast<std::int64_t>(v); break;
    case taskfarm::DType::f32: static_cast<float*>(p)[k] = static_cast<float>(v); break;
    case taskfarm::DType::f64: static_cast<double*>(p)[k] = v; break;
  }
}

std::set<std::uint64_t> parse_list(const char* text) {
  std::set<std::uint64_t> out;
  for (char* end = nullptr;; text = end + 1) {
    out.insert(std::strtoull(text, &end, 10));
    if (*end != ',') return out;
  }
}

void spin(long ms) {
  timespec t0{}, t1{};
  ::clock_gettime(CLOCK_MONOTONIC, &t0);
  do ::clock_gettime(CLOCK_MONOTONIC, &t1);
  while ((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1'000'000 < ms);
}

std::uint64_t tasks_of(const taskfarm::TaskContext& t) {
  std::uint64_t n = 1;
  for (auto e : t.extent()) n *= e;
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  bool print = false, from_input = false, throw_all = false;
  std::set<std::uint64_t> crash_at, throw_at, exit_at, block_at;
  std::uint64_t crash_once_at = kNone, block_from = kNone, scribble_at = kNone;
  std::string marker_dir, gate;
  long spin_ms = 0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::strtoull(argv[++i], nullptr, 10) : kNone; };
    auto list = [&] { return i + 1 < argc ? parse_list(argv[++i]) : std::set<std::uint64_t>{}; };
    if (a == "--print") print = true;
    else if (a == "--from-input") from_input = true;
    else if (a == "--throw-all") throw_all = true;
    else if (a == "--crash-at") crash_at = list();
    else if (a == "--throw-at") throw_at = list();
    else if (a == "--exit-at") exit_at = list();
    else if (a == "--block-at") block_at = list();
    else if (a == "--crash-once-at") crash_once_at = next();
    else if (a == "--block-from") block_from = next();
    else if (a == "--scribble-header-at") scribble_at = next();
    else if (a == "--marker-dir" && i + 1 < argc) marker_dir = argv[++i];
    else if (a == "--spin-ms") spin_ms = static_cast<long>(next());
    else if (a == "--gate" && i + 1 < argc) gate = argv[++i];
  }
  return taskfarm::run_worker([&](taskfarm::TaskContext& t) {
    const std::uint64_t i = t.index();
    if (i >= block_from || block_at.count(i) != 0)
      for (;;) ::pause();
    if (!gate.empty()) {  // open() waits for the writer, read() for its close
      const int fd = ::open(gate.c_str(), O_RDONLY | O_CLOEXEC);
      char buf[64];
      while (fd >= 0 && ::read(fd, buf, sizeof buf) > 0) {
      }
      if (fd >= 0) ::close(fd);
      gate.clear();
    }
    if (spin_ms > 0) spin(spin_ms);
    if (crash_at.count(i) != 0) ::raise(SIGSEGV);
    if (exit_at.count(i) != 0) std::_Exit(3);
    if (throw_all || throw_at.count(i) != 0) throw std::runtime_error("cli_worker was told to throw at " + std::to_string(i));
    if (i == crash_once_at) {
      const std::string marker = marker_dir + "/crashed-" + std::to_string(i);
      const int fd = ::open(marker.c_str(), O_CREAT | O_EXCL | O_WRONLY, 0644);
      if (fd >= 0) {  // first attempt: leave a mark, then die
        ::close(fd);
        ::raise(SIGSEGV);
      }
    }
    if (print) {
      if (t.job().lines_handle.empty()) std::printf("task %llu\n", static_cast<unsigned long long>(i));
      else std::printf("%llu: %.*s\n", static_cast<unsigned long long>(i), static_cast<int>(t.line().size()), t.line().data());
    }
    if (t.job().output_handle.empty()) return;
    taskfarm::AnySharedArray& out = t.output();
    if (i == scribble_at) std::memset(static_cast<char*>(out.data()) - 64, 'A', 64);
    const std::uint64_t n = tasks_of(t);
    const std::uint64_t per_task = out.size() == n ? 1 : out.size() / n;  // a row per task
    const double* in = from_input ? t.input_as<double>().data() : nullptr;
    for (std::uint64_t k = i * per_task; k < (i + 1) * per_task; ++k)
      store(out, k, in != nullptr ? 2 * in[k] : value(k));
  });
}
