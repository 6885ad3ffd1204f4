// What the .npy code does to files it did not create: never deletes, truncates or writes them.
// create_npy writes a temporary file and renames it over the path (an old file is replaced
// whole or left as it was; a FIFO or device is refused); open_npy and read_npy_header refuse a
// FIFO without blocking; an array mapped read-only publishes a handle that every attachment
// maps read-only, so a stray write faults instead of changing the file.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <set>

#include "taskfarm/error.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shared_array.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

namespace fs = std::filesystem;

using test::error_of;

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::set<std::string> names_in(const std::string& dir) {
  std::set<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.insert(e.path().filename().string());
  return names;
}

TEST(UserFiles, CreateNpyRefusesAFifoAndLeavesItThere) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  const std::string m = error_of([&] { AnySharedArray::create_npy(path, DType::f64, {4}); });
  EXPECT_TRUE(contains(m, path) && contains(m, "FIFO")) << m;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << "the FIFO was removed";
  EXPECT_TRUE(S_ISFIFO(st.st_mode));
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out.npy"});
}

TEST(UserFiles, CreateNpyRefusesADeviceNodeAndLeavesItThere) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod of a device needs root";
  test::TempDir dir;
  const std::string path = dir.file("null");
  ASSERT_EQ(::mknod(path.c_str(), S_IFCHR | 0666, makedev(1, 3)), 0);  // a /dev/null of our own
  const std::string m = error_of([&] { AnySharedArray::create_npy(path, DType::u8, {16}); });
  EXPECT_TRUE(contains(m, path) && contains(m, "character device")) << m;
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0) << "the device node was removed";
  EXPECT_TRUE(S_ISCHR(st.st_mode));
  EXPECT_EQ(st.st_rdev, makedev(1, 3));
}

// An existing output is replaced by a new file, never truncated or written in place: another
// link to the old file keeps its bytes (and a reader mapping it would never see SIGBUS).
TEST(UserFiles, CreateNpyReplacesAnExistingFileWholeNeverWritingIt) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy"), other = dir.file("other-link");
  write_file(path, "precious\n");
  ASSERT_EQ(::link(path.c_str(), other.c_str()), 0);
  {
    const auto a = SharedArray<std::int32_t>::create_npy(path, {3, 4});
    a.at(1, 2) = 5;
  }
  EXPECT_EQ(read_file(other), "precious\n") << "the old file was written in place";
  EXPECT_EQ(read_npy_header(path).shape, (Shape{3, 4}));
  EXPECT_EQ(SharedArray<const std::int32_t>::open_npy(path).at(1, 2), 5);
  EXPECT_EQ(names_in(dir.path()), (std::set<std::string>{"out.npy", "other-link"}));
}

// A symbolic link at the path is replaced by the new file; what it pointed to is not written.
// A link to nothing is refused: it is the user's, and a new file would replace it.
TEST(UserFiles, CreateNpyReplacesASymbolicLinkNotItsTarget) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy"), target = dir.file("target");
  write_file(target, "precious\n");
  ASSERT_EQ(::symlink(target.c_str(), path.c_str()), 0);
  { AnySharedArray::create_npy(path, DType::u8, {4}); }
  EXPECT_EQ(read_file(target), "precious\n") << "the link's target was written";
  EXPECT_FALSE(fs::is_symlink(path));
  EXPECT_EQ(read_npy_header(path).shape, Shape{4});
  ASSERT_EQ(::symlink(dir.file("nowhere").c_str(), dir.file("dangling.npy").c_str()), 0);
  const std::string m = error_of([&] { AnySharedArray::create_npy(dir.file("dangling.npy"), DType::u8, {4}); });
  EXPECT_TRUE(contains(m, "symbolic link to nothing")) << m;
  EXPECT_TRUE(fs::is_symlink(dir.file("dangling.npy")));
  EXPECT_FALSE(fs::exists(dir.file("nowhere")));
}

// A failure after the new file was made (here: the file size limit, as on a full disk) leaves
// the old file as it was and no temporary file.
TEST(UserFiles, FailedCreateNpyLeavesTheOldFileAndNothingElse) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  write_file(path, "precious\n");
  const auto r = test::run_in_child([&](int fd) {
    ::signal(SIGXFSZ, SIG_IGN);
    const rlimit small{4096, 4096};
    if (::setrlimit(RLIMIT_FSIZE, &small) != 0) return 2;
    test::write_all(fd, error_of([&] { AnySharedArray::create_npy(path, DType::u8, {1 << 20}); }));
    return 0;
  });
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_TRUE(contains(r.output, path) && contains(r.output, "File too large")) << r.output;
  EXPECT_EQ(read_file(path), "precious\n") << "a failed create_npy destroyed the file it was to replace";
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out.npy"});
}

