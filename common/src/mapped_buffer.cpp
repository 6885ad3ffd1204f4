#include "taskfarm/detail/mapped_buffer.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <new>
#include <utility>

namespace taskfarm::detail {
namespace {
constexpr std::size_t kFirstMapping = 64 * 1024;
std::size_t page_size() noexcept { return static_cast<std::size_t>(::sysconf(_SC_PAGESIZE)); }
}  // namespace

MappedBuffer::MappedBuffer(MappedBuffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      capacity_(std::exchange(other.capacity_, 0)) {}

MappedBuffer& MappedBuffer::operator=(MappedBuffer&& other) noexcept {
  if (this != &other) {
    MappedBuffer gone(std::move(*this));
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
  }
  return *this;
}

MappedBuffer::~MappedBuffer() {
  if (data_ != nullptr) ::munmap(data_, capacity_);
}

void MappedBuffer::append(const void* bytes, std::size_t n) {
  if (n == 0) return;
  if (n > capacity_ - size_) {
    if (n > SIZE_MAX / 2 - size_) throw std::bad_alloc();
    const std::size_t page = page_size();
    // Doubling keeps the number of mremap calls logarithmic; untouched pages cost nothing.
    std::size_t want = std::max({kFirstMapping, capacity_ * 2, size_ + n});
    want = (want + page - 1) / page * page;
    void* p = data_ == nullptr ? ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
                               : ::mremap(data_, capacity_, want, MREMAP_MAYMOVE);
    if (p == MAP_FAILED) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    capacity_ = want;
  }
  std::memcpy(data_ + size_, bytes, n);
  size_ += n;
}

void MappedBuffer::release_front(std::size_t end) noexcept {
  const std::size_t pages = std::min(end, size_) / page_size() * page_size();
  if (pages > 0) ::madvise(data_, pages, MADV_DONTNEED);
}

}  // namespace taskfarm::detail
