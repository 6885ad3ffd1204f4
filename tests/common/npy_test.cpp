#include "taskfarm/npy.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include "taskfarm/error.hpp"
#include "test_support.hpp"

namespace taskfarm {
namespace {

const std::string kPath = "/data/in.npy";

std::string le(std::size_t v, std::size_t width) {
  std::string out;
  for (std::size_t i = 0; i < width; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

// A preamble around `dict` the way any writer might lay it out (no alignment promised).
std::string preamble(const std::string& dict, int major = 1) {
  const std::size_t width = major == 1 ? 2 : 4;
  return std::string("\x93NUMPY") + static_cast<char>(major) + '\0' + le(dict.size() + 1, width) +
         dict + "\n";
}

std::string error_of(const std::string& bytes) {
  try {
    parse_npy_header(bytes, kPath);
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

TEST(NpyTest, HeaderIsAlignedToSixtyFourAndReadsBack) {
  for (DType t : {DType::u8, DType::u16, DType::i32, DType::i64, DType::f32, DType::f64}) {
    for (const Shape& shape : {Shape{}, Shape{5}, Shape{3, 4}, Shape{100, 512, 512},
                               Shape{2, 3, 4, 5}, Shape{123456789012345678, 1}}) {
      const std::string h = make_npy_header(t, shape);
      EXPECT_EQ(h.size() % 64, 0u);
      EXPECT_EQ(h.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
      EXPECT_EQ(h.back(), '\n');
      const NpyHeader parsed = parse_npy_header(h, kPath);
      EXPECT_EQ(parsed.dtype, t);
      EXPECT_EQ(parsed.shape, shape);
      EXPECT_EQ(parsed.data_offset, h.size());
    }
  }
}

TEST(NpyTest, HeaderDictIsSpelledLikeNumPys) {
  const std::string h = make_npy_header(DType::f64, {100, 512, 512});
  const std::string dict = "{'descr': '<f8', 'fortran_order': False, 'shape': (100, 512, 512), }";
  EXPECT_EQ(h.substr(10, dict.size()), dict);
  EXPECT_NE(make_npy_header(DType::u8, {5})
                .find("{'descr': '|u1', 'fortran_order': False, 'shape': (5,), }"),
            std::string::npos);
  EXPECT_NE(make_npy_header(DType::i32, {}).find("'shape': (), }"), std::string::npos);
}

TEST(NpyTest, ParsesZeroDAndOneTupleShapes) {
  EXPECT_EQ(
      parse_npy_header(preamble("{'descr': '<f8', 'fortran_order': False, 'shape': ()}"), kPath)
          .shape,
      Shape{});
  EXPECT_EQ(
      parse_npy_header(preamble("{'descr': '<i4', 'fortran_order': False, 'shape': (7,), }"), kPath)
          .shape,
      Shape{7});
}

TEST(NpyTest, ParsesOtherWritersLayouts) {
  // Keys in another order, double quotes, Python 2 longs, no trailing comma, no padding.
  const NpyHeader h = parse_npy_header(
      preamble("{\"shape\": (3L, 4L), \"fortran_order\": False, \"descr\": \"<f4\"}"), kPath);
  EXPECT_EQ(h.dtype, DType::f32);
  EXPECT_EQ(h.shape, (Shape{3, 4}));
}

TEST(NpyTest, ParsesHandMadeFormatTwoHeader) {
  const std::string bytes =
      preamble("{'descr': '<u2', 'fortran_order': False, 'shape': (2, 3), }", 2);
  const NpyHeader h = parse_npy_header(bytes, kPath);
  EXPECT_EQ(h.dtype, DType::u16);
  EXPECT_EQ(h.shape, (Shape{2, 3}));
  EXPECT_EQ(h.data_offset, bytes.size());
}

TEST(NpyTest, WritesFormatTwoWhenTheHeaderOutgrowsSixtyFourKiB) {
  const Shape shape(30000, 1);  // "1, " 30000 times: about 90 KB of dict
  const std::string h = make_npy_header(DType::f64, shape);
  EXPECT_GT(h.size(), 65535u);
  EXPECT_EQ(h[6], 2);
  EXPECT_EQ(h.size() % 64, 0u);
  const NpyHeader parsed = parse_npy_header(h, kPath);
  EXPECT_EQ(parsed.shape, shape);
  EXPECT_EQ(parsed.data_offset, h.size());
}

TEST(NpyTest, RejectsWhatItCannotMapWithPathAndProblem) {
  struct Case {
    std::string bytes;
    std::string problem;
  };
  const Case cases[] = {
      {preamble("{'descr': '<f8', 'fortran_order': True, 'shape': (2, 3), }"), "Fortran"},
      {preamble("{'descr': '>f8', 'fortran_order': False, 'shape': (2, 3), }"), "big-endian"},
      {preamble("{'descr': '<c16', 'fortran_order': False, 'shape': (2, 3), }"),
       "unsupported dtype '<c16'"},
      {preamble("{'descr': '|b1', 'fortran_order': False, 'shape': (2, 3), }"),
       "unsupported dtype '|b1'"},
      {preamble("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }"),
       "structured"},
      {preamble("{'descr': '<f8', 'shape': (2, 3), }"), "lacks"},
      {preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), 'x': 1}"),
       "unexpected key 'x'"},
      {preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, -3), }"), "shape"},
      {preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), } junk"),
       "after the header"},
      {std::string("\x93NUMPY\x04\x00\x10\x00", 10) + std::string(16, ' '), "version 4.0"},
      {"PK\x03\x04 a zip file, not an array", "not a .npy file"},
      {preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }").substr(0, 40),
       "truncated"},
      {std::string("\x93NUM"), "truncated"},
  };
  for (const Case& c : cases) {
    const std::string what = error_of(c.bytes);
    EXPECT_NE(what.find(kPath), std::string::npos) << what;
    EXPECT_NE(what.find(c.problem), std::string::npos)
        << "expected '" << c.problem << "' in: " << what;
  }
}

TEST(NpyTest, VersionByteThatDoesNotMatchTheLayoutIsNamed) {
  // A 1.0 preamble marked 3.0 (or 2.0): its 4-byte length reads the dict's first bytes.
  for (const char major : {'\x02', '\x03'}) {
    std::string bytes = preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }");
    bytes[6] = major;
    const std::string what = error_of(bytes + std::string(48, '\0'));
    EXPECT_NE(what.find(kPath), std::string::npos) << what;
    EXPECT_NE(what.find("format version " + std::to_string(major) + ".0"), std::string::npos) << what;
    EXPECT_NE(what.find("laid out as version 1.0"), std::string::npos) << what;
    EXPECT_NE(what.find("version byte is wrong"), std::string::npos) << what;
  }
  // A cut file says so, and names the version it read.
  const std::string cut = preamble("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }", 3).substr(0, 40);
  const std::string what = error_of(cut);
  EXPECT_NE(what.find("format version 3.0"), std::string::npos) << what;
  EXPECT_NE(what.find("truncated"), std::string::npos) << what;
}

TEST(NpyTest, ReadsHeaderOfFileOnDisk) {
  test::TempDir dir;
  const std::string path = dir.file("a.npy");
  write_file(path, make_npy_header(DType::u16, {3, 4}) + std::string(24, '\0'));
  const NpyHeader h = read_npy_header(path);
  EXPECT_EQ(h.dtype, DType::u16);
  EXPECT_EQ(h.shape, (Shape{3, 4}));
  EXPECT_EQ(h.data_offset, 128u);
}

TEST(NpyTest, TruncatedFileIsAnErrorNamingThePath) {
  test::TempDir dir;
  const std::string path = dir.file("short.npy");
  write_file(path, make_npy_header(DType::f64, {3, 4}) + std::string(95, '\0'));  // 96 needed
  try {
    read_npy_header(path);
    FAIL() << "truncated file accepted";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(path), std::string::npos) << what;
    EXPECT_NE(what.find("truncated"), std::string::npos) << what;
  }
  EXPECT_THROW(read_npy_header(dir.file("missing.npy")), Error);
}

}  // namespace
}  // namespace taskfarm
