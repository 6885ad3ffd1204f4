// The input of a job is read-only in every kind of worker: a forked worker that attaches
// JobSpec::input_handle the plain way (AnySharedArray::attach) — even when the master was given
// a writable array's handle — gets a PROT_READ mapping, so a stray write is a SIGSEGV charged
// to its index and the file on disk never changes. (Worker programs: tests/cli/files.sh.)
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/worker.hpp"

using namespace taskfarm;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

TEST(ReadOnlyInput, ForkedWorkerWritingIntoItsInputFaultsAndTheFileIsUnchanged) {
  const std::string path = ::testing::TempDir() + "taskfarm-input-" + std::to_string(::getpid()) + ".npy";
  std::string writable_handle;
  {
    auto in = SharedArray<double>::create_npy(path, {64});
    for (std::size_t i = 0; i < 64; ++i) in.view()(i) = static_cast<double>(i);
    writable_handle = in.handle();  // "npy:…": what a careless caller might pass
  }
  const std::string before = read_file(path);
  auto out = SharedArray<double>::create({64});

  struct Copy final : JobRunner {
    double* out;
    AnySharedArray in;
    explicit Copy(double* o) : out(o) {}
    void begin_job(const JobInfo& job) override { in = AnySharedArray::attach(job.input_handle); }
    void run(std::uint64_t i, std::string&) override {
      auto* p = static_cast<double*>(in.data());
      if (i == 9) p[i] = -1.0;  // the stray write
      out[i] = p[i] * 2;
    }
  };
  FarmOptions o;
  o.workers = 2;
  o.retries = 0;
  Farm farm = Farm::fork(o);
  JobSpec job;
  job.extent = {64};
  job.input_handle = writable_handle;
  ForkKernelFactory make = [&out]() -> std::unique_ptr<JobRunner> { return std::make_unique<Copy>(out.data()); };
  const RunReport r = farm.run(job, nullptr, make);
  farm.close();

  EXPECT_EQ(r.failed_indices(), std::vector<std::uint64_t>{9}) << "the write into the input went through";
  ASSERT_FALSE(r.failures.empty());
  EXPECT_EQ(r.failures[0].cause, FailureCause::signal);
  EXPECT_EQ(r.failures[0].signal, SIGSEGV);
  EXPECT_EQ(r.succeeded, 63u);
  for (std::size_t i = 0; i < 64; ++i) {
    if (i == 9) continue;
    EXPECT_EQ(out.view()(i), 2.0 * static_cast<double>(i)) << "index " << i;
  }
  EXPECT_EQ(read_file(path), before) << "the input file changed on disk";
  std::filesystem::remove(path);
}
