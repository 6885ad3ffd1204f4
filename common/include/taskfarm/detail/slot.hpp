// The per-worker slot segment: what a worker leaves behind that the master must be able to
// read after the worker is killed at any instant — which chunk and index it was running and
// since when — plus its result arena (a byte ring for variable-size results). One segment per
// worker, so a faulty worker can only damage its own. The master creates and removes it; the
// worker maps it. Fields say which process writes them; no field is ever locked.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "taskfarm/shm_segment.hpp"

namespace taskfarm {

inline constexpr std::uint64_t kNoChunk = ~std::uint64_t{0};

struct SlotState {
  static constexpr std::uint32_t kMagic = 0x544f4c53;  // "SLOT"
  std::uint32_t magic;                   // master, at creation
  std::uint32_t version;                 // master, at creation
  std::uint64_t arena_offset;            // master, at creation: arena start within the segment
  std::uint64_t arena_capacity;          // master, at creation
  std::atomic<std::uint64_t> current_chunk;    // worker: chunk in progress, kNoChunk between chunks
  std::atomic<std::uint64_t> current_index;    // worker: index in progress (valid with current_chunk)
  std::atomic<std::int64_t> task_started_ns;   // worker: CLOCK_MONOTONIC start of that index; 0 idle
  std::atomic<std::uint64_t> tasks_done;       // worker: indices completed since start
  std::atomic<std::uint64_t> arena_consumed;   // master: arena bytes read (monotonic position)
  std::atomic<std::uint32_t> arena_waiting;    // worker: 1 while it waits for arena room
  // What the master needs when a worker dies after its tasks returned but before their results
  // reached it (a task that closes descriptors it did not open breaks the channel, a thread it
  // left behind crashes the process): every held chunk up to `last_chunk` that the master has
  // not heard about has run, so one of its indices is the suspect.
  std::atomic<std::uint32_t> delivering;       // worker: 1 while it talks to the master (results, room)
  std::atomic<std::uint64_t> last_chunk;       // worker: the chunk it began last (kNoChunk before any)
  // The process that runs the task when it is a process of its own (a command per task, as
  // taskfarm-exec runs: TaskContext::set_task_process), so the stall report can name it and say
  // whether it is stopped. Set once it has started, 0 before it is reaped (the pid is its own
  // until then); a worker killed meanwhile leaves a pid its command no longer holds. Untrusted:
  // the master names it only if that process's parent or process group is the worker.
  std::atomic<std::int32_t> task_pid;          // worker: 0 when none
};
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);
// The layout docs/protocol.md gives (what a worker writes is read after it died).
static_assert(offsetof(SlotState, current_chunk) == 24 && offsetof(SlotState, arena_waiting) == 64 &&
              offsetof(SlotState, delivering) == 68 && offsetof(SlotState, last_chunk) == 72 &&
              offsetof(SlotState, task_pid) == 80);

/// CLOCK_MONOTONIC in nanoseconds (the clock task_started_ns uses).
std::int64_t monotonic_ns() noexcept;

/// Master side: creates a slot segment with an arena of `arena_bytes`, and resets it for a
/// new worker.
ShmSegment create_slot(std::size_t arena_bytes);
void reset_slot(SlotState& s) noexcept;
SlotState& slot_state(const ShmSegment& seg) noexcept;

/// Worker side of the arena: appends records at a monotonic position.
class ArenaWriter {
 public:
  ArenaWriter(SlotState& s, char* base) : s_(s), base_(base) {}
  /// Where `len` bytes would go now, or nullptr if the master must consume first.
  /// Throws Error if `len` can never fit (the worker carries such records in a memfd instead:
  /// detail/carry.hpp).
  char* try_reserve(std::size_t len, std::uint64_t& pos);
  void commit(std::uint64_t pos, std::size_t len) noexcept { write_pos_ = pos + len; }

 private:
  SlotState& s_;
  char* base_;
  std::uint64_t write_pos_ = 0;
};

/// Master side of the arena: validates and reads what a worker says it wrote.
class ArenaReader {
 public:
  ArenaReader(SlotState& s, const char* base) : s_(s), base_(base) {}
  /// The bytes at [pos, pos+len); throws ProtocolError if the worker's claim is impossible.
  std::span<const char> read(std::uint64_t pos, std::uint64_t len) const;
  /// Marks everything up to pos+len as consumed.
  void release(std::uint64_t pos, std::uint64_t len) noexcept;

 private:
  SlotState& s_;
  const char* base_;
};

}  // namespace taskfarm
