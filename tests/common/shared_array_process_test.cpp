// SharedArray across processes: an exec'd program (tests/helpers/array_writer) attaches by
// handle and writes; another user cannot open our segments; sweep_dead_segments() removes the
// segments of a SIGKILLed creator and only those.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>

#include "pattern.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shared_array.hpp"
#include "taskfarm/shm_segment.hpp"
#include "taskfarm/unique_fd.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

namespace fs = std::filesystem;

test::ProcessResult array_writer(const std::vector<std::string>& args) {
  std::vector<std::string> argv{TASKFARM_ARRAY_WRITER};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_program(argv);
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST(SharedArrayProcessTest, OwnerSeesEveryWriteOfAnotherProcessForEveryDType) {
  for (DType t : {DType::u8, DType::u16, DType::i32, DType::i64, DType::f32, DType::f64}) {
    const auto a = AnySharedArray::create(t, {4, 5, 6});
    const auto r = array_writer({"pattern", a.handle()});
    ASSERT_TRUE(r.ok()) << dtype_name(t) << ": exit " << r.exit_code << ": " << r.output;
    test::with_dtype(t, [&]<class T>() {
      const auto v = a.as<const T>();
      std::size_t k = 0;
      for (const T x : v) {
        ASSERT_EQ(x, test::pattern_value<T>(k)) << dtype_name(t) << " element " << k;
        ++k;
      }
      EXPECT_EQ(k, 120u);
    });
  }
}

TEST(SharedArrayProcessTest, FrameWrittenElsewhereCoversExactlyThatFrame) {
  const auto a = SharedArray<float>::create({5, 4, 3});
  for (float& x : a.view()) x = -1.0f;
  const auto r = array_writer({"fill-frame", a.handle(), "2", "7"});
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_EQ(a[2].data(), a.data() + 24);
  for (std::size_t f = 0; f < 5; ++f) {
    for (const float x : a[f]) ASSERT_EQ(x, f == 2 ? 7.0f : -1.0f) << "frame " << f;
  }
}

TEST(SharedArrayProcessTest, NpyBackedArrayWrittenElsewhereReachesTheFile) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  {
    const auto a = SharedArray<std::int64_t>::create_npy(path, {3, 7});
    const auto r = array_writer({"pattern", a.handle()});
    ASSERT_TRUE(r.ok()) << r.output;
  }
  const auto b = SharedArray<const std::int64_t>::open_npy(path);
  for (std::size_t k = 0; k < 21; ++k) EXPECT_EQ(b.data()[k], test::pattern_value<std::int64_t>(k));
}

TEST(SharedArrayProcessTest, OtherProcessGetsErrorsNamingTheSegment) {
  const auto a = AnySharedArray::create(DType::f64, {10, 10});
  auto r = array_writer({"attach", a.handle(), "i4"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.output, a.name()) && contains(r.output, "int32")) << r.output;
  r = array_writer({"attach", a.handle(), "f8", "10x11"});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.output, a.name()) && contains(r.output, "10x11")) << r.output;
  r = array_writer({"attach", a.handle(), "f8", "10x10"});
  EXPECT_EQ(r.exit_code, 0) << r.output;
  const std::string gone = unique_segment_name("gone");
  r = array_writer({"attach", "shm:f8:10x10:" + gone});
  EXPECT_EQ(r.exit_code, 3);
  EXPECT_TRUE(contains(r.output, gone)) << r.output;
}

TEST(SharedArrayProcessTest, AnotherUserCannotOpenTheSegment) {
  if (::geteuid() != 0) GTEST_SKIP() << "needs root to switch to uid 65534";
  const auto a = AnySharedArray::create(DType::u8, {64});
  const std::string handle = a.handle();
  const std::string name = a.name();
  // Exit codes: 0 refused with an Error naming the segment; 1 opened; 2 Error without the
  // name; 3 could not drop privileges.
  const auto r = test::run_in_child([&](int fd) {
    if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0 ||
        ::geteuid() != 65534) {
      return 3;
    }
    try {
      AnySharedArray b = AnySharedArray::attach(handle);
      return 1;
    } catch (const Error& e) {
      test::write_all(fd, e.what());
      return contains(e.what(), name) ? 0 : 2;
    }
  });
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_TRUE(contains(r.output, "Permission denied")) << r.output;
}

