// SharedArray within one process: ownership and removal of segments, handles, the errors of
// attach, .npy-backed arrays, and requests that do not fit.
#include "taskfarm/shared_array.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>

#include "taskfarm/error.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shm_segment.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

namespace fs = std::filesystem;

using test::error_of;

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bool segment_exists(const std::string& name) { return fs::exists("/dev/shm/" + name); }

TEST(SharedArrayTest, CreateGivesZeroedPrivateSegmentAndHandle) {
  const auto a = SharedArray<double>::create({4, 3});
  ASSERT_TRUE(a);
  EXPECT_EQ(a.handle(), "shm:f8:4x3:" + a.name());
  EXPECT_EQ(segment_owner_pid(a.name()), ::getpid());
  EXPECT_TRUE(a.any().owns_segment());
  struct stat st {};
  ASSERT_EQ(::stat(("/dev/shm/" + a.name()).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(static_cast<std::size_t>(st.st_size), 96u);
  EXPECT_EQ(a.size(), 12u);
  for (const double x : a.view()) EXPECT_EQ(x, 0.0);
}

TEST(SharedArrayTest, AttachmentSeesOwnersWritesAndViceVersa) {
  const auto owner = SharedArray<std::int32_t>::create({5, 2});
  const auto other = SharedArray<std::int32_t>::attach(owner.handle(), {5, 2});
  EXPECT_FALSE(other.any().owns_segment());
  EXPECT_NE(other.data(), owner.data());  // a second mapping of the same pages
  owner.at(3, 1) = 42;
  EXPECT_EQ(other.at(3, 1), 42);
  other[4](0) = -5;
  EXPECT_EQ(owner.element({4, 0}), -5);
}

TEST(SharedArrayTest, OwnerDestructionRemovesTheSegmentAndAnAttachmentsDoesNot) {
  std::string name;
  {
    const auto owner = AnySharedArray::create(DType::u16, {10});
    name = owner.name();
    { const auto attached = AnySharedArray::attach(owner.handle()); }
    EXPECT_TRUE(segment_exists(name)) << "an attachment removed the owner's segment";
  }
  EXPECT_FALSE(segment_exists(name));
}

TEST(SharedArrayTest, MoveHandsOverOwnership) {
  auto a = SharedArray<float>::create({8});
  const std::string name = a.name();
  a[3].element({}) = 1.5f;
  SharedArray<float> b = std::move(a);
  EXPECT_FALSE(a);  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.element({3}), 1.5f);
  AnySharedArray c = std::move(b.any());
  EXPECT_TRUE(segment_exists(name));
  c = AnySharedArray{};
  EXPECT_FALSE(segment_exists(name));
}

TEST(SharedArrayTest, ForkedCopyNeverRemovesTheOwnersSegment) {
  auto a = AnySharedArray::create(DType::u8, {16});
  const auto r = test::run_in_child([&](int) {
    a = AnySharedArray{};  // destroys the child's copy of the owner
    return 0;
  });
  ASSERT_TRUE(r.ok()) << r.output;
  EXPECT_TRUE(segment_exists(a.name()));
}

TEST(SharedArrayTest, WrongTypeNamesSegmentAndBothTypes) {
  const auto a = AnySharedArray::create(DType::f64, {100, 5});
  const std::string m = error_of([&] { SharedArray<std::int32_t>::attach(a.handle()); });
  EXPECT_TRUE(contains(m, a.name()) && contains(m, "float64") && contains(m, "int32") &&
              contains(m, "100x5"))
      << m;
  const std::string m2 = error_of([&] { (void)a.as<float>(); });
  EXPECT_TRUE(contains(m2, a.name()) && contains(m2, "float32")) << m2;
}

TEST(SharedArrayTest, WrongShapeNamesSegmentAndBothShapes) {
  const auto a = AnySharedArray::create(DType::f64, {100, 5});
  const std::string m = error_of([&] { SharedArray<double>::attach(a.handle(), {100, 6}); });
  EXPECT_TRUE(contains(m, a.name()) && contains(m, "100x5") && contains(m, "100x6")) << m;
  const std::string m2 = error_of([&] { SharedArray<float>::attach(a.handle(), {100, 6}); });
  EXPECT_TRUE(contains(m2, "float64 (100x5)") && contains(m2, "float32 (100x6)")) << m2;
}

TEST(SharedArrayTest, HandleThatLiesAboutTheSizeIsRejected) {
  const auto a = AnySharedArray::create(DType::f64, {4, 3});
  const std::string m = error_of([&] { AnySharedArray::attach("shm:f8:5x3:" + a.name()); });
  EXPECT_TRUE(contains(m, a.name()) && contains(m, "96 bytes")) << m;
}

TEST(SharedArrayTest, UnknownOrRemovedSegmentIsAnErrorNamingIt) {
  const std::string never = unique_segment_name("never-created");
  std::string m = error_of([&] { AnySharedArray::attach("shm:f8:4x3:" + never); });
  EXPECT_TRUE(contains(m, never) && contains(m, "does not exist")) << m;

  std::string handle, name;
  {
    const auto a = AnySharedArray::create(DType::i64, {7});
    handle = a.handle();
    name = a.name();
  }
  m = error_of([&] { AnySharedArray::attach(handle); });
  EXPECT_TRUE(contains(m, name) && contains(m, "does not exist")) << m;
}

TEST(SharedArrayTest, MalformedHandlesAreRejected) {
  for (const char* h : {"", "shm", "shm:f8:4x3", "shm:f8:4x3:", "tcp:f8:4x3:x", "shm:c16:4x3:x",
                        "shm:f8:0x3:x", "shm:f8:4,3:x", "npy:f8::/tmp/x.npy"}) {
    const std::string m = error_of([&] { AnySharedArray::attach(h); });
    EXPECT_TRUE(contains(m, "malformed shared array handle")) << h << ": " << m;
  }
}

// The OS reads a name only up to a NUL byte: "shm:…:<name>\0junk" would attach <name>, another
// array than the handle names (found by fuzz/array_handle_fuzz.cpp).
TEST(SharedArrayTest, HandleWhoseNameHoldsANulByteIsRejected) {
  const auto a = SharedArray<double>::create({4});
  const std::string handle = a.handle() + std::string(1, '\0') + "junk";
  const std::string m = error_of([&] { AnySharedArray::attach(handle); });
  EXPECT_TRUE(contains(m, "malformed shared array handle") && contains(m, "NUL")) << m;
}

TEST(SharedArrayTest, ZeroDArrayTravelsByHandle) {
  const auto a = SharedArray<double>::create({});
  EXPECT_EQ(a.handle(), "shm:f8:():" + a.name());
  a.element({}) = 4.25;
  const auto b = SharedArray<double>::attach(a.handle(), {});
  EXPECT_EQ(b.size(), 1u);
  EXPECT_EQ(b.element({}), 4.25);
}

TEST(SharedArrayTest, ShapesThatCannotTravelAreRefused) {
  EXPECT_TRUE(contains(error_of([] { AnySharedArray::create(DType::u8, {3, 0}); }), "no elements"));
  EXPECT_TRUE(
      contains(error_of([] { AnySharedArray::create(DType::u8, Shape(9, 1)); }), "at most 8"));
  EXPECT_TRUE(contains(error_of([] {
                         AnySharedArray::create(DType::f64, {1ULL << 40, 1ULL << 30});
                       }),
                       "64 bits"));
}

TEST(SharedArrayTest, TooLargeForDevShmSaysAskedAndFreeAndLeavesNothing) {
  const auto before = test::segments_of(::getpid());
  const std::size_t elements = (shm_free_bytes() + (std::size_t{1} << 30)) / 8;
  const std::size_t asked = elements * 8;
  const std::string m = error_of([&] { AnySharedArray::create(DType::f64, {elements}); });
  EXPECT_TRUE(contains(m, format_bytes(asked)) && contains(m, "free") && contains(m, "/dev/shm"))
      << m;
  EXPECT_EQ(test::segments_of(::getpid()), before);
}

// --- .npy-backed arrays -------------------------------------------------------------------

TEST(SharedArrayNpyTest, CreateNpyWritesAFileThatOutlivesTheArray) {
  test::TempDir dir;
  const std::string path = dir.file("out.npy");
  {
    const auto a = SharedArray<std::int32_t>::create_npy(path, {3, 4});
    EXPECT_EQ(a.name(), path);
    EXPECT_EQ(a.handle(), "npy:i4:3x4:" + path);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.data()) % 64, 0u);
    for (const std::int32_t x : a.view()) EXPECT_EQ(x, 0);
    a.at(2, 3) = 77;
    a[0](1) = -1;
  }
  ASSERT_TRUE(fs::exists(path));
  const NpyHeader h = read_npy_header(path);
  EXPECT_EQ(h.dtype, DType::i32);
  EXPECT_EQ(h.shape, (Shape{3, 4}));
  EXPECT_EQ(fs::file_size(path), h.data_offset + 48);
  const auto b = SharedArray<const std::int32_t>::open_npy(path);
  EXPECT_FALSE(b.any().writable());
  EXPECT_EQ(b.at(2, 3), 77);
  EXPECT_EQ(b.at(0, 1), -1);
}