TEST(UserFiles, PublishLaterLeavesThePathAloneUntilPublished) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  write_file(path, "precious\n");
  auto a = AnySharedArray::create_npy(path, DType::f32, {8}, AnySharedArray::Publish::later);
  EXPECT_FALSE(a.published());
  EXPECT_EQ(a.name(), path);
  EXPECT_EQ(read_file(path), "precious\n");
  // Before publish() the handle names the new file (never the old one at the path) by a name
  // that outlives the rename: what is written through it, before or after, is in the file
  // publish() puts at the path.
  const std::string early = a.handle();
  EXPECT_TRUE(contains(early, "/proc/")) << early;
  AnySharedArray::attach(early).as<float>()(3) = 1.5f;
  a.publish();
  AnySharedArray::attach(early).as<float>()(4) = 2.5f;
  EXPECT_TRUE(a.published());
  EXPECT_EQ(a.handle(), "npy:f4:8:" + path);
  EXPECT_EQ(SharedArray<const float>::open_npy(path).view()(3), 1.5f);
  EXPECT_EQ(SharedArray<const float>::open_npy(path).view()(4), 2.5f);
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out.npy"});
}

TEST(UserFiles, UnpublishedArrayRemovesOnlyItsTemporaryFile) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  write_file(path, "precious\n");
  {
    auto a = AnySharedArray::create_npy(path, DType::u8, {100}, AnySharedArray::Publish::later);
    EXPECT_EQ(names_in(dir.path()).size(), 2u) << "the temporary file sits beside the path";
  }
  EXPECT_EQ(read_file(path), "precious\n");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out.npy"});
}

// A run SIGKILLed before it published leaves its temporary file beside the user's (as big as the
// output); the next file staged at that path removes it — only it: a live process's, another
// path's, a name taskfarm does not give, and a file of that name that does not begin as
// taskfarm's files do (a user's: outside pass h12 F10) stay.
TEST(UserFiles, StagingRemovesTheTemporaryFilesOfDeadProcessesOnly) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  write_file(path, "precious\n");
  const pid_t dead = ::fork();
  if (dead == 0) ::_exit(0);
  ASSERT_GT(dead, 0);
  ASSERT_EQ(::waitpid(dead, nullptr, 0), dead);
  const std::string stale = "out.npy.taskfarm-" + std::to_string(dead) + "-0.tmp";
  const std::set<std::string> kept{"out.npy.taskfarm-" + std::to_string(::getppid()) + "-0.tmp",
                                   "other.npy.taskfarm-" + std::to_string(dead) + "-0.tmp",
                                   "out.npy.taskfarm-" + std::to_string(dead) + "-x.tmp",
                                   "out.npy.taskfarm-" + std::to_string(dead) + "-1.tmp"};
  for (const std::string& name : kept) write_file(dir.file(name), "my precious data");
  write_file(dir.file(stale), "\x93NUMPY stale");
  auto a = AnySharedArray::create_npy(path, DType::u8, {4}, AnySharedArray::Publish::later);
  const std::set<std::string> now = names_in(dir.path());
  EXPECT_EQ(now.count(stale), 0u) << "the dead run's temporary file is still there";
  for (const std::string& name : kept) EXPECT_EQ(now.count(name), 1u) << name << " was removed";
  EXPECT_EQ(read_file(path), "precious\n") << "the user's file was touched";
  EXPECT_EQ(read_file(dir.file("out.npy.taskfarm-" + std::to_string(dead) + "-1.tmp")), "my precious data");
}

TEST(UserFiles, PublishRefusesAFileThatAppearedMeanwhile) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  {
    auto a = AnySharedArray::create_npy(path, DType::u8, {10}, AnySharedArray::Publish::later);
    write_file(path, "someone else's\n");
    const std::string m = error_of([&] { a.publish(AnySharedArray::OnExisting::refuse); });
    EXPECT_TRUE(contains(m, path) && contains(m, "appeared")) << m;
    EXPECT_FALSE(a.published());
  }
  EXPECT_EQ(read_file(path), "someone else's\n");
  EXPECT_EQ(names_in(dir.path()), std::set<std::string>{"out.npy"});
}

