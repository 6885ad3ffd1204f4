#include "mpi_gather.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>

#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {

std::string probe_path(const std::string& output, std::uint64_t token) {
  const std::size_t slash = output.rfind('/');
  char name[64];
  std::snprintf(name, sizeof name, ".taskfarm-probe-%016llx", static_cast<unsigned long long>(token));
  return (slash == std::string::npos ? std::string() : output.substr(0, slash + 1)) + name;
}

Probe::Probe(const std::string& output) {
  std::random_device random;
  token_ = (std::uint64_t{random()} << 32) ^ random() ^ 1;  // never 0: 0 says "no probe"
  path_ = probe_path(output, token_);
  const int fd = ::open(path_.c_str(), O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
  if (fd < 0) throw Error("--mpi: cannot make " + path_ + " (which says whether the other nodes see the output): " + std::strerror(errno));
  ::close(fd);
}

Probe::~Probe() { ::unlink(path_.c_str()); }

bool sees_probe(const std::string& output, std::uint64_t token) {
  return ::access(probe_path(output, token).c_str(), F_OK) == 0;
}

GatherShape gather_shape(const AnySharedArray& output) {
  if (output.ndim() > kGoMaxDims)
    throw Error("--mpi-gather: the output has " + std::to_string(output.ndim()) + " dimensions, at most " +
                std::to_string(kGoMaxDims) + " can be gathered");
  GatherShape s{};
  s[0] = static_cast<std::uint64_t>(output.dtype());
  s[1] = output.ndim();
  for (std::size_t k = 0; k < output.ndim(); ++k) s[2 + k] = output.shape()[k];
  return s;
}

void put_gather_shape(Wire& go, const GatherShape& shape) {
  for (std::size_t k = 0; k < shape.size(); ++k) go.v[kGoDtype + k] = shape[k];
}

AnySharedArray gather_array(const Wire& go) {
  Shape shape;
  for (std::uint64_t k = 0; k < go.v[kGoNdim] && k < kGoMaxDims; ++k) shape.push_back(go.v[kGoDims + k]);
  return AnySharedArray::create(static_cast<DType>(go.v[kGoDtype]), shape);
}

DataRelay::DataRelay(int fd, const AnySharedArray& array, std::uint64_t tasks)
    : fd_(fd), data_(static_cast<const char*>(array.data())), per_index_(tasks == 0 ? 0 : array.bytes() / tasks) {}

void DataRelay::send(std::uint64_t begin, std::uint64_t end) {
  if (per_index_ == 0 || end <= begin) return;
  send_data(fd_, begin * per_index_, data_ + begin * per_index_, (end - begin) * per_index_);
}

bool DataBatch::fits(const Message& m) const noexcept {
  return message_.empty() || (m.wire.v[0] == next_ && message_.size() + m.text.size() <= 8 + kMaxBytes);
}

void DataBatch::add(const Message& m) {
  if (message_.empty()) {
    message_.reserve(8 + kMaxBytes);
    message_.resize(sizeof m.wire.v[0]);
    std::memcpy(message_.data(), &m.wire.v[0], sizeof m.wire.v[0]);
  }
  message_ += m.text;
  next_ = m.wire.v[0] + m.text.size();
}

void GatherSink::write(int from, const char* message, std::size_t n) {
  std::uint64_t offset = 0;
  if (n < sizeof offset) throw Error("--mpi-gather: a short message from rank " + std::to_string(from));
  std::memcpy(&offset, message, sizeof offset);
  n -= sizeof offset;
  if (offset > output_.bytes() || n > output_.bytes() - offset)
    throw Error("--mpi-gather: rank " + std::to_string(from) + " sent bytes beyond the output's end");
  std::memcpy(static_cast<char*>(output_.data()) + offset, message + sizeof offset, n);
  bytes_ += n;
}

}  // namespace taskfarm::cli::mpi