TEST(SharedArrayNpyTest, AttachByHandleWorksForPathsWithColons) {
  test::TempDir dir;
  fs::create_directory(dir.file("a:b"));
  const std::string path = dir.file("a:b/out.npy");
  const auto a = SharedArray<double>::create_npy(path, {2, 2});
  const auto b = SharedArray<double>::attach(a.handle(), {2, 2});
  EXPECT_EQ(b.name(), path);
  b.at(1, 1) = 9.5;
  EXPECT_EQ(a.at(1, 1), 9.5);
  const std::string m = error_of([&] { SharedArray<double>::attach("npy:f8:2x3:" + path); });
  EXPECT_TRUE(contains(m, path) && contains(m, "2x2") && contains(m, "2x3")) << m;
}

TEST(SharedArrayNpyTest, RelativePathBecomesAbsoluteInTheHandle) {
  test::TempDir dir;
  const fs::path old = fs::current_path();
  fs::current_path(dir.path());
  const auto a = AnySharedArray::create_npy("rel.npy", DType::u8, {4});
  fs::current_path(old);
  EXPECT_EQ(a.name(), dir.file("rel.npy"));
  EXPECT_EQ(a.handle(), "npy:u1:4:" + dir.file("rel.npy"));
}

TEST(SharedArrayNpyTest, ReadOnlyMappingRefusesAMutableView) {
  test::TempDir dir;
  const std::string path = dir.file("in.npy");
  { AnySharedArray::create_npy(path, DType::f32, {5}); }
  const std::string m = error_of([&] { SharedArray<float>::open_npy(path, false); });
  EXPECT_TRUE(contains(m, path) && contains(m, "read-only")) << m;
  const auto ro = AnySharedArray::open_npy(path, false);
  EXPECT_NO_THROW((void)ro.as<const float>());
}

