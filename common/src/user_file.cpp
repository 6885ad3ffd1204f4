#include "taskfarm/detail/user_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "taskfarm/error.hpp"

namespace taskfarm::detail {
namespace {

[[noreturn]] void throw_not_regular(const std::string& path, mode_t mode) {
  throw Error("'" + path + "' is " + std::string(file_kind(mode)) + ", not a regular file");
}

}  // namespace

std::string_view file_kind(mode_t mode) {
  switch (mode & S_IFMT) {
    case S_IFREG: return "a regular file";
    case S_IFDIR: return "a directory";
    case S_IFIFO: return "a FIFO";
    case S_IFCHR: return "a character device";
    case S_IFBLK: return "a block device";
    case S_IFSOCK: return "a socket";
    case S_IFLNK: return "a symbolic link";
    default: return "not a regular file";
  }
}

UniqueFd open_regular_file(const std::string& path, int flags) {
  if ((flags & (O_CREAT | O_TRUNC)) != 0) throw Error("open_regular_file(" + path + "): O_CREAT/O_TRUNC not allowed");
  require_regular_or_absent(path);  // a device is refused before it is opened
  UniqueFd fd(::open(path.c_str(), flags | O_NONBLOCK | O_NOCTTY | O_CLOEXEC));
  if (!fd) {
    const int err = errno;
    struct stat st {};
    // ENXIO: a FIFO (swapped in since the stat) opened for writing without a reader.
    if (err == ENXIO && ::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) throw_not_regular(path, st.st_mode);
    throw SystemError("cannot open " + path, err);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat " + path);
  if (!S_ISREG(st.st_mode)) throw_not_regular(path, st.st_mode);
  const int fl = ::fcntl(fd.get(), F_GETFL);
  if (fl < 0 || ::fcntl(fd.get(), F_SETFL, fl & ~O_NONBLOCK) != 0) throw_errno("cannot clear O_NONBLOCK on " + path);
  return fd;
}

void require_regular_or_absent(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode)) throw_not_regular(path, st.st_mode);
    return;
  }
  // Absent (or unreachable: opening it will say why) — unless it is a link to nothing, which
  // a new file would replace: the user's link is not ours to remove.
  if (errno == ENOENT && ::lstat(path.c_str(), &st) == 0 && S_ISLNK(st.st_mode))
    throw Error("'" + path + "' is a symbolic link to nothing, not a regular file");
}

bool try_lock(int fd, LockKind kind, const std::string& path) {
  const int op = (kind == LockKind::exclusive ? LOCK_EX : LOCK_SH) | LOCK_NB;
  while (::flock(fd, op) != 0) {
    if (errno == EWOULDBLOCK) return false;
    if (errno != EINTR) throw_errno("cannot lock " + path);
  }
  return true;
}

}  // namespace taskfarm::detail
