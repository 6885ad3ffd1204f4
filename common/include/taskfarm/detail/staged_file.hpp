// StagedFile: a new file written under a temporary name beside its final path and renamed over
// that path by publish(). Until then nothing at the final path is touched; an existing file
// there is replaced whole (rename(2)) or not at all — never truncated or written in place —
// and only if it is a regular file. The destructor removes the temporary file unless it was
// published: that is the only file a StagedFile ever removes. The file is held under an
// exclusive flock(2) while the object lives, so another taskfarm run can tell it is in use.
// Used by AnySharedArray::create_npy, Joblog, Trace and the `taskfarm` CLI; one thread.
#pragma once

#include <string>

#include "taskfarm/unique_fd.hpp"

namespace taskfarm::detail {

class StagedFile {
 public:
  /// Creates "PATH.taskfarm-<pid>-<n>.tmp" in the directory of `path` (O_EXCL, read-write,
  /// mode 0666 less the umask) and locks it. Throws SystemError naming the temporary path.
  /// First removes such temporary files of `path` left by processes that are gone (killed before
  /// they could remove them), whose lock is free and that begin as a .npy, joblog or trace of
  /// taskfarm's does — files of no other name or content are ever removed.
  static StagedFile create(const std::string& path);

  StagedFile() noexcept = default;
  StagedFile(StagedFile&& other) noexcept;
  StagedFile& operator=(StagedFile&& other) noexcept;
  StagedFile(const StagedFile&) = delete;
  StagedFile& operator=(const StagedFile&) = delete;
  ~StagedFile();  ///< removes the temporary file unless published; closes (unlocks)

  /// Renames the temporary file to path(). `replace_existing`: a regular file there is replaced
  /// atomically; otherwise anything there makes this throw (it appeared since the caller looked).
  /// Never replaces a FIFO, device, directory...: throws Error naming it. Idempotent.
  void publish(bool replace_existing);

  int fd() const noexcept { return fd_.get(); }
  /// A second descriptor of the same open file (close-on-exec), its flock included: a writer
  /// keeps the file open (and locked) for as long as it needs, whatever becomes of this object.
  /// Throws SystemError naming path().
  UniqueFd duplicate_fd() const;
  const std::string& path() const noexcept { return path_; }
  const std::string& temp_path() const noexcept { return temp_; }
  bool published() const noexcept { return published_; }
  explicit operator bool() const noexcept { return static_cast<bool>(fd_); }

 private:
  void discard() noexcept;

  UniqueFd fd_;
  std::string path_;
  std::string temp_;
  bool published_ = false;
};

}  // namespace taskfarm::detail
