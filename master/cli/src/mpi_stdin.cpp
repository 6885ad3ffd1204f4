#include "mpi_stdin.hpp"

#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "taskfarm/error.hpp"
#include "taskfarm/shm_segment.hpp"
#include "usage_error.hpp"

namespace taskfarm::cli::mpi {
namespace {

bool is_separator(const std::string& w) { return w == ":::" || w == "::::" || w == ":::+" || w == "::::+"; }

// Where '-' stands for standard input: --input-lines, and the files after `::::` / `::::+`.
std::vector<std::string*> stdin_places(RunOptions& o, std::vector<std::string>& command) {
  std::vector<std::string*> places;
  if (o.input_lines == "-") places.push_back(&o.input_lines);
  bool files = false;
  for (std::string& w : command) {
    if (is_separator(w)) files = w == "::::" || w == "::::+";
    else if (files && w == "-") places.push_back(&w);
  }
  return places;
}

void write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0) throw_errno("--mpi: cannot copy standard input");
    p += w;
    n -= static_cast<std::size_t>(w);
  }
}

}  // namespace

std::optional<StdinCopy> StdinCopy::take(RunOptions& options, std::vector<std::string>& command, bool rank0,
                                         std::uint64_t limit) {
  const std::vector<std::string*> places = stdin_places(options, command);
  if (places.size() != 1) return std::nullopt;  // (twice is refused as on one machine)
  UniqueFd fd(::memfd_create("taskfarm-stdin", MFD_CLOEXEC));
  if (!fd) throw_errno("--mpi: memfd_create for standard input");
  if (rank0) {
    std::vector<char> buf(1 << 20);
    std::uint64_t total = 0;
    for (;;) {
      const ssize_t n = ::read(STDIN_FILENO, buf.data(), buf.size());
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) throw_errno("--mpi: cannot read standard input");
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
      if (total > limit)
        throw UsageError("standard input holds more than " + format_bytes(limit) +
                         " of lines: with --mpi it is read whole before the run starts (--input-lines-max)");
      write_all(fd.get(), buf.data(), static_cast<std::size_t>(n));
    }
  } else {
    write_all(fd.get(), "-\n", 2);  // a placeholder task until rank 0's bytes come
  }
  StdinCopy copy(std::move(fd));
  *places.front() = copy.path();
  return copy;
}

std::string StdinCopy::named(std::string message) const {
  const std::string quoted = "'" + path() + "'";
  for (std::size_t at; (at = message.find(quoted)) != std::string::npos;) message.replace(at, quoted.size(), "standard input");
  return message;
}

void StdinCopy::unmap() noexcept {
  if (map_ != nullptr) ::munmap(map_, mapped_);
  map_ = nullptr;
}

std::string_view StdinCopy::bytes() {
  struct stat st {};
  if (::fstat(fd_.get(), &st) != 0) throw_errno("--mpi: the copy of standard input");
  unmap();
  mapped_ = static_cast<std::uint64_t>(st.st_size);
  if (mapped_ == 0) return {};
  map_ = ::mmap(nullptr, mapped_, PROT_READ, MAP_SHARED, fd_.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw_errno("--mpi: cannot map the copy of standard input");
  }
  return {static_cast<const char*>(map_), mapped_};
}

char* StdinCopy::resize(std::uint64_t size) {
  unmap();
  if (::ftruncate(fd_.get(), 0) != 0 || ::ftruncate(fd_.get(), static_cast<off_t>(size)) != 0)
    throw_errno("--mpi: cannot hold rank 0's standard input (" + format_bytes(size) + ")");
  mapped_ = size;
  if (size == 0) return nullptr;
  map_ = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd_.get(), 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw_errno("--mpi: cannot map the copy of standard input");
  }
  return static_cast<char*>(map_);
}

}  // namespace taskfarm::cli::mpi
