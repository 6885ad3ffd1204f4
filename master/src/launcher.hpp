// Launcher: the seam where kinds of worker plug in. The Supervisor asks it to start a worker
// for a slot and gets back the WorkerProcess that owns it; how that process comes to be —
// forked to run a JobRunner, a worker program started with vfork + exec, later a command per
// task or a node of its own — is the launcher's business, and neither the Dispatcher nor the
// Supervisor changes for a new kind. Every kind goes through spawn.hpp, which applies the memory
// limit, thread environment, stderr pipe, process group and parent-death binding.
// Master side, the Farm's thread.
#pragma once

#include <string>
#include <vector>

#include "spawn.hpp"
#include "taskfarm/farm.hpp"
#include "worker_process.hpp"

namespace taskfarm {

class Launcher {
 public:
  virtual ~Launcher() = default;
  /// Starts a worker that uses `slot` (its slot segment, reset for it). `master_fds` are this
  /// process's descriptors a child must not keep (other workers' channels and pipes). Throws
  /// SpawnError or SystemError; for_want_of_resources(errno) says whether to try again later.
  virtual WorkerProcess start(ShmSegment slot, const std::vector<int>& master_fds) = 0;
  /// What a worker that never completed its handshake is called in messages.
  virtual std::string name() const = 0;
  /// Whether its workers live for one run only (forked ones: their memory is the run's snapshot).
  virtual bool per_run() const noexcept = 0;
};

/// Fork mode: each worker is forked from this process and runs the JobRunner the run's factory
/// builds, so it sees this process's memory as it is at the run.
class ForkLauncher final : public Launcher {
 public:
  explicit ForkLauncher(SpawnLimits limits) : limits_(std::move(limits)) {}
  /// The factory of the run about to start (it must outlive the run).
  void use(const ForkKernelFactory* factory) noexcept { factory_ = factory; }
  WorkerProcess start(ShmSegment slot, const std::vector<int>& master_fds) override;
  std::string name() const override { return "a forked worker"; }
  bool per_run() const noexcept override { return true; }

 private:
  SpawnLimits limits_;
  const ForkKernelFactory* factory_ = nullptr;
};

/// Warm fork mode (WarmPool): each worker is forked from this process once and serves every
/// later run, building each job's JobRunner with `make` — which must therefore not depend on this
/// process's memory as it is at the run (docs/design.md §16).
class WarmForkLauncher final : public Launcher {
 public:
  WarmForkLauncher(SpawnLimits limits, WarmRunnerFactory make) : limits_(std::move(limits)), make_(std::move(make)) {}
  WorkerProcess start(ShmSegment slot, const std::vector<int>& master_fds) override;
  std::string name() const override { return "a forked worker"; }
  bool per_run() const noexcept override { return false; }

 private:
  SpawnLimits limits_;
  WarmRunnerFactory make_;
};

/// Program mode: each worker is `program args...` (vfork + exec), warm across runs.
class ProgramLauncher final : public Launcher {
 public:
  ProgramLauncher(SpawnLimits limits, std::string program, std::vector<std::string> args)
      : limits_(std::move(limits)), program_(std::move(program)), args_(std::move(args)) {}
  WorkerProcess start(ShmSegment slot, const std::vector<int>& master_fds) override;
  std::string name() const override { return program_; }
  bool per_run() const noexcept override { return false; }

 private:
  SpawnLimits limits_;
  std::string program_;
  std::vector<std::string> args_;
};

}  // namespace taskfarm
