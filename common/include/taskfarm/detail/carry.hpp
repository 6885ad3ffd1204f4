// Carrying a result record too large for the worker's arena: the worker writes it into a
// sealed memfd and passes the descriptor with its Done (SCM_RIGHTS, see channel.hpp); the
// master validates the descriptor, maps it read-only, decodes and closes it. The kernel owns
// the memfd: a worker killed at any instant leaves no name behind, and the memory goes with
// the last descriptor. Worker side: write_carried(); master side: CarriedRecords.
#pragma once

#include <cstdint>
#include <span>

#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

/// Worker side: a memfd holding `bytes`, sealed against writing, shrinking and growing (so
/// the master's mapping can neither change nor fault). Throws SystemError (errno in code()).
UniqueFd write_carried(std::span<const char> bytes);

/// The master could not map a valid carried record (its own address space or memory limit):
/// the index fails, the worker is not at fault.
class CarryUnmappable : public Error {
 public:
  using Error::Error;
};

/// Master side: the bytes of a carried record, mapped read-only; unmapped (and the descriptor
/// closed) on destruction. Move-only, one owner.
class CarriedRecords {
 public:
  /// Takes `fd`; checks that it is a memfd sealed against writing and shrinking, of exactly
  /// `len` (> 0) bytes, and maps it. Throws proto::ProtocolError if not (the worker's fault),
  /// CarryUnmappable if the mapping fails here.
  CarriedRecords(UniqueFd fd, std::uint64_t len);
  CarriedRecords(CarriedRecords&& other) noexcept;
  CarriedRecords& operator=(CarriedRecords&&) = delete;
  CarriedRecords(const CarriedRecords&) = delete;
  CarriedRecords& operator=(const CarriedRecords&) = delete;
  ~CarriedRecords();

  std::span<const char> bytes() const noexcept { return {static_cast<const char*>(data_), len_}; }
  /// The memfd (mapped whole from offset 0).
  int fd() const noexcept { return fd_.get(); }

 private:
  UniqueFd fd_;
  void* data_ = nullptr;
  std::size_t len_ = 0;
};

}  // namespace taskfarm