// The creating object holds an exclusive flock on its file: another run can tell it is in use.
TEST(UserFiles, CreatedFileIsLockedWhileItsArrayLives) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  auto try_lock = [&] {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    const bool got = fd >= 0 && ::flock(fd, LOCK_EX | LOCK_NB) == 0;
    if (fd >= 0) ::close(fd);
    return got;
  };
  {
    const auto a = AnySharedArray::create_npy(path, DType::u8, {10});
    EXPECT_FALSE(try_lock());
  }
  EXPECT_TRUE(try_lock());
}

// open() of a FIFO for reading waits for a writer: these must refuse it at once. In a child with
// a deadline, so that the old behaviour fails the test instead of hanging it.
TEST(UserFiles, OpenNpyAndReadHeaderRefuseAFifoWithoutBlocking) {
  test::TempDir dir;
  const std::string path = dir.file("in.npy");
  ASSERT_EQ(::mkfifo(path.c_str(), 0644), 0);
  const auto r = test::run_in_child(
      [&](int fd) {
        test::write_all(fd, error_of([&] { AnySharedArray::open_npy(path, false); }) + "\n");
        test::write_all(fd, error_of([&] { read_npy_header(path); }) + "\n");
        test::write_all(fd, error_of([&] { AnySharedArray::attach("npy-ro:f8:4:" + path); }) + "\n");
        return 0;
      },
      std::chrono::seconds(10));
  ASSERT_FALSE(r.timed_out) << "blocked opening a FIFO";
  ASSERT_TRUE(r.ok()) << r.output;
  const std::string refused = "cannot open .npy file " + path + ": '" + path + "' is a FIFO, not a regular file\n";
  EXPECT_EQ(r.output, refused + refused + refused);
}

/// Runs `write` in a child: it must die of SIGSEGV. Returns the child's result.
test::ProcessResult write_in_child(const std::function<void()>& write) {
  return test::run_in_child([&](int) {
    write();
    return 0;  // the write went through
  });
}

// --input's rule at the root: a handle published by a read-only mapping says so ("npy-ro:"),
// and whoever attaches it — a worker program, a forked worker — maps it read-only.
TEST(UserFiles, HandleOfAReadOnlyMappingAttachesReadOnlyAndAWriteFaults) {
  test::TempDir dir;
  const std::string path = dir.file("in.npy");
  { SharedArray<double>::create_npy(path, {16}).view()(3) = 7.0; }
  const std::string before = read_file(path);
  const auto ro = AnySharedArray::open_npy(path, /*writable=*/false);
  EXPECT_EQ(ro.handle(), "npy-ro:f8:16:" + path);
  const auto r = write_in_child([&] {
    const auto a = AnySharedArray::attach(ro.handle());
    static_cast<double*>(a.data())[3] = -1.0;
  });
  EXPECT_EQ(r.signal, SIGSEGV) << "exit " << r.exit_code << ": the write went through";
  EXPECT_EQ(read_file(path), before) << "the input file changed on disk";
  EXPECT_FALSE(AnySharedArray::attach(ro.handle()).writable());
}

TEST(UserFiles, AttachReadOnlyFaultsOnWriteWhateverTheHandle) {
  test::TempDir dir;
  const std::string path = dir.file("in.npy");
  const auto file = SharedArray<std::int32_t>::create_npy(path, {8});
  const auto shm = SharedArray<std::int32_t>::create({8});
  for (const std::string& handle : {file.handle(), shm.handle()}) {
    const auto r = write_in_child([&] {
      const auto a = AnySharedArray::attach_read_only(handle);
      static_cast<std::int32_t*>(a.data())[0] = 42;
    });
    EXPECT_EQ(r.signal, SIGSEGV) << handle << ": exit " << r.exit_code;
    const auto typed = write_in_child([&] {
      const auto a = SharedArray<const std::int32_t>::attach(handle);
      const_cast<std::int32_t*>(a.data())[1] = 42;
    });
    EXPECT_EQ(typed.signal, SIGSEGV) << handle << ": SharedArray<const T>::attach mapped it writable";
  }
  EXPECT_EQ(file.view()(0), 0);
  EXPECT_EQ(shm.view()(1), 0);
  EXPECT_EQ(AnySharedArray::read_only_handle(file.handle()), "npy-ro:i4:8:" + path);
  EXPECT_EQ(AnySharedArray::read_only_handle("npy-ro:i4:8:" + path), "npy-ro:i4:8:" + path);
}

}  // namespace
}  // namespace taskfarm
