#include "spool.hpp"

#include "taskfarm/serialize.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string_view>

#include "taskfarm/error.hpp"

namespace taskfarm::exec {
namespace {

const char* extension(Stream s) { return s == Stream::out ? ".out" : ".err"; }

}  // namespace

std::string spool_write_failed_message(const std::string& dir, std::uint64_t index, Stream s, int err) {
  const std::string where = "--tmpdir " + std::filesystem::path(dir).parent_path().string();
  const bool full = err == ENOSPC || err == EDQUOT;
  return (full ? where + " is full" : "cannot write into " + where) + " (" + std::strerror(err) + "): the " +
         (s == Stream::out ? "stdout" : "stderr") + " of index " + std::to_string(index) + " could not be written whole";
}

std::string task_output_path(const std::string& dir, std::uint64_t index, Stream s) {
  return dir + "/" + std::to_string(index) + extension(s);
}

int SpoolFile::fd(std::uint64_t index) {
  const auto name = [&] {
    return dir_ + "/w" + std::to_string(::getpid()) + "-" + std::to_string(made_) + "-" + std::to_string(index) + extension(stream_);
  };
  if (fd_ && index == index_) return fd_.get();
  if (fd_) {  // an empty file left by the last command: named for this task now (--line-buffer reads the name)
    const std::string to = name();
    if (::rename(name_.c_str(), to.c_str()) != 0) throw_errno("cannot rename " + name_ + " to " + to);
    name_ = to;
    index_ = index;
    return fd_.get();
  }
  ++made_;
  name_ = name();
  index_ = index;
  fd_.reset(::open(name_.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
  if (!fd_ && (errno == ENOSPC || errno == EDQUOT)) throw SpoolWriteFailed(spool_write_failed_message(dir_, index, stream_, errno));
  if (!fd_) throw_errno("cannot create " + name_ + " for a command's output");
  return fd_.get();
}

std::optional<LiveFile> parse_live_name(std::string_view name) {
  LiveFile f;
  if (name.ends_with(".out")) f.stream = Stream::out;
  else if (name.ends_with(".err")) f.stream = Stream::err;
  else return std::nullopt;
  name.remove_suffix(4);
  if (!name.starts_with("w")) return std::nullopt;
  name.remove_prefix(1);
  std::uint64_t part[3] = {0, 0, 0};
  for (int k = 0; k < 3; ++k) {
    const auto end = k < 2 ? name.find('-') : name.size();
    if (end == 0 || end == std::string_view::npos) return std::nullopt;
    for (char c : name.substr(0, end)) {
      if (c < '0' || c > '9' || part[k] > (~0ull - 9) / 10) return std::nullopt;
      part[k] = part[k] * 10 + static_cast<std::uint64_t>(c - '0');
    }
    name.remove_prefix(k < 2 ? end + 1 : end);
  }
  f.worker = static_cast<pid_t>(part[0]);
  f.index = part[2];
  return f;
}

std::optional<PublishedSizes> published_sizes(std::span<const char> value) {
  if (value.size() != sizeof(PublishedSizes)) return std::nullopt;  // (cereal's binary: the two words)
  try {
    return detail::deserialize<PublishedSizes>(value);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

std::uint64_t SpoolFile::publish(std::uint64_t index) {
  if (!fd_) return 0;
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_errno("fstat of " + name_);
  if (st.st_size == 0) return 0;  // nothing written: the same file serves the next command
  const std::string to = task_output_path(dir_, index, stream_);
  if (::rename(name_.c_str(), to.c_str()) != 0) throw_errno("cannot rename " + name_ + " to " + to);
  fd_.reset();
  return static_cast<std::uint64_t>(st.st_size);
}

std::string SpoolFile::tail(std::size_t n) const {
  if (!fd_) return {};
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0 || st.st_size <= 0) return {};
  const auto size = static_cast<std::uint64_t>(st.st_size);
  const std::uint64_t from = size > n ? size - n : 0;
  std::string s(static_cast<std::size_t>(size - from), '\0');
  const ssize_t got = ::pread(fd_.get(), s.data(), s.size(), static_cast<off_t>(from));
  s.resize(got > 0 ? static_cast<std::size_t>(got) : 0);
  return s;
}

void remove_task_output(const std::string& dir, std::uint64_t index) {
  for (Stream s : {Stream::out, Stream::err}) {
    const std::string path = task_output_path(dir, index, s);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) throw_errno("cannot remove " + path);
  }
}

bool adopt_partial_output(const std::string& dir, pid_t worker, std::uint64_t index) {
  const std::string prefix = "w" + std::to_string(worker) + "-";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return false;
  bool any = false;
  while (const dirent* e = ::readdir(d)) {
    const std::string_view name = e->d_name;
    if (!name.starts_with(prefix)) continue;
    const Stream s = name.ends_with(".out") ? Stream::out : Stream::err;
    const std::string from = dir + "/" + std::string(name);
    struct stat st {};
    if (::stat(from.c_str(), &st) != 0 || st.st_size == 0) continue;  // a file it had not written to yet
    if (::rename(from.c_str(), task_output_path(dir, index, s).c_str()) == 0) any = true;
  }
  ::closedir(d);
  return any;
}

unsigned take_slot(const std::string& dir) {
  static UniqueFd held;  // for the life of the process: the kernel releases it at exit
  for (unsigned k = 1;; ++k) {
    const std::string path = dir + "/slot-" + std::to_string(k);
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!fd) throw_errno("cannot open " + path);
    if (::flock(fd.get(), LOCK_EX | LOCK_NB) == 0) {
      held = std::move(fd);
      return k;
    }
    if (errno != EWOULDBLOCK) throw_errno("cannot lock " + path);
  }
}

}  // namespace taskfarm::exec
