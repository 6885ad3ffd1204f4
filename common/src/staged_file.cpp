#include "taskfarm/detail/staged_file.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>  // renameat2
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <string_view>
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

/// The pid in "<base>.taskfarm-<pid>-<n>.tmp", the name create() gives; 0 for any other name.
pid_t staged_by(std::string_view name, std::string_view base) {
  constexpr std::string_view mid = ".taskfarm-", tail = ".tmp";
  if (!name.starts_with(base) || !name.ends_with(tail)) return 0;
  name = name.substr(base.size(), name.size() - base.size() - tail.size());
  if (!name.starts_with(mid)) return 0;
  name.remove_prefix(mid.size());
  const auto dash = name.find('-');
  auto digits = [](std::string_view d) { return !d.empty() && d.size() <= 9 && d.find_first_not_of("0123456789") == d.npos; };
  if (dash == name.npos || !digits(name.substr(0, dash)) || !digits(name.substr(dash + 1))) return 0;
  return static_cast<pid_t>(std::strtol(std::string(name.substr(0, dash)).c_str(), nullptr, 10));
}

/// Whether the file begins as every file taskfarm stages does: a .npy (its magic), a joblog (its
/// identity line) or a trace (its first record). A file a user happened to give such a name
/// (outside pass h12 F10: it was removed, silently) does not.
bool begins_as_ours(int fd) {
  static constexpr std::string_view signatures[] = {"\x93NUMPY", "# taskfarm joblog ", "[\n{\"name\":\"process_name\""};
  char head[32] = {};
  const ssize_t n = ::pread(fd, head, sizeof head, 0);
  if (n <= 0) return false;
  const std::string_view got(head, static_cast<std::size_t>(n));
  for (std::string_view s : signatures)
    if (got.starts_with(s)) return true;
  return false;
}

/// Removes the temporary files of `path` that a process killed before it could remove them left
/// (SIGKILL, power loss): a name create() gives, a regular file of ours that begins as taskfarm's
/// files do, its process gone and its flock free. A run killed before publishing would otherwise
/// leave an output-sized file beside the user's for ever. Best effort: whatever cannot be checked
/// or removed stays (a trace killed before its first records reached the file, too).
void sweep_dead_temporaries(const std::string& path) {
  const auto slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
  const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const pid_t pid = staged_by(e->d_name, base);
    if (pid <= 0 || pid == ::getpid() || ::kill(pid, 0) == 0 || errno != ESRCH) continue;
    UniqueFd fd(::openat(::dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOATIME));
    struct stat st {};
    if (!fd || ::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid()) continue;
    if (!begins_as_ours(fd.get())) continue;
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) ::unlinkat(::dirfd(d), e->d_name, 0);
  }
  ::closedir(d);
}

}  // namespace

StagedFile StagedFile::create(const std::string& path) {
  sweep_dead_temporaries(path);
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