TEST(SharedArrayNpyTest, OpenNpyOfWrongTypeOrDamagedFileNamesThePath) {
  test::TempDir dir;
  const std::string path = dir.file("in.npy");
  { AnySharedArray::create_npy(path, DType::f64, {6}); }
  std::string m = error_of([&] { SharedArray<std::uint8_t>::open_npy(path); });
  EXPECT_TRUE(contains(m, path) && contains(m, "float64") && contains(m, "uint8")) << m;
  fs::resize_file(path, fs::file_size(path) - 1);
  m = error_of([&] { AnySharedArray::open_npy(path); });
  EXPECT_TRUE(contains(m, path) && contains(m, "truncated")) << m;
  std::ofstream(dir.file("empty.npy")).close();
  m = error_of([&] { AnySharedArray::open_npy(dir.file("empty.npy")); });
  EXPECT_TRUE(contains(m, dir.file("empty.npy"))) << m;
  m = error_of([&] { AnySharedArray::open_npy(dir.file("missing.npy")); });
  EXPECT_TRUE(contains(m, dir.file("missing.npy"))) << m;
}

TEST(SharedArrayNpyTest, MissingDirectoryIsAnErrorNamingThePath) {
  test::TempDir dir;
  const std::string path = dir.file("no/such/dir/out.npy");
  const std::string m = error_of([&] { AnySharedArray::create_npy(path, DType::u8, {4}); });
  EXPECT_TRUE(contains(m, path) && contains(m, "does not exist")) << m;
}

TEST(SharedArrayNpyTest, TooLargeForTheDiskSaysAskedAndFreeAndLeavesNoFile) {
  test::TempDir dir;
  struct statvfs vfs {};
  ASSERT_EQ(::statvfs(dir.path().c_str(), &vfs), 0);
  const std::size_t free_bytes = static_cast<std::size_t>(vfs.f_bavail) * vfs.f_frsize;
  const std::size_t elements = free_bytes + (std::size_t{1} << 40);
  const std::string path = dir.file("huge.npy");
  const std::string m = error_of([&] { AnySharedArray::create_npy(path, DType::u8, {elements}); });
  EXPECT_TRUE(contains(m, path) && contains(m, "free") && contains(m, "TiB")) << m;
  EXPECT_FALSE(fs::exists(path));
  EXPECT_TRUE(fs::is_empty(dir.path()));
}

}  // namespace
}  // namespace taskfarm
