#include "taskfarm/shm_segment.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sys/file.h>

#include <boost/interprocess/shared_memory_object.hpp>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <algorithm>
#include <mutex>
#include <random>
#include <utility>

#include "taskfarm/error.hpp"
#include "taskfarm/unique_fd.hpp"

namespace bip = boost::interprocess;

namespace taskfarm {
namespace {

constexpr std::string_view kPrefix = "taskfarm-";

std::uint64_t random_u64() {
  static thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (std::uint64_t{rd()} << 32) ^ rd() ^ static_cast<std::uint64_t>(::getpid());
  }()};
  return gen();
}

// Proof of life across PID namespaces. A sweep takes a segment for a dead master's when kill(pid,
// 0) says no such process — but a master in another PID namespace that shares /dev/shm (a
// container) has a pid that means nothing here, and its live segments were removed (outside
// pass h12 F18). So while a process owns segments it holds a shared flock on one more, empty,
// "taskfarm-<pid>-alive-<hex>": a sweep that cannot take it exclusively leaves that pid's
// segments alone. flock is on the file, so it holds across namespaces. Removed with the
// process's last segment.
constexpr std::string_view kAlive = "-alive-";
std::mutex g_alive_mu;
pid_t g_alive_pid = 0;
int g_alive_fd = -1;
std::string g_alive_name;
std::size_t g_alive_users = 0;

void alive_acquire() noexcept {
  const std::lock_guard lock(g_alive_mu);
  const pid_t me = ::getpid();
  if (g_alive_pid != me) {  // a fork child: the parent's lock is the parent's
    g_alive_pid = me;
    g_alive_fd = -1;
    g_alive_users = 0;
  }
  if (g_alive_users++ > 0 && g_alive_fd >= 0) return;
  char name[96];
  std::snprintf(name, sizeof name, "taskfarm-%d%.*s%016llx", static_cast<int>(me), static_cast<int>(kAlive.size()),
                kAlive.data(), static_cast<unsigned long long>(random_u64()));
  const int fd = ::shm_open(("/" + std::string(name)).c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return;  // best effort: without it a sweep judges by kill() alone, as before
  if (::flock(fd, LOCK_SH | LOCK_NB) != 0) {
    ::shm_unlink(("/" + std::string(name)).c_str());
    ::close(fd);
    return;
  }
  g_alive_fd = fd;
  g_alive_name = name;
}

void alive_release() noexcept {
  const std::lock_guard lock(g_alive_mu);
  if (g_alive_pid != ::getpid() || g_alive_users == 0) return;
  if (--g_alive_users > 0 || g_alive_fd < 0) return;
  ::shm_unlink(("/" + g_alive_name).c_str());
  ::close(g_alive_fd);
  g_alive_fd = -1;
}

// Whether process `pid` of another PID namespace holds its alive lock (one of `names`).
bool alive_elsewhere(pid_t pid, const std::vector<std::string>& names) {
  const std::string prefix = std::string(kPrefix) + std::to_string(pid) + std::string(kAlive);
  for (const std::string& n : names) {
    if (n.rfind(prefix, 0) != 0) continue;
    UniqueFd fd(::shm_open(("/" + n).c_str(), O_RDONLY | O_CLOEXEC, 0));
    if (fd && ::flock(fd.get(), LOCK_EX | LOCK_NB) != 0 && errno == EWOULDBLOCK) return true;
  }
  return false;
}

void* map_fd(int fd, std::size_t bytes, bool writable, const std::string& name) {
  if (bytes == 0) return nullptr;
  const int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  void* p = ::mmap(nullptr, bytes, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) throw_errno("cannot map shared segment " + name);
  return p;
}

}  // namespace

std::string format_bytes(std::size_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024.0 && u < 4) {
    v /= 1024.0;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", v, units[u]);
  return buf;
}

std::size_t shm_free_bytes() {
  struct statvfs st {};
  if (::statvfs("/dev/shm", &st) != 0) throw_errno("cannot stat /dev/shm");
  return static_cast<std::size_t>(st.f_bavail) * st.f_frsize;
}

std::string unique_segment_name(std::string_view tag) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "taskfarm-%d-%016llx", static_cast<int>(::getpid()),
                static_cast<unsigned long long>(random_u64()));
  std::string name = buf;
  if (!tag.empty()) name.append("-").append(tag);
  return name;
}

pid_t segment_owner_pid(std::string_view name) noexcept {
  if (name.substr(0, kPrefix.size()) != kPrefix) return 0;
  name.remove_prefix(kPrefix.size());
  int pid = 0;
  auto [ptr, ec] = std::from_chars(name.data(), name.data() + name.size(), pid);
  if (ec != std::errc{} || ptr == name.data() + name.size() || *ptr != '-' || pid <= 0) return 0;
  return pid;
}

ShmSegment::ShmSegment() noexcept = default;

ShmSegment::ShmSegment(ShmSegment&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)),
      size_(std::exchange(o.size_, 0)),
      name_(std::move(o.name_)),
      owner_pid_(std::exchange(o.owner_pid_, 0)) {}

ShmSegment& ShmSegment::operator=(ShmSegment&& o) noexcept {
  if (this != &o) {
    reset();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
    name_ = std::move(o.name_);
    owner_pid_ = std::exchange(o.owner_pid_, 0);
  }
  return *this;
}

ShmSegment::~ShmSegment() { reset(); }

void ShmSegment::reset() noexcept {
  if (data_ != nullptr) ::munmap(data_, size_);
  data_ = nullptr;
  remove_name();
  size_ = 0;
}

void ShmSegment::remove_name() noexcept {
  // A forked child inherits this object but must never remove its parent's segment.
  if (owner_pid_ != 0 && owner_pid_ == ::getpid()) {
    bip::shared_memory_object::remove(name_.c_str());
    alive_release();
  }
  owner_pid_ = 0;
}

