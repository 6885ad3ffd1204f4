#include "taskfarm/detail/carry.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "taskfarm/detail/protocol.hpp"
#include "taskfarm/shm_segment.hpp"

namespace taskfarm {
namespace {
// What protects the master: no SIGBUS (a shrink), no bytes changing while it decodes (a write).
constexpr int kRequiredSeals = F_SEAL_SHRINK | F_SEAL_WRITE;
}  // namespace

UniqueFd write_carried(std::span<const char> bytes) {
  UniqueFd fd(::memfd_create("taskfarm-result", MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) throw_errno("memfd_create for a result of " + format_bytes(bytes.size()));
  // write(), not a mapping: a full memory cgroup or tmpfs limit is an error here (ENOSPC,
  // ENOMEM), where a store into a mapping would be a SIGBUS.
  std::size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw_errno("writing a result of " + format_bytes(bytes.size()) + " into a memfd");
    done += static_cast<std::size_t>(n);
  }
  if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
    throw_errno("sealing the memfd of a result");
  return fd;
}

CarriedRecords::CarriedRecords(UniqueFd fd, std::uint64_t len) : fd_(std::move(fd)) {
  struct stat st {};
  if (!fd_ || ::fstat(fd_.get(), &st) != 0 || !S_ISREG(st.st_mode))
    throw proto::ProtocolError("the descriptor carried with a Done is not a memfd");
  const int seals = ::fcntl(fd_.get(), F_GET_SEALS);
  if (seals < 0 || (seals & kRequiredSeals) != kRequiredSeals)
    throw proto::ProtocolError("the memfd carried with a Done is not sealed against writing and shrinking");
  if (len == 0 || static_cast<std::uint64_t>(st.st_size) != len)
    throw proto::ProtocolError("the memfd carried with a Done holds " + std::to_string(st.st_size) + " bytes, the Done says " + std::to_string(len));
  if (len > SIZE_MAX) throw CarryUnmappable("a carried result of " + std::to_string(len) + " bytes does not fit this address space");
  void* p = ::mmap(nullptr, static_cast<std::size_t>(len), PROT_READ, MAP_SHARED, fd_.get(), 0);
  if (p == MAP_FAILED)
    throw CarryUnmappable("the master could not map a result of " + format_bytes(static_cast<std::size_t>(len)) + ": " + SystemError("mmap", errno).what());
  data_ = p;
  len_ = static_cast<std::size_t>(len);
}

CarriedRecords::CarriedRecords(CarriedRecords&& other) noexcept
    : fd_(std::move(other.fd_)), data_(std::exchange(other.data_, nullptr)), len_(std::exchange(other.len_, 0)) {}

CarriedRecords::~CarriedRecords() {
  if (data_ != nullptr) ::munmap(data_, len_);
}

}  // namespace taskfarm
