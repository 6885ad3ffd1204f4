#include "taskfarm/detail/slot.hpp"

#include <time.h>

#include <new>

#include "taskfarm/detail/protocol.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm {

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

ShmSegment create_slot(std::size_t arena_bytes) {
  constexpr std::size_t header = 4096;
  // The header is reserved; the arena stays sparse: most jobs write results in place and never
  // touch it, and reserving 16 MiB per worker cost more than a whole small run (bench: 51% of
  // the master's CPU at start-up).
  ShmSegment seg = ShmSegment::create_sparse(header + arena_bytes, header, "slot");
  auto* s = new (seg.data()) SlotState{};
  s->magic = SlotState::kMagic;
  s->version = proto::kVersion;
  s->arena_offset = header;
  s->arena_capacity = arena_bytes;
  reset_slot(*s);
  return seg;
}

void reset_slot(SlotState& s) noexcept {
  s.current_chunk.store(kNoChunk);
  s.current_index.store(0);
  s.task_started_ns.store(0);
  s.tasks_done.store(0);
  s.arena_consumed.store(0);
  s.arena_waiting.store(0);
  s.delivering.store(0);
  s.last_chunk.store(kNoChunk);
  s.task_pid.store(0);
}

SlotState& slot_state(const ShmSegment& seg) noexcept { return *static_cast<SlotState*>(seg.data()); }

char* ArenaWriter::try_reserve(std::size_t len, std::uint64_t& pos) {
  const std::uint64_t cap = s_.arena_capacity;
  if (len > cap) throw Error("a result record of " + format_bytes(len) + " exceeds the worker's result arena of " + format_bytes(cap) + " (raise FarmOptions::arena_bytes)");
  std::uint64_t p = write_pos_;
  if (p % cap + len > cap) p += cap - p % cap;  // records never wrap: skip to the start
  if (p + len - s_.arena_consumed.load(std::memory_order_acquire) > cap) return nullptr;
  pos = p;
  return base_ + p % cap;
}

std::span<const char> ArenaReader::read(std::uint64_t pos, std::uint64_t len) const {
  const std::uint64_t cap = s_.arena_capacity;
  const std::uint64_t consumed = s_.arena_consumed.load(std::memory_order_relaxed);
  if (len > cap || pos < consumed || pos - consumed > cap || pos % cap + len > cap)
    throw proto::ProtocolError("arena record [" + std::to_string(pos) + ", +" + std::to_string(len) + ") is outside the arena");
  return {base_ + pos % cap, static_cast<std::size_t>(len)};
}

void ArenaReader::release(std::uint64_t pos, std::uint64_t len) noexcept {
  s_.arena_consumed.store(pos + len, std::memory_order_release);
}

}  // namespace taskfarm
