#include "taskfarm/detail/staged_file.hpp"

#include <fcntl.h>
#include <stdio.h>  // renameat2
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <utility>

#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::detail {
namespace {

std::atomic<unsigned> g_counter{0};

/// rename(2) that fails with EEXIST instead of replacing. renameat2 where the file system has
/// it; else link + unlink, which every POSIX file system with hard links does atomically.
int rename_no_replace(const std::string& from, const std::string& to) {
  if (::renameat2(AT_FDCWD, from.c_str(), AT_FDCWD, to.c_str(), RENAME_NOREPLACE) == 0) return 0;
  if (errno != EINVAL && errno != ENOSYS) return -1;
  if (::link(from.c_str(), to.c_str()) != 0) return -1;
  ::unlink(from.c_str());
  return 0;
}

}  // namespace

StagedFile StagedFile::create(const std::string& path) {
  StagedFile f;
  f.path_ = path;
  for (int attempt = 0;; ++attempt) {
    f.temp_ = path + ".taskfarm-" + std::to_string(::getpid()) + "-" + std::to_string(g_counter++) + ".tmp";
    f.fd_.reset(::open(f.temp_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0666));
    if (f.fd_) break;
    if (errno != EEXIST || attempt == 100) throw_errno("cannot create " + f.temp_);
  }
  if (!try_lock(f.fd_.get(), LockKind::exclusive, f.temp_)) {
    f.discard();
    throw Error("cannot lock " + f.temp_ + ": held by another process");
  }
  return f;
}

UniqueFd StagedFile::duplicate_fd() const {
  UniqueFd copy(::fcntl(fd_.get(), F_DUPFD_CLOEXEC, 0));
  if (!copy) throw_errno("cannot duplicate the descriptor of " + path_);
  return copy;
}

StagedFile::StagedFile(StagedFile&& o) noexcept
    : fd_(std::move(o.fd_)), path_(std::move(o.path_)), temp_(std::move(o.temp_)),
      published_(std::exchange(o.published_, false)) {
  o.temp_.clear();
}

StagedFile& StagedFile::operator=(StagedFile&& o) noexcept {
  if (this != &o) {
    discard();
    fd_ = std::move(o.fd_);
    path_ = std::move(o.path_);
    temp_ = std::move(o.temp_);
    published_ = std::exchange(o.published_, false);
    o.temp_.clear();
  }
  return *this;
}

StagedFile::~StagedFile() { discard(); }

void StagedFile::discard() noexcept {
  if (!published_ && !temp_.empty() && fd_) ::unlink(temp_.c_str());
  temp_.clear();
  fd_.reset();
}

void StagedFile::publish(bool replace_existing) {
  if (published_) return;
  if (!fd_) throw Error("publish() of an empty StagedFile");
  if (replace_existing) {
    require_regular_or_absent(path_);  // never a device or FIFO of the user's
    if (::rename(temp_.c_str(), path_.c_str()) != 0) throw_errno("cannot rename " + temp_ + " to " + path_);
  } else if (rename_no_replace(temp_, path_) != 0) {
    if (errno == EEXIST)
      throw Error("'" + path_ + "' appeared while this run was starting (another run?); it was left alone");
    throw_errno("cannot rename " + temp_ + " to " + path_);
  }
  published_ = true;
}

}  // namespace taskfarm::detail
