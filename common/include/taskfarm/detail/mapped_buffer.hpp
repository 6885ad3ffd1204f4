// MappedBuffer: a growable byte buffer in its own anonymous mapping, for data read from an
// input of unknown size (the CLI's lines). Growth is mremap(): the pages move, nothing is copied,
// and the memory it holds is the pages written, not a doubled capacity — so a bound on its
// size is a bound on its memory. Pages already consumed can be given back (release_front).
// Owned by one thread at a time.
#pragma once

#include <cstddef>

namespace taskfarm::detail {

class MappedBuffer {
 public:
  MappedBuffer() noexcept = default;
  MappedBuffer(MappedBuffer&& other) noexcept;
  MappedBuffer& operator=(MappedBuffer&& other) noexcept;
  MappedBuffer(const MappedBuffer&) = delete;
  MappedBuffer& operator=(const MappedBuffer&) = delete;
  ~MappedBuffer();

  /// Appends `n` bytes; throws std::bad_alloc when the address space is refused (ENOMEM).
  void append(const void* bytes, std::size_t n);
  const char* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }

  /// Gives the whole pages below byte `end` back to the system (they read as zeros after).
  void release_front(std::size_t end) noexcept;

 private:
  char* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t capacity_ = 0;  // mapped bytes, a multiple of the page size
};

}  // namespace taskfarm::detail
