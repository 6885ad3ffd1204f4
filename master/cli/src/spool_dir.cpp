#include "spool_dir.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "taskfarm/error.hpp"

namespace taskfarm::cli {
namespace {

constexpr std::string_view kPrefix = "taskfarm-";

bool digits(std::string_view s) {
  return !s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos;
}

// What the built-in workers put in a spool directory (worker/exec/src/spool.hpp): nothing else
// is ever removed.
bool ours(std::string_view name) {
  if (name.starts_with("slot-")) return digits(name.substr(5));
  if (!name.ends_with(".out") && !name.ends_with(".err")) return false;
  name.remove_suffix(4);
  if (digits(name)) return true;  // <index>.out
  if (!name.starts_with("w")) return false;
  name.remove_prefix(1);
  // w<pid>-<n>-<index>, or w<pid>-<n> (left by a run of an earlier version)
  for (int part = 0; part < 3; ++part) {
    const auto dash = name.find('-');
    if (!digits(name.substr(0, dash))) return false;
    if (dash == std::string_view::npos) return part > 0;
    name.remove_prefix(dash + 1);
  }
  return false;
}

/// Removes what taskfarm put in `dir` and `dir` itself; false if something else is there.
bool remove_spool(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT;
  bool clean = true;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name == "." || name == "..") continue;
    if (!ours(name) || ::unlinkat(::dirfd(d), e->d_name, 0) != 0) clean = false;
  }
  ::closedir(d);
  return ::rmdir(dir.c_str()) == 0 && clean;
}

/// Whether `dir` holds only what taskfarm puts there (a directory of a dead master is swept
/// only then: one holding anything else is left whole, as the message says).
bool only_ours(const std::string& dir) {
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return errno == ENOENT;
  bool clean = true;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (name != "." && name != ".." && !ours(name)) clean = false;
  }
  ::closedir(d);
  return clean;
}

/// The pid of a spool directory's master, from taskfarm-<pid>-XXXXXX; 0 if it is not one.
pid_t master_of(std::string_view name) {
  if (!name.starts_with(kPrefix)) return 0;
  name.remove_prefix(kPrefix.size());
  const auto dash = name.find('-');
  if (dash == std::string_view::npos || !digits(name.substr(0, dash)) || dash > 9 || name.size() - dash - 1 != 6) return 0;
  return static_cast<pid_t>(std::strtol(std::string(name.substr(0, dash)).c_str(), nullptr, 10));
}

}  // namespace

SpoolDir SpoolDir::create(const std::string& parent) {
  std::string path = parent + "/" + std::string(kPrefix) + std::to_string(::getpid()) + "-XXXXXX";
  if (::mkdtemp(path.data()) == nullptr)
    throw SystemError("cannot make a directory for the commands' output in " + parent + " (--tmpdir)", errno);
  UniqueFd lock(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (lock) ::flock(lock.get(), LOCK_SH | LOCK_NB);  // best effort: without it a sweep judges by kill() alone
  return SpoolDir(std::move(path), std::move(lock));
}

SpoolDir::~SpoolDir() {
  if (!path_.empty()) remove_spool(path_);
}

std::vector<std::string> sweep_dead_spools(const std::string& parent, std::vector<std::string>& problems) {
  std::vector<std::string> removed;
  DIR* d = ::opendir(parent.c_str());
  if (d == nullptr) return removed;
  std::vector<std::string> dead;
  while (const dirent* e = ::readdir(d)) {
    const pid_t pid = master_of(e->d_name);
    if (pid <= 0 || pid == ::getpid()) continue;
    struct stat st {};
    if (::fstatat(::dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != ::geteuid())
      continue;
    if (::kill(pid, 0) == 0 || errno != ESRCH) continue;  // its master (or a process of that pid) runs
    // No such process here — or its master runs in another PID namespace, holding the lock.
    UniqueFd held(::openat(::dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!held || (::flock(held.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK)) continue;
    dead.push_back(parent + "/" + e->d_name);
  }
  ::closedir(d);
  for (const std::string& dir : dead) {
    if (only_ours(dir) && remove_spool(dir)) removed.push_back(dir);
    else problems.push_back(dir + ": holds files taskfarm did not make there, left as it is");
  }
  return removed;
}

std::string default_spool_parent() {
  const char* env = std::getenv("TMPDIR");
  return env != nullptr && *env != '\0' ? env : "/tmp";
}

}  // namespace taskfarm::cli
