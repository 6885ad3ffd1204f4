#include "taskfarm/shared_array.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <limits>

#include "taskfarm/detail/array_handle.hpp"
#include "taskfarm/detail/npy_header_watch.hpp"
#include "taskfarm/detail/staged_file.hpp"
#include "taskfarm/detail/user_file.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm {

using detail::ParsedHandle;
using detail::parse_handle;

// Exactly one of the two is set: a shm segment, or a whole .npy file mapped MAP_SHARED. A
// file create_npy made is also kept open (and locked) as a StagedFile until the object goes.
struct AnySharedArray::Mapping {
  ShmSegment segment;
  void* file_base = nullptr;
  std::size_t file_bytes = 0;
  detail::StagedFile created;
  std::unique_ptr<detail::NpyHeaderWatch> header;  // a file mapped read-write: its header as it was

  Mapping() = default;
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() {
    header.reset();  // no longer checked before it is unmapped
    if (file_base != nullptr) ::munmap(file_base, file_bytes);
  }
};

namespace {

std::string describe(DType dtype, const Shape& shape) {
  return std::string(dtype_name(dtype)) + " (" + format_shape(shape) + ")";
}

// Shapes must survive the trip through a handle: 1..8 axes (or 0-d), no empty axis.
void check_shareable(DType dtype, const Shape& shape, const std::string& what) {
  if (shape.size() > max_shape_dims) {
    throw Error(what + ": shape " + format_shape(shape) + " has " + std::to_string(shape.size()) +
                " axes; shared arrays have at most " + std::to_string(max_shape_dims));
  }
  for (const std::size_t extent : shape) {
    if (extent == 0) throw Error(what + ": shape " + format_shape(shape) + " has no elements");
  }
  try {
    (void)array_bytes(dtype, shape);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
}

std::string absolute_path(const std::string& path) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(path, ec);
  if (ec) throw Error("cannot make " + path + " absolute: " + ec.message());
  return p.lexically_normal().string();
}

void* map_file(int fd, std::size_t bytes, bool writable, const std::string& path) {
  void* p = ::mmap(nullptr, bytes, PROT_READ | (writable ? PROT_WRITE : 0), MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("cannot map .npy file " + path);
  return p;
}

bool refused_writing(int err) { return err == EACCES || err == EPERM || err == EROFS; }

}  // namespace

AnySharedArray::AnySharedArray() noexcept = default;

AnySharedArray::AnySharedArray(std::unique_ptr<Mapping> mapping, Backing backing, DType dtype,
                               Shape shape, void* data, bool writable, std::string name)
    : mapping_(std::move(mapping)),
      backing_(backing),
      dtype_(dtype),
      shape_(std::move(shape)),
      data_(data),
      size_(shape_elements(shape_)),
      bytes_(size_ * dtype_size(dtype)),
      writable_(writable),
      name_(std::move(name)) {}

AnySharedArray::AnySharedArray(AnySharedArray&& o) noexcept
    : mapping_(std::move(o.mapping_)),
      backing_(std::exchange(o.backing_, Backing::none)),
      dtype_(o.dtype_),
      shape_(std::move(o.shape_)),
      data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      bytes_(std::exchange(o.bytes_, 0)),
      writable_(std::exchange(o.writable_, false)),
      name_(std::move(o.name_)) {
  o.shape_.clear();
  o.name_.clear();
}

AnySharedArray& AnySharedArray::operator=(AnySharedArray&& o) noexcept {
  if (this != &o) {
    mapping_ = std::move(o.mapping_);
    backing_ = std::exchange(o.backing_, Backing::none);
    dtype_ = o.dtype_;
    shape_ = std::move(o.shape_);
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    bytes_ = std::exchange(o.bytes_, 0);
    writable_ = std::exchange(o.writable_, false);
    name_ = std::move(o.name_);
    o.shape_.clear();
    o.name_.clear();
  }
  return *this;
}

AnySharedArray::~AnySharedArray() = default;

bool AnySharedArray::owns_segment() const noexcept {
  return mapping_ != nullptr && mapping_->segment.owns_name();
}

AnySharedArray AnySharedArray::create(DType dtype, Shape shape) {
  check_shareable(dtype, shape, "cannot create shared array " + describe(dtype, shape));
  auto mapping = std::make_unique<Mapping>();
  mapping->segment = ShmSegment::create(array_bytes(dtype, shape));
  void* data = mapping->segment.data();
  std::string name = mapping->segment.name();
  return AnySharedArray(std::move(mapping), Backing::shm, dtype, std::move(shape), data, true,
                        std::move(name));
}

AnySharedArray AnySharedArray::create_npy(const std::string& path, DType dtype, Shape shape, Publish publish) {
  const std::string abs = absolute_path(path);
  const std::string what = "cannot create .npy file " + abs;
  check_shareable(dtype, shape, what);
  const std::string dir = std::filesystem::path(abs).parent_path().string();
  struct stat dir_st {};
  if (::stat(dir.c_str(), &dir_st) != 0 || !S_ISDIR(dir_st.st_mode)) {
    throw Error(what + ": directory " + dir + " does not exist");
  }
  try {
    detail::require_regular_or_absent(abs);  // never a device or FIFO of the user's
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }

  const std::string header = make_npy_header(dtype, shape);
  const std::size_t data_bytes = array_bytes(dtype, shape);
  if (data_bytes > std::numeric_limits<std::size_t>::max() - header.size()) {
    throw Error(what + ": " + describe(dtype, shape) + " is too large for a file");
  }
  const std::size_t total = header.size() + data_bytes;

  // Check before touching anything. An existing file keeps its blocks until it is replaced.
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) != 0) throw_errno("cannot check free space in " + dir);
  const std::size_t free_bytes = static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize;
  if (total > free_bytes) {
    throw Error(what + " of " + format_bytes(total) + " (" + describe(dtype, shape) + "): " + dir +
                " has only " + format_bytes(free_bytes) + " free");
  }

  // Written under a temporary name: a failure from here on removes only that file.
  auto mapping = std::make_unique<Mapping>();
  mapping->created = detail::StagedFile::create(abs);
  const int fd = mapping->created.fd();
  // Reserve every block now, so a full disk fails here and not as SIGBUS in a worker.
  if (const int err = ::posix_fallocate(fd, 0, static_cast<off_t>(total)); err != 0) {
    throw SystemError(what + ": cannot reserve " + format_bytes(total) + " (" + dir + " had " +
                          format_bytes(free_bytes) + " free)",
                      err);
  }
  std::size_t written = 0;
  while (written < header.size()) {
    const ssize_t r = ::pwrite(fd, header.data() + written, header.size() - written, static_cast<off_t>(written));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) throw_errno(what + ": cannot write the header");
    written += static_cast<std::size_t>(r);
  }
  mapping->file_base = map_file(fd, total, true, abs);
  mapping->file_bytes = total;
  mapping->header = std::make_unique<detail::NpyHeaderWatch>(static_cast<char*>(mapping->file_base), header, abs);
  if (publish == Publish::now) mapping->created.publish(/*replace_existing=*/true);
  void* data = static_cast<char*>(mapping->file_base) + header.size();
  return AnySharedArray(std::move(mapping), Backing::npy, dtype, std::move(shape), data, true, abs);
}

