#include "taskfarm/dtype.hpp"

#include <gtest/gtest.h>

#include <limits>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {

static_assert(dtype_of<std::uint8_t>() == DType::u8);
static_assert(dtype_of<std::uint16_t>() == DType::u16);
static_assert(dtype_of<std::int32_t>() == DType::i32);
static_assert(dtype_of<std::int64_t>() == DType::i64);
static_assert(dtype_of<float>() == DType::f32);
static_assert(dtype_of<const double>() == DType::f64);

struct Spelling {
  DType type;
  std::size_t size;
  const char* name;
  const char* descr;
  const char* code;
};
const Spelling kSpellings[] = {
    {DType::u8, 1, "uint8", "|u1", "u1"},    {DType::u16, 2, "uint16", "<u2", "u2"},
    {DType::i32, 4, "int32", "<i4", "i4"},   {DType::i64, 8, "int64", "<i8", "i8"},
    {DType::f32, 4, "float32", "<f4", "f4"}, {DType::f64, 8, "float64", "<f8", "f8"},
};

TEST(DTypeTest, SpellsEveryTypeTheWayNumPyDoes) {
  for (const Spelling& s : kSpellings) {
    EXPECT_EQ(dtype_size(s.type), s.size);
    EXPECT_EQ(dtype_name(s.type), s.name);
    EXPECT_EQ(dtype_descr(s.type), s.descr);
    EXPECT_EQ(dtype_code(s.type), s.code);
  }
}

TEST(DTypeTest, ParsesNamesCodesAndDescrs) {
  for (const Spelling& s : kSpellings) {
    EXPECT_EQ(parse_dtype(s.name), s.type) << s.name;
    EXPECT_EQ(parse_dtype(s.code), s.type) << s.code;
    EXPECT_EQ(parse_dtype(s.descr), s.type) << s.descr;
    EXPECT_EQ(parse_dtype(std::string("<") + s.code), s.type) << s.code;
    EXPECT_EQ(parse_dtype(std::string("|") + s.code), s.type) << s.code;
  }
  EXPECT_EQ(parse_dtype(">u1"), DType::u8);  // byte order is moot for one byte
}

TEST(DTypeTest, RejectsBigEndianUnknownAndMalformedTypes) {
  for (const char* text : {">f8", ">i4", ">u2", "float", "double", "f16", "c8", "<c16", "|b1",
                           "bool", "u", "", "<", "f8 ", " f8", "<float64", "Float64", "uint8x"}) {
    EXPECT_FALSE(parse_dtype(text).has_value()) << '"' << text << '"';
  }
}

TEST(ShapeTest, FormatsAndParsesBackEveryRank) {
  const Shape shapes[] = {{}, {7}, {3, 5}, {100, 512, 512}, {1, 2, 3, 4, 5, 6, 7, 8}};
  const char* texts[] = {"()", "7", "3x5", "100x512x512", "1x2x3x4x5x6x7x8"};
  for (std::size_t i = 0; i < std::size(shapes); ++i) {
    EXPECT_EQ(format_shape(shapes[i]), texts[i]);
    EXPECT_EQ(parse_shape(texts[i]), shapes[i]) << texts[i];
  }
}

TEST(ShapeTest, RejectsZeroSignsJunkOverflowAndTooManyAxes) {
  for (const char* text :
       {"", "0", "3x0", "0x10", "-1", "3x-4", "+3", "3x", "x3", "3xx4", "3 x 4", " 3", "3X4", "1e3",
        "3.0", "(3,)", "()x3", "1x1x1x1x1x1x1x1x1", "99999999999999999999999"}) {
    EXPECT_FALSE(parse_shape(text).has_value()) << '"' << text << '"';
  }
}

TEST(ShapeTest, CountsElementsAndBytes) {
  EXPECT_EQ(shape_elements({}), 1u);
  EXPECT_EQ(shape_elements({100, 512, 512}), 26214400u);
  EXPECT_EQ(array_bytes(DType::f64, {100, 512, 512}), 209715200u);
  EXPECT_EQ(array_bytes(DType::u8, {}), 1u);
}

TEST(ShapeTest, ElementCountOverflowIsAnErrorNamingTheShape) {
  const std::size_t big = std::size_t{1} << 33;
  try {
    shape_elements({big, big});
    FAIL() << "no overflow detected";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("8589934592x8589934592"), std::string::npos) << e.what();
  }
  // Fits as a count, not as bytes.
  EXPECT_THROW(array_bytes(DType::f64, {std::numeric_limits<std::size_t>::max() / 4}), Error);
}

}  // namespace
}  // namespace taskfarm
