// ShmSegment: one named POSIX shared-memory segment (/dev/shm/taskfarm-<pid>-<random>[-tag]),
// mapped into this process. The creating process owns the name and removes it when the owner
// object is destroyed; other processes open it by name and only unmap. Names carry the
// creator's pid so that segments of a dead creator can be swept (sweep_dead_segments).
// An object is used by one thread at a time; the mapping itself may be shared freely.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <sys/types.h>
#include <vector>

namespace taskfarm {

class ShmSegment {
 public:
  /// Creates a new segment exclusively (mode 0600) under a fresh unguessable name, reserves
  /// all `bytes` up front (so a full /dev/shm fails here, never as SIGBUS later) and maps it
  /// read-write. Throws Error naming the segment and the free space when it does not fit.
  static ShmSegment create(std::size_t bytes, std::string_view tag = {});
  /// Like create(), but reserves only the first `reserved` bytes; the rest stays sparse
  /// (checked against the free space now, but a /dev/shm filled later by others can still
  /// SIGBUS a writer there). For large buffers that are rarely filled, where reserving costs
  /// more than the work (posix_fallocate: ~0.2 ms per MiB here). Without `check_free` the size
  /// is not checked against the free space: for a writer that reserves each page before it
  /// writes it (InputLines::create_growing), so that only what is written must fit.
  static ShmSegment create_sparse(std::size_t bytes, std::size_t reserved, std::string_view tag = {},
                                  bool check_free = true);
  /// Maps an existing segment by name. Throws Error naming the segment if it does not exist
  /// or cannot be opened.
  static ShmSegment open(const std::string& name, bool writable = true);

  ShmSegment() noexcept;
  ShmSegment(ShmSegment&&) noexcept;
  ShmSegment& operator=(ShmSegment&&) noexcept;
  ShmSegment(const ShmSegment&) = delete;
  ShmSegment& operator=(const ShmSegment&) = delete;
  /// Unmaps; the creating process (and only it, not a forked child) also removes the name.
  ~ShmSegment();

  void* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  const std::string& name() const noexcept { return name_; }
  bool owns_name() const noexcept { return owner_pid_ != 0; }
  explicit operator bool() const noexcept { return data_ != nullptr; }

  /// Removes the name now (the mapping stays valid until destruction).
  void remove_name() noexcept;

 private:
  void reset() noexcept;

  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::string name_;
  pid_t owner_pid_ = 0;  // pid that must remove the name; 0 when this object only opened it
};

/// A fresh segment name: "taskfarm-<pid>-<16 random hex digits>[-tag]".
std::string unique_segment_name(std::string_view tag = {});

/// The pid encoded in a taskfarm segment name, or 0 if `name` is not one.
pid_t segment_owner_pid(std::string_view name) noexcept;

/// A segment of a dead creator that could not be removed, and why (errno: EPERM/EACCES when
/// it belongs to another user in a sticky /dev/shm).
struct SweepFailure {
  std::string name;
  int error = 0;
};

/// What sweep_dead_segments() did.
struct SweepReport {
  std::vector<std::string> removed;    ///< names removed
  std::vector<SweepFailure> failed;    ///< names it could not remove
  int scan_error = 0;                  ///< errno if /dev/shm could not be listed, else 0
};

/// The taskfarm segments in /dev/shm, by whether their creator still exists (a process of
/// another user counts as existing: it is not ours to judge).
struct SegmentCensus {
  std::vector<std::string> live, dead;  ///< names
  int scan_error = 0;                   ///< errno if /dev/shm could not be listed, else 0
};

/// Lists the taskfarm segments in /dev/shm (what `taskfarm info` counts and the sweep removes).
SegmentCensus census_segments();

/// Removes every taskfarm segment in /dev/shm whose creating process no longer exists and
/// reports what it removed and what it could not (a segment another sweeper removed first is
/// neither). Segments of live processes are never touched. Never throws for a segment.
SweepReport sweep_dead_segments();

/// Bytes that /dev/shm can still hold.
std::size_t shm_free_bytes();

/// "1.5 GiB", "12 MiB", "512 B": sizes in messages.
std::string format_bytes(std::size_t bytes);

}  // namespace taskfarm
