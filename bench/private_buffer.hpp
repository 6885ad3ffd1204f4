// PrivateBuffer: the benchmarks' own baseline memory, an anonymous private mapping that forked
// children do not inherit (MADV_DONTFORK). A fork write-protects every private page of the
// parent until its next write to it faults, even after the child exited (measured: memcpy into
// 200 MiB drops from ~18 to ~3.7 GB/s). Fork-mode calls in the same process would otherwise
// slow the serial baselines down, and fork itself would copy their page tables.
// Owned by one thread of the bench process; never shared with workers.
#pragma once

#include <sys/mman.h>

#include <cstddef>
#include <string>

#include "taskfarm/error.hpp"

namespace taskfarm::bench {

template <class T>
class PrivateBuffer {
 public:
  /// `count` elements of fresh (never touched) memory.
  explicit PrivateBuffer(std::size_t count) : count_(count) {
    void* p = ::mmap(nullptr, bytes(), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
      throw_errno("mmap of " + std::to_string(bytes()) + " bytes for a baseline buffer");
    if (::madvise(p, bytes(), MADV_DONTFORK) != 0) {
      ::munmap(p, bytes());
      throw_errno("madvise(MADV_DONTFORK) of a baseline buffer");
    }
    data_ = static_cast<T*>(p);
  }
  PrivateBuffer(const PrivateBuffer&) = delete;
  PrivateBuffer& operator=(const PrivateBuffer&) = delete;
  ~PrivateBuffer() { ::munmap(data_, bytes()); }

  T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return count_; }
  std::size_t bytes() const noexcept { return count_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  std::size_t count_;
};

}  // namespace taskfarm::bench
