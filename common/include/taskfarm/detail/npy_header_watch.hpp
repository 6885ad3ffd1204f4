// NpyHeaderWatch: the header of a .npy file this process maps read-write (create_npy, open_npy),
// kept so that the master can tell, after a run, whether a worker wrote over it and put it back.
// A worker's stray write just before its first element lands in the header: they share a page,
// so no protection can stop it, and the file would no longer load (the hostile test's F10).
// Watches register process-wide (any thread); Farm::run checks them all at the end of a run.
#pragma once

#include <string>
#include <vector>

namespace taskfarm::detail {

class NpyHeaderWatch {
 public:
  /// Watches the `header.size()` bytes at `base` (the start of the mapped file `path`).
  NpyHeaderWatch(char* base, std::string header, std::string path);
  ~NpyHeaderWatch();
  NpyHeaderWatch(const NpyHeaderWatch&) = delete;  // registered by address
  NpyHeaderWatch& operator=(const NpyHeaderWatch&) = delete;

  /// Writes the header back if the mapped bytes differ from it; true if it had to.
  bool restore() noexcept;
  const std::string& path() const noexcept { return path_; }

 private:
  char* base_;
  std::string header_, path_;
};

/// Restores every watched header of this process that was written over; returns their files.
std::vector<std::string> restore_npy_headers();

}  // namespace taskfarm::detail