// A child that creates a shared array, says its segment's name and waits to be killed (its
// segment then is what a SIGKILLed master leaves). Sets pid and name; ASSERTs inside.
struct SegmentCreator {
  pid_t pid = 0;
  std::string name;
  UniqueFd keep;  // its end of the pipe it waits on
};
void start_segment_creator(SegmentCreator& out) {
  int to_parent[2], to_child[2];
  ASSERT_EQ(::pipe2(to_parent, O_CLOEXEC), 0);
  ASSERT_EQ(::pipe2(to_child, O_CLOEXEC), 0);
  UniqueFd from_child(to_parent[0]), child_out(to_parent[1]);
  UniqueFd child_in(to_child[0]), keep_child(to_child[1]);
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(1);
    from_child.reset();
    keep_child.reset();
    try {
      const auto theirs = AnySharedArray::create(DType::f64, {16});
      test::write_all(child_out.get(), theirs.name() + "\n");
      char c;
      while (::read(child_in.get(), &c, 1) != 0) {  // until it is killed
      }
    } catch (...) {
    }
    ::_exit(2);
  }
  test::record_test_pid(pid);  // the suite's leftover check also covers the child
  child_out.reset();
  child_in.reset();
  std::string name;
  char c;
  while (::read(from_child.get(), &c, 1) == 1 && c != '\n') name += c;
  ASSERT_EQ(segment_owner_pid(name), pid) << "child reported '" << name << "'";
  out.pid = pid;
  out.name = name;
  out.keep = std::move(keep_child);
}

TEST(SharedArrayProcessTest, SweepRemovesSegmentsOfAKilledCreatorOnly) {
  const auto mine = AnySharedArray::create(DType::u8, {32});
  SegmentCreator child;
  ASSERT_NO_FATAL_FAILURE(start_segment_creator(child));
  const pid_t pid = child.pid;
  const std::string name = child.name;
  ASSERT_TRUE(fs::exists("/dev/shm/" + name));

  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
  // The census (what `taskfarm info` counts and the sweep removes) sees the creator gone.
  const SegmentCensus census = census_segments();
  auto holds = [](const std::vector<std::string>& names, const std::string& n) {
    return std::find(names.begin(), names.end(), n) != names.end();
  };
  EXPECT_TRUE(holds(census.live, mine.name()));
  EXPECT_FALSE(holds(census.live, name)) << "a dead creator's segment counted as live";
  EXPECT_FALSE(holds(census.dead, mine.name()));
  // A Farm starting in a concurrent test sweeps too and may get there first; either way the
  // dead creator's segment must be gone after our sweep, and the live one's must stay.
  const std::vector<std::string> swept = sweep_dead_segments().removed;
  EXPECT_FALSE(fs::exists("/dev/shm/" + name));
  EXPECT_TRUE(fs::exists("/dev/shm/" + mine.name()));
  EXPECT_EQ(std::find(swept.begin(), swept.end(), mine.name()), swept.end());
}

// Outside pass h12 F18: a master in another PID namespace that shares /dev/shm (a container)
// has a pid that kill() here calls gone, and its live segments were swept. A process that owns
// segments holds a lock on "taskfarm-<pid>-alive-…" that holds across namespaces; here the test
// holds that lock itself once the creator is gone, as the creator would from its own namespace.
TEST(SharedArrayProcessTest, SweepLeavesSegmentsOfACreatorWhoseLockIsHeld) {
  SegmentCreator child;
  ASSERT_NO_FATAL_FAILURE(start_segment_creator(child));
  const pid_t pid = child.pid;
  const std::string name = child.name;
  const std::string alive_prefix = "taskfarm-" + std::to_string(pid) + "-alive-";
  std::string alive;
  for (const auto& e : fs::directory_iterator("/dev/shm"))
    if (e.path().filename().string().rfind(alive_prefix, 0) == 0) alive = e.path().filename().string();
  ASSERT_FALSE(alive.empty()) << "the creator holds no alive lock";
  UniqueFd held(::shm_open(("/" + alive).c_str(), O_RDONLY | O_CLOEXEC, 0));
  ASSERT_TRUE(held);
  ASSERT_EQ(::flock(held.get(), LOCK_SH | LOCK_NB), 0);
  ASSERT_EQ(::kill(pid, SIGKILL), 0);  // killed, as a master in its namespace could be... its lock held by another
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(::kill(pid, 0) != 0 && errno == ESRCH) << "its pid means nothing here now";
  sweep_dead_segments();
  EXPECT_TRUE(fs::exists("/dev/shm/" + name)) << "a segment whose owner's lock is held was swept";
  held.reset();  // now nobody holds it: gone for good
  sweep_dead_segments();
  EXPECT_FALSE(fs::exists("/dev/shm/" + name));
  EXPECT_FALSE(fs::exists("/dev/shm/" + alive));
}

}  // namespace
}  // namespace taskfarm
