// `taskfarm run --mpi --mpi-gather` (docs/design.md §17, "Without a shared file system"): the
// output .npy is rank 0's alone. Every other node's workers write into a node-local shm array of
// the output's dtype and shape; its node master sends the bytes of each piece that ended up its
// socket (DataRelay) just before that piece's joblog rows, its relay passes them to rank 0 as MPI
// messages of at most kMaxTextBytes, and rank 0 writes them into the output (GatherSink). MPI keeps
// one sender's messages in order, so rank 0 writes a row into the joblog only once its bytes are
// in the output: a --resume never skips a task whose bytes were lost with their rank.
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "mpi_wire.hpp"
#include "taskfarm/farm.hpp"
#include "taskfarm/shared_array.hpp"

namespace taskfarm::cli::mpi {

/// Whether a node sees rank 0's file system where the output is (then it maps the output; else it
/// gathers, unless --mpi-gather makes every node gather): rank 0 makes a file of a random name
/// beside the output, every other rank looks for it, and rank 0 removes it (design §17).
class Probe {
 public:
  /// Makes the file beside `output` (an empty hidden file, mode 0600). Throws Error naming it.
  explicit Probe(const std::string& output);
  ~Probe();  ///< removes it
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;
  std::uint64_t token() const noexcept { return token_; }

 private:
  std::string path_;
  std::uint64_t token_ = 0;
};
/// The probe's path beside `output` for `token`.
std::string probe_path(const std::string& output, std::uint64_t token);
/// Whether this rank sees rank 0's probe `token` beside `output` (its own path: relative to its
/// own working directory, as its node master maps the output).
bool sees_probe(const std::string& output, std::uint64_t token);

/// The output's dtype, ndim and extents as "go" carries them (kGoDtype...), from rank 0 to all.
using GatherShape = std::array<std::uint64_t, 2 + kGoMaxDims>;
/// Throws Error if the output has more than kGoMaxDims dimensions.
GatherShape gather_shape(const AnySharedArray& output);
/// Puts `shape` into a "go" Wire.
void put_gather_shape(Wire& go, const GatherShape& shape);
/// A node's array for --mpi-gather: a new zero-filled shm segment of go's dtype and shape, which
/// the returned object removes.
AnySharedArray gather_array(const Wire& go);

/// A node master's observer, first in its fanout: each piece's bytes (ended or finally failed,
/// as a shared file would hold them) up its socket at once, before its rows are made.
class DataRelay final : public FarmObserver {
 public:
  DataRelay(int fd, const AnySharedArray& array, std::uint64_t tasks);
  void on_tasks_done(const TasksDone& t) override { send(t.begin, t.end); }
  void on_failure(const FailureRecord& f) override {
    if (f.final && f.index) send(*f.index, *f.index + 1);
  }

 private:
  void send(std::uint64_t begin, std::uint64_t end);
  int fd_;
  const char* data_;
  std::uint64_t per_index_;
};

/// A node relay's next MPI message of output bytes: the `data` datagrams that follow one another
/// in the output, up to kMaxBytes — sent when the socket has no more at once, or before any other
/// message (which keeps a piece's bytes before its rows). One MPI message per 32 KiB datagram cost
/// up to a millisecond each at rank 0 (its loop waits 1 ms on its own socket between probes).
class DataBatch {
 public:
  static constexpr std::size_t kMaxBytes = std::size_t{1} << 20;
  /// Whether `m`'s bytes continue this batch within kMaxBytes (true when empty).
  bool fits(const Message& m) const noexcept;
  void add(const Message& m);
  bool empty() const noexcept { return message_.empty(); }
  /// An 8-byte offset, then the bytes (GatherSink::write's message).
  const std::string& message() const noexcept { return message_; }
  void clear() noexcept { message_.clear(); }

 private:
  std::string message_;
  std::uint64_t next_ = 0;  // the offset just after the batch's bytes
};

/// Rank 0's end: the output file mapped once more, written where each message says.
class GatherSink {
 public:
  explicit GatherSink(const std::string& path) : output_(AnySharedArray::open_npy(path, /*writable=*/true)) {}
  /// One MPI message from rank `from`: an 8-byte offset, then bytes. Throws Error if they do not fit.
  void write(int from, const char* message, std::size_t n);
  const AnySharedArray& output() const noexcept { return output_; }
  std::uint64_t bytes() const noexcept { return bytes_; }

 private:
  AnySharedArray output_;
  std::uint64_t bytes_ = 0;  // written so far (the summary's figure)
};

}  // namespace taskfarm::cli::mpi
