// The net under every command: whatever escapes a command becomes one line on stderr and a
// documented exit status, never an exception reaching main() (std::terminate's abort, 134).
#include <gtest/gtest.h>

#include <new>
#include <stdexcept>
#include <string>

#include "app.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {
namespace {

struct Outcome {
  int status;
  std::string err;
};

template <class F>
Outcome run_guarded(F body) {
  ::testing::internal::CaptureStderr();
  const int status = exit_status_of(body);
  return {status, ::testing::internal::GetCapturedStderr()};
}

TEST(MainEntry, EveryEscapingExceptionIsOneLineAndAStatus) {
  auto o = run_guarded([]() -> int { throw std::runtime_error("boom\nsecond line"); });
  EXPECT_EQ(o.status, 3);
  EXPECT_EQ(o.err, "taskfarm: internal error: boom second line\n");

  o = run_guarded([]() -> int { throw std::bad_alloc(); });
  EXPECT_EQ(o.status, 3);
  EXPECT_EQ(o.err, "taskfarm: out of memory\n");

  o = run_guarded([]() -> int { throw std::length_error("vector<bool>::_M_fill_insert"); });
  EXPECT_EQ(o.status, 3);
  EXPECT_EQ(o.err, "taskfarm: internal error: vector<bool>::_M_fill_insert\n");

  o = run_guarded([]() -> int { throw UsageError("--tasks: 'x' is not a positive integer"); });
  EXPECT_EQ(o.status, 2);
  EXPECT_EQ(o.err, "taskfarm: --tasks: 'x' is not a positive integer\n");

  o = run_guarded([]() -> int { throw Error("cannot stat /dev/shm: No such file or directory"); });
  EXPECT_EQ(o.status, 3);
  EXPECT_EQ(o.err, "taskfarm: cannot stat /dev/shm: No such file or directory\n");

  o = run_guarded([]() -> int { throw 42; });
  EXPECT_EQ(o.status, 3);
  EXPECT_EQ(o.err, "taskfarm: internal error: an exception of unknown type\n");

  o = run_guarded([] { return 7; });
  EXPECT_EQ(o.status, 7);
  EXPECT_EQ(o.err, "");
}

TEST(MainEntry, CommandLineMistakesAreUsageErrors) {
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"taskfarm", "run", "--tasks"}, {"taskfarm", "run", "--tasks=1", "--tasks=2", "--", "w"},
        {"taskfarm", "clean", "extra"}, {"taskfarm", "bogus"}, {"taskfarm", "run", "--shape", "4294967296x4294967296", "--", "/bin/true"}}) {
    ::testing::internal::CaptureStderr();
    EXPECT_EQ(main_entry(args), 2) << args[2];
    const std::string err = ::testing::internal::GetCapturedStderr();
    EXPECT_EQ(err.find('\n'), err.size() - 1) << err;
  }
}

}  // namespace
}  // namespace taskfarm::cli
