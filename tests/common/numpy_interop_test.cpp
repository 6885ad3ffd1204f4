// .npy interoperability with NumPy itself (TASKFARM_PYTHON: Debian's /usr/bin/python3 with
// python3-numpy): NumPy loads what we write, we load what it writes, headers are byte-identical.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "pattern.hpp"
#include "taskfarm/npy.hpp"
#include "taskfarm/shared_array.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

const DType kTypes[] = {DType::u8, DType::u16, DType::i32, DType::i64, DType::f32, DType::f64};
const Shape kShapes[] = {{7}, {3, 5}, {2, 3, 4}, {2, 1, 3, 2}};

// Runs `script` (after the pattern() definition) in TASKFARM_PYTHON with `args`.
test::ProcessResult python(const std::string& script, const std::vector<std::string>& args) {
  std::vector<std::string> argv{TASKFARM_PYTHON, "-c", std::string(test::kPythonPattern) + script};
  argv.insert(argv.end(), args.begin(), args.end());
  return test::run_program(argv, std::chrono::seconds(45));
}

// Python's spelling of a shape, for argv: "3x5" -> parsed by the scripts below.
std::string shape_arg(const Shape& shape) { return shape.empty() ? "()" : format_shape(shape); }

// (Not via istreambuf_iterator: g++ 12 -O2 warns -Wnull-dereference inside it.)
std::string read_file(const std::string& path) {
  std::string bytes(std::filesystem::file_size(path), '\0');
  std::ifstream(path, std::ios::binary)
      .read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

constexpr const char* kParseShape = R"PY(
import sys
def shape_of(text):
    return () if text == '()' else tuple(int(x) for x in text.split('x'))
)PY";

class NumPyInteropTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto r = python("import numpy; print(numpy.__version__)", {});
    ASSERT_TRUE(r.ok()) << TASKFARM_PYTHON << " cannot import numpy (install python3-numpy, or "
                        << "set TASKFARM_PYTHON): " << r.output;
  }
  test::TempDir dir_;
};

TEST_F(NumPyInteropTest, NumPyLoadsOurFilesOfEveryDTypeAndRank) {
  std::vector<std::string> args;
  for (DType t : kTypes) {
    for (const Shape& shape : kShapes) {
      const std::string path =
          dir_.file(std::string(dtype_code(t)) + "-" + format_shape(shape) + ".npy");
      const auto a = AnySharedArray::create_npy(path, t, shape);
      test::with_dtype(t, [&]<class T>() {
        std::size_t k = 0;
        for (T& x : a.as<T>()) x = test::pattern_value<T>(k++);
      });
      args.insert(args.end(), {path, std::string(dtype_code(t)), shape_arg(shape)});
    }
  }
  const auto r = python(std::string(kParseShape) + R"PY(
a = sys.argv[1:]
for path, dt, shape in zip(a[0::3], a[1::3], a[2::3]):
    want = pattern(dt, shape_of(shape))
    for mode in (None, 'r'):
        got = np.load(path, mmap_mode=mode)
        assert got.dtype == np.dtype(dt), (path, got.dtype)
        assert got.shape == want.shape, (path, got.shape)
        assert np.array_equal(got, want), (path, mode)
print('checked', len(a) // 3)
)PY",
                        args);
  EXPECT_TRUE(r.ok()) << r.output;
  EXPECT_NE(r.output.find("checked 24"), std::string::npos) << r.output;
}

TEST_F(NumPyInteropTest, WeLoadNumPysFilesOfEveryDTypeAndRank) {
  std::vector<std::string> args;
  for (DType t : kTypes) {
    for (const Shape& shape : kShapes) {
      args.insert(args.end(),
                  {dir_.file(std::string(dtype_code(t)) + "-" + format_shape(shape) + ".npy"),
                   std::string(dtype_code(t)), shape_arg(shape)});
    }
  }
  const auto r = python(std::string(kParseShape) + R"PY(
a = sys.argv[1:]
for path, dt, shape in zip(a[0::3], a[1::3], a[2::3]):
    np.save(path, pattern(dt, shape_of(shape)))
)PY",
                        args);
  ASSERT_TRUE(r.ok()) << r.output;
  for (std::size_t i = 0; i < args.size(); i += 3) {
    const auto a = AnySharedArray::open_npy(args[i], false);
    EXPECT_EQ(dtype_code(a.dtype()), args[i + 1]);
    EXPECT_EQ(format_shape(a.shape()), args[i + 2]);
    test::with_dtype(a.dtype(), [&]<class T>() {
      std::size_t k = 0;
      for (const T x : a.as<const T>()) {
        ASSERT_EQ(x, test::pattern_value<T>(k)) << args[i] << " element " << k;
        ++k;
      }
    });
  }
}

TEST_F(NumPyInteropTest, OurHeadersAreByteIdenticalToNumPys) {
  const Shape shapes[] = {{}, {5}, {100, 512, 512}, {123456789012, 3}, {1, 2, 3, 4, 5, 6, 7, 8}};
  std::vector<std::string> args;
  for (DType t : kTypes) {
    for (const Shape& shape : shapes) {
      args.insert(args.end(),
                  {dir_.file(std::string(dtype_code(t)) + "-" + shape_arg(shape) + ".hdr"),
                   std::string(dtype_code(t)), shape_arg(shape)});
    }
  }
  // The header of np.save for that dtype and shape, without allocating the array.
  const auto r = python(std::string(kParseShape) + R"PY(
import io
a = sys.argv[1:]
for path, dt, shape in zip(a[0::3], a[1::3], a[2::3]):
    buf = io.BytesIO()
    d = {'descr': np.lib.format.dtype_to_descr(np.dtype(dt)), 'fortran_order': False, 'shape': shape_of(shape)}
    np.lib.format._write_array_header(buf, d, None)
    open(path, 'wb').write(buf.getvalue())
)PY",
                        args);
  ASSERT_TRUE(r.ok()) << r.output;
  for (std::size_t i = 0; i < args.size(); i += 3) {
    const DType t = *parse_dtype(args[i + 1]);
    const Shape shape = *parse_shape(args[i + 2]);
    EXPECT_EQ(make_npy_header(t, shape), read_file(args[i])) << args[i + 1] << " " << args[i + 2];
  }
}

TEST_F(NumPyInteropTest, WeLoadNumPysFormatTwoAndZeroDFiles) {
  const std::string v2 = dir_.file("v2.npy"), scalar = dir_.file("scalar.npy");
  const auto r = python(R"PY(
import sys
with open(sys.argv[1], 'wb') as f:
    np.lib.format.write_array(f, pattern('u2', (6, 7)), version=(2, 0))
np.save(sys.argv[2], np.float64(3.5))
)PY",
                        {v2, scalar});
  ASSERT_TRUE(r.ok()) << r.output;
  ASSERT_EQ(read_file(v2)[6], 2);
  const auto a = SharedArray<const std::uint16_t>::open_npy(v2);
  EXPECT_EQ(a.shape(), (Shape{6, 7}));
  for (std::size_t k = 0; k < a.size(); ++k)
    EXPECT_EQ(a.data()[k], test::pattern_value<std::uint16_t>(k));
  const auto s = SharedArray<const double>::open_npy(scalar);
  EXPECT_EQ(s.shape(), Shape{});
  EXPECT_EQ(s.element({}), 3.5);
}

}  // namespace
}  // namespace taskfarm
