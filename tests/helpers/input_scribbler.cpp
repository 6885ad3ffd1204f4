// A hostile worker program for the CLI tests: a kernel that writes into its --input. Every task
// copies input element i to output element i (float64 --input and --output); the task at --at K
// first writes into the input through the raw pointer, as a buggy kernel would. The input is
// mapped read-only in every worker, so that write must fault — SIGSEGV, charged to index K —
// and never reach the file.
//   input_scribbler [--at K]
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "taskfarm/worker.hpp"

int main(int argc, char** argv) {
  std::uint64_t at = ~0ull;
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], "--at") == 0) at = std::strtoull(argv[++i], nullptr, 10);
  return taskfarm::run_worker([at](taskfarm::TaskContext& t) {
    const std::uint64_t i = t.index();
    auto* in = static_cast<double*>(t.input().data());  // data() is a plain pointer: nothing stops the write but the mapping
    if (i == at) in[i] = -1.0;
    static_cast<double*>(t.output().data())[i] = in[i];
  });
}