namespace {
// Holds the alive lock while a segment is being made; the segment takes it over (reset releases).
struct AliveHold {
  bool held = true;
  AliveHold() noexcept { alive_acquire(); }
  ~AliveHold() {
    if (held) alive_release();
  }
};
}  // namespace

ShmSegment ShmSegment::create(std::size_t bytes, std::string_view tag) {
  AliveHold alive;
  ShmSegment seg;
  seg.name_ = unique_segment_name(tag);
  const std::size_t free_bytes = shm_free_bytes();
  if (bytes > free_bytes) {
    throw Error("cannot create shared segment " + seg.name_ + " of " + format_bytes(bytes) +
                ": /dev/shm has only " + format_bytes(free_bytes) + " free");
  }
  bip::permissions perm(0600);
  try {
    bip::shared_memory_object shm(bip::create_only, seg.name_.c_str(), bip::read_write, perm);
    seg.owner_pid_ = ::getpid();  // from here on the destructor removes the name
    alive.held = false;           // ... and releases the alive lock
    // Boost reserves with posix_fallocate, so a full /dev/shm fails here instead of SIGBUS.
    shm.truncate(static_cast<bip::offset_t>(bytes));
    seg.data_ = map_fd(shm.get_mapping_handle().handle, bytes, true, seg.name_);
    seg.size_ = bytes;
  } catch (const bip::interprocess_exception& e) {
    throw Error("cannot create shared segment " + seg.name_ + " of " + format_bytes(bytes) +
                " (/dev/shm has " + format_bytes(shm_free_bytes()) + " free): " + e.what());
  }
  return seg;
}

ShmSegment ShmSegment::create_sparse(std::size_t bytes, std::size_t reserved, std::string_view tag, bool check_free) {
  AliveHold alive;
  ShmSegment seg;
  seg.name_ = unique_segment_name(tag);
  const std::size_t free_bytes = check_free ? shm_free_bytes() : bytes;
  if (bytes > free_bytes) {
    throw Error("cannot create shared segment " + seg.name_ + " of " + format_bytes(bytes) +
                ": /dev/shm has only " + format_bytes(free_bytes) + " free");
  }
  const std::string path = "/" + seg.name_;
  UniqueFd fd(::shm_open(path.c_str(), O_RDWR | O_CREAT | O_EXCL, 0600));
  if (!fd) throw_errno("cannot create shared segment " + seg.name_);
  seg.owner_pid_ = ::getpid();  // from here on the destructor removes the name
  alive.held = false;           // ... and releases the alive lock
  if (::ftruncate(fd.get(), static_cast<off_t>(bytes)) != 0) {
    // A segment is a file in /dev/shm: the file size limit applies to it (h12b N11).
    if (errno == EFBIG)
      throw SystemError("cannot size shared segment " + seg.name_ + " to " + format_bytes(bytes) +
                            ": past the file size limit (ulimit -f), which applies to /dev/shm too",
                        EFBIG);
    throw_errno("cannot size shared segment " + seg.name_);
  }
  if (const int err = reserved == 0 ? 0 : ::posix_fallocate(fd.get(), 0, static_cast<off_t>(std::min(reserved, bytes))))
    throw SystemError("cannot reserve shared segment " + seg.name_ + " (/dev/shm has " + format_bytes(shm_free_bytes()) + " free)", err);
  seg.data_ = map_fd(fd.get(), bytes, true, seg.name_);
  seg.size_ = bytes;
  return seg;
}

ShmSegment ShmSegment::open(const std::string& name, bool writable) {
  const std::string path = "/" + name;
  UniqueFd fd(::shm_open(path.c_str(), writable ? O_RDWR : O_RDONLY, 0));
  if (!fd) {
    if (errno == ENOENT) throw Error("shared segment " + name + " does not exist (removed, or never created)");
    throw_errno("cannot open shared segment " + name);
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) throw_errno("cannot stat shared segment " + name);
  ShmSegment seg;
  seg.name_ = name;
  seg.size_ = static_cast<std::size_t>(st.st_size);
  seg.data_ = map_fd(fd.get(), seg.size_, writable, name);
  return seg;
}

SegmentCensus census_segments() {
  SegmentCensus census;
  DIR* dir = ::opendir("/dev/shm");
  if (dir == nullptr) {
    census.scan_error = errno;
    return census;
  }
  std::vector<std::string> names;
  while (const dirent* e = ::readdir(dir))
    if (segment_owner_pid(e->d_name) != 0) names.emplace_back(e->d_name);
  ::closedir(dir);
  std::vector<std::pair<pid_t, bool>> judged;  // each pid once
  for (const std::string& name : names) {
    const pid_t pid = segment_owner_pid(name);
    auto it = std::find_if(judged.begin(), judged.end(), [pid](const auto& j) { return j.first == pid; });
    if (it == judged.end()) {
      // EPERM: alive, another user's. ESRCH: gone — or in another PID namespace, holding its lock.
      const bool gone = ::kill(pid, 0) != 0 && errno == ESRCH && !alive_elsewhere(pid, names);
      it = judged.insert(judged.end(), {pid, gone});
    }
    (it->second ? census.dead : census.live).push_back(name);
  }
  return census;
}

SweepReport sweep_dead_segments() {
  SegmentCensus census = census_segments();
  SweepReport report;
  report.scan_error = census.scan_error;
  for (const auto& name : census.dead) {
    if (::shm_unlink(("/" + name).c_str()) == 0) report.removed.push_back(name);
    else if (errno != ENOENT) report.failed.push_back({name, errno});  // ENOENT: another sweep was first
  }
  return report;
}

}  // namespace taskfarm
