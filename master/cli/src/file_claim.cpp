#include "file_claim.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include "taskfarm/detail/user_file.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli {

FileClaim FileClaim::take(const std::string& option, const std::string& path, Use use) {
  const auto kind = use == Use::write ? detail::LockKind::exclusive : detail::LockKind::shared;
  // The lock is on the file opened; if the path was replaced meanwhile, lock what is there now.
  for (int attempt = 0; attempt < 5; ++attempt) {
    FileClaim claim;
    try {
      claim.fd_ = detail::open_regular_file(path, O_RDONLY);
      if (!detail::try_lock(claim.fd_.get(), kind, path))
        throw UsageError(option + ": '" + path + "' is in use by another taskfarm run (locked: " +
                         (use == Use::write ? "read or written" : "being written") + " by it)");
    } catch (const SystemError& e) {
      if (e.code() == ENOENT) return FileClaim{};
      throw UsageError(option + ": " + e.what());
    } catch (const UsageError&) {
      throw;
    } catch (const Error& e) {
      throw UsageError(option + ": " + e.what());
    }
    struct stat held {}, now {};
    if (::fstat(claim.fd_.get(), &held) == 0 && ::stat(path.c_str(), &now) == 0 && held.st_dev == now.st_dev &&
        held.st_ino == now.st_ino)
      return claim;
  }
  throw UsageError(option + ": '" + path + "' keeps being replaced by another process");
}

CreatedFile::~CreatedFile() {
  if (path_.empty()) return;
  struct stat st {};
  if (::stat(path_.c_str(), &st) == 0 && st.st_dev == dev_ && st.st_ino == ino_) ::unlink(path_.c_str());
}

void CreatedFile::arm(std::string path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return;
  dev_ = st.st_dev;
  ino_ = st.st_ino;
  path_ = std::move(path);
}

}  // namespace taskfarm::cli
