#include "live_output.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <vector>

namespace taskfarm::cli {
namespace {

constexpr std::size_t kScan = 64 * 1024;

// The offset just after the last '\n' in [from, to) of `fd`, or `from` if there is none.
std::uint64_t after_last_newline(int fd, std::uint64_t from, std::uint64_t to) {
  std::vector<char> buf(kScan);
  while (to > from) {
    const std::uint64_t start = to - std::min<std::uint64_t>(to - from, kScan);
    const ssize_t got = ::pread(fd, buf.data(), static_cast<std::size_t>(to - start), static_cast<off_t>(start));
    if (got <= 0) return from;
    for (ssize_t k = got; k-- > 0;)
      if (buf[static_cast<std::size_t>(k)] == '\n') return start + static_cast<std::uint64_t>(k) + 1;
    to = start;
  }
  return from;
}

}  // namespace

void LiveOutput::poll(std::optional<std::uint64_t> only) {
  DIR* d = ::opendir(spool_.c_str());
  if (d == nullptr) return;
  while (const dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    const auto live = exec::parse_live_name(name);
    if (!live || (only && live->index != *only) || done_.contains(live->index)) continue;
    auto t = tails_.find(name);
    if (t == tails_.end()) {
      UniqueFd fd(::openat(::dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC));
      struct stat st {};
      if (!fd || ::fstat(fd.get(), &st) != 0) continue;  // published or removed meanwhile: printed whole when done
      t = tails_.emplace(name, Tail{std::move(fd), live->index, live->stream, st.st_dev, st.st_ino, 0}).first;
    }
    print_lines(t->second);
  }
  ::closedir(d);
}

void LiveOutput::print_lines(Tail& t) {
  struct stat st {};
  if (::fstat(t.fd.get(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) <= t.printed) return;
  const std::uint64_t end = after_last_newline(t.fd.get(), t.printed, static_cast<std::uint64_t>(st.st_size));
  if (end == t.printed) return;  // no whole line yet
  StdoutWriter& w = t.stream == exec::Stream::out ? out_ : err_;
  if (::lseek(t.fd.get(), static_cast<off_t>(t.printed), SEEK_SET) < 0) return;
  t.printed += w.write_file(t.fd.get(), end - t.printed);
}

std::uint64_t LiveOutput::resume_offset(std::uint64_t index, exec::Stream s, int fd) {
  struct stat st {};
  const bool known = fd >= 0 && ::fstat(fd, &st) == 0;
  std::uint64_t offset = 0;
  done_.insert(index);
  for (auto t = tails_.begin(); t != tails_.end();) {
    if (t->second.index != index || t->second.stream != s) {
      ++t;
      continue;
    }
    // The same file (renamed, or adopted after its worker died): go on from there.
    if (known && t->second.dev == st.st_dev && t->second.ino == st.st_ino) offset = t->second.printed;
    t = tails_.erase(t);
  }
  return offset;
}

}  // namespace taskfarm::cli
