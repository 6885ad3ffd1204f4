// `taskfarm run --mpi` with standard input as a source (`--input-lines -`, `:::: -`): mpirun
// gives standard input to rank 0 only, yet every rank reads its tasks itself (only ranges
// travel). So every rank reads them from a memfd instead of '-', named "/proc/self/fd/N" — the
// same descriptor in its node master, which is forked from it before MPI_Init. Rank 0 copies
// standard input into its memfd first (whole, up to --input-lines-max: the input must be known
// before the run starts); the other ranks plan with a placeholder line, rank 0 broadcasts the
// bytes after MPI_Init into their memfds, and their node masters plan again from them (and check
// that they read what rank 0 read). docs/design.md §17. Main thread of each rank.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "run_options.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli::mpi {

class StdinCopy {
 public:
  /// If `options` or `command` read standard input ('-'), makes the copy and puts its path in
  /// their place; nullopt if they do not. Rank 0 reads standard input into it, at most `limit`
  /// bytes (Error, naming standard input, beyond). Throws Error if it cannot.
  static std::optional<StdinCopy> take(RunOptions& options, std::vector<std::string>& command, bool rank0,
                                       std::uint64_t limit);

  /// What rank 0 read (its bytes, mapped). Throws Error.
  std::string_view bytes();
  /// The other ranks: replaces the placeholder with rank 0's `size` bytes, which the caller
  /// writes into the returned span. Throws Error.
  char* resize(std::uint64_t size);
  int fd() const noexcept { return fd_.get(); }
  /// Where the plan reads it: "/proc/self/fd/N".
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_.get()); }
  /// `message` with the copy's path, quoted, named "standard input" (what the user gave).
  std::string named(std::string message) const;

 private:
  explicit StdinCopy(UniqueFd fd) : fd_(std::move(fd)) {}
  void unmap() noexcept;
  UniqueFd fd_;
  void* map_ = nullptr;
  std::uint64_t mapped_ = 0;

 public:
  StdinCopy(StdinCopy&& o) noexcept : fd_(std::move(o.fd_)), map_(o.map_), mapped_(o.mapped_) { o.map_ = nullptr; }
  StdinCopy& operator=(StdinCopy&& o) noexcept {
    unmap();
    fd_ = std::move(o.fd_);
    map_ = std::exchange(o.map_, nullptr);
    mapped_ = o.mapped_;
    return *this;
  }
  ~StdinCopy() { unmap(); }
};

}  // namespace taskfarm::cli::mpi