void AnySharedArray::publish(OnExisting on_existing) {
  if (!mapping_ || !mapping_->created) throw Error("publish(): " + name_ + " was not made by create_npy");
  try {
    mapping_->created.publish(on_existing == OnExisting::replace);
  } catch (const Error& e) {
    throw Error("cannot publish .npy file " + name_ + ": " + e.what());
  }
}

bool AnySharedArray::published() const noexcept {
  return mapping_ == nullptr || !mapping_->created || mapping_->created.published();
}

AnySharedArray AnySharedArray::open_npy(const std::string& path, bool writable) {
  const std::string abs = absolute_path(path);
  UniqueFd fd;
  try {
    fd = detail::open_regular_file(abs, writable ? O_RDWR : O_RDONLY);
  } catch (const SystemError& e) {
    throw SystemError("cannot open .npy file " + abs, e.code());
  } catch (const Error& e) {
    throw Error("cannot open .npy file " + abs + ": " + e.what());
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat .npy file " + abs);
  const auto file_bytes = static_cast<std::size_t>(st.st_size);
  if (file_bytes == 0) throw Error(abs + ": empty file, not a .npy file");

  auto mapping = std::make_unique<Mapping>();
  mapping->file_base = map_file(fd.get(), file_bytes, writable, abs);
  mapping->file_bytes = file_bytes;
  const auto* base = static_cast<const char*>(mapping->file_base);
  NpyHeader h = parse_npy_header(std::string_view(base, file_bytes), abs);
  check_npy_file_size(h, file_bytes, abs);
  check_shareable(h.dtype, h.shape, "cannot map .npy file " + abs);
  if (h.data_offset % dtype_size(h.dtype) != 0) {
    throw Error(abs + ": data starts at byte " + std::to_string(h.data_offset) +
                ", misaligned for " + std::string(dtype_name(h.dtype)));
  }
  if (writable)
    mapping->header = std::make_unique<detail::NpyHeaderWatch>(static_cast<char*>(mapping->file_base),
                                                               std::string(base, h.data_offset), abs);
  void* data = static_cast<char*>(mapping->file_base) + h.data_offset;
  return AnySharedArray(std::move(mapping), Backing::npy, h.dtype, std::move(h.shape), data,
                        writable, abs);
}

AnySharedArray AnySharedArray::attach(std::string_view handle) { return attach_mode(handle, false); }

AnySharedArray AnySharedArray::attach_read_only(std::string_view handle) { return attach_mode(handle, true); }

std::string AnySharedArray::read_only_handle(std::string_view handle) {
  if (handle.empty()) return {};
  ParsedHandle h;
  try {
    h = parse_handle(handle);
  } catch (const Error&) {
    return std::string(handle);  // not a handle: attach() says what is wrong with it, by name
  }
  h.read_only = true;
  return detail::format_handle(h);
}

AnySharedArray AnySharedArray::attach_mode(std::string_view handle, bool read_only) {
  ParsedHandle h = parse_handle(handle);
  read_only = read_only || h.read_only;
  if (h.backing == Backing::npy) {
    AnySharedArray a;
    try {
      a = open_npy(h.name, !read_only);
    } catch (const SystemError& e) {
      if (read_only || !refused_writing(e.code())) throw;
      a = open_npy(h.name, false);
    }
    if (a.dtype() != h.dtype || a.shape() != h.shape) {
      throw Error("shared array " + a.name() + " holds " + describe(a.dtype(), a.shape()) +
                  ", but its handle says " + describe(h.dtype, h.shape));
    }
    return a;
  }

  auto mapping = std::make_unique<Mapping>();
  bool writable = !read_only;
  try {
    mapping->segment = ShmSegment::open(h.name, writable);
  } catch (const SystemError& e) {
    if (!writable || !refused_writing(e.code())) throw;
    try {
      mapping->segment = ShmSegment::open(h.name, false);
    } catch (const Error&) {
      throw e;  // the read-write refusal says more
    }
    writable = false;
  }
  const std::size_t want = array_bytes(h.dtype, h.shape);
  if (mapping->segment.size() != want) {
    throw Error("shared segment " + h.name + " holds " + std::to_string(mapping->segment.size()) +
                " bytes, but its handle says " + describe(h.dtype, h.shape) + " = " +
                std::to_string(want) + " bytes");
  }
  void* data = mapping->segment.data();
  return AnySharedArray(std::move(mapping), Backing::shm, h.dtype, std::move(h.shape), data,
                        writable, std::move(h.name));
}

std::string AnySharedArray::handle() const {
  if (!*this) throw Error("handle() of an empty AnySharedArray");
  // Before publish() the file is reached through this process's descriptor of it: a name that
  // stays valid when publish() renames the file, for as long as this object lives.
  const std::string where = published() ? name_
                                        : "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(mapping_->created.fd());
  return detail::format_handle({backing_, dtype_, shape_, where, !writable_});
}

void AnySharedArray::check(DType dtype, const Shape& shape) const {
  if (!*this || dtype != dtype_ || shape != shape_) throw_mismatch(dtype, &shape);
}

void AnySharedArray::throw_mismatch(DType wanted, const Shape* wanted_shape) const {
  const std::string want =
      wanted_shape != nullptr ? describe(wanted, *wanted_shape) : std::string(dtype_name(wanted));
  if (!*this) throw Error("empty AnySharedArray used as " + want);
  throw Error("shared array " + name_ + " holds " + describe(dtype_, shape_) + ", not " + want);
}

void AnySharedArray::throw_read_only() const {
  throw Error("shared array " + name_ + " is mapped read-only; view it as const " +
              std::string(dtype_name(dtype_)));
}

}  // namespace taskfarm
