#include "taskfarm/array_view.hpp"

#include <gtest/gtest.h>

#include <functional>
#include <numeric>
#include <stdexcept>

namespace taskfarm {
namespace {

// 3 frames of 2 x 4, element k holding k.
class ArrayViewTest : public ::testing::Test {
 protected:
  ArrayViewTest() { std::iota(buf_.begin(), buf_.end(), 0); }
  std::vector<int> buf_ = std::vector<int>(24);
  ArrayView<int> v_{buf_.data(), {3, 2, 4}};
};

std::string out_of_range_message(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::out_of_range& e) {
    return e.what();
  }
  return "(no std::out_of_range)";
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

TEST_F(ArrayViewTest, HasCOrderStridesShapeAndSize) {
  EXPECT_EQ(v_.ndim(), 3u);
  EXPECT_EQ(v_.size(), 24u);
  EXPECT_EQ(v_.shape(), (Shape{3, 2, 4}));
  EXPECT_EQ(v_.strides(), (Strides{8, 4, 1}));
  EXPECT_TRUE(v_.contiguous());
  EXPECT_EQ(v_(2, 1, 3), 23);
  EXPECT_EQ(v_.at(1, 0, 2), 10);
  EXPECT_EQ(v_.element({0, 1, 1}), 5);
}

TEST_F(ArrayViewTest, SubscriptIsExactlyOneFrame) {
  const ArrayView<int> frame = v_[1];
  EXPECT_EQ(frame.data(), buf_.data() + 8);
  EXPECT_EQ(frame.shape(), (Shape{2, 4}));
  EXPECT_EQ(frame.size(), 8u);
  for (int& x : frame) x = -1;
  for (std::size_t k = 0; k < buf_.size(); ++k) {
    EXPECT_EQ(buf_[k], k >= 8 && k < 16 ? -1 : static_cast<int>(k)) << "element " << k;
  }
  EXPECT_EQ(v_[2][1].shape(), Shape{4});
  EXPECT_EQ(v_[2][1](3), 23);
  EXPECT_EQ(v_.at(2).at(1).element({3}), 23);
}

TEST_F(ArrayViewTest, CheckedAccessNamesIndexAndShape) {
  std::string m = out_of_range_message([&] { v_.at(3); });
  EXPECT_TRUE(contains(m, "index 3") && contains(m, "3x2x4")) << m;
  m = out_of_range_message([&] { v_.at(1, 2, 0); });
  EXPECT_TRUE(contains(m, "(1, 2, 0)") && contains(m, "3x2x4")) << m;
  m = out_of_range_message([&] { v_.at(0, -1, 0); });
  EXPECT_TRUE(contains(m, "(0, -1, 0)")) << m;
  m = out_of_range_message([&] { v_.at(0, 0); });  // too few indices
  EXPECT_TRUE(contains(m, "(0, 0)") && contains(m, "3x2x4")) << m;
  m = out_of_range_message([&] { v_.element({0, 0, 4}); });
  EXPECT_TRUE(contains(m, "(0, 0, 4)") && contains(m, "3x2x4")) << m;
  m = out_of_range_message([&] { v_[0][0][0].at(0); });
  EXPECT_TRUE(contains(m, "0-d")) << m;
}

#ifndef NDEBUG
TEST_F(ArrayViewTest, UncheckedSubscriptAssertsInDebugBuilds) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(v_[3], "");
}
#endif

TEST(ArrayViewTakeTest, TakeOfTheMiddleAxisIsAStridedSlice) {
  // (rows, slices, cols) = (3, 4, 5); take(1, 2) is NumPy's data[:, 2, :].
  std::vector<double> buf(60);
  std::iota(buf.begin(), buf.end(), 0.0);
  const ArrayView<double> stack(buf.data(), {3, 4, 5});
  const ArrayView<double> slice = stack.take(1, 2);
  EXPECT_EQ(slice.shape(), (Shape{3, 5}));
  EXPECT_EQ(slice.strides(), (Strides{20, 1}));
  EXPECT_FALSE(slice.contiguous());
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t c = 0; c < 5; ++c)
      EXPECT_EQ(slice(r, c), static_cast<double>(r * 20 + 10 + c));
  }
  const ArrayView<double> column = stack.take(2, 4);
  EXPECT_EQ(column.shape(), (Shape{3, 4}));
  EXPECT_EQ(column.strides(), (Strides{20, 5}));
  EXPECT_EQ(column(2, 3), 59.0);
  EXPECT_EQ(stack.take(0, 1).data(), stack[1].data());
  EXPECT_TRUE(stack.take(0, 1).contiguous());

  std::string m = out_of_range_message([&] { stack.take(3, 0); });
  EXPECT_TRUE(contains(m, "axis 3") && contains(m, "3x4x5")) << m;
  m = out_of_range_message([&] { stack.take(1, 4); });
  EXPECT_TRUE(contains(m, "index 4") && contains(m, "axis 1") && contains(m, "3x4x5")) << m;
}

TEST(ArrayViewTakeTest, CopiesThroughStridedViews) {
  std::vector<int> buf(60);
  std::iota(buf.begin(), buf.end(), 0);
  const ArrayView<int> stack(buf.data(), {3, 4, 5});
  const ArrayView<int> slice = stack.take(1, 2);
  std::vector<int> out(slice.size());
  slice.copy_to(out.data());
  for (std::size_t i = 0; i < out.size(); ++i) {
    EXPECT_EQ(out[i], static_cast<int>((i / 5) * 20 + 10 + i % 5)) << i;
  }
  std::vector<int> minus(slice.size(), -7);
  slice.copy_from(minus.data());
  for (std::size_t k = 0; k < buf.size(); ++k) {
    const bool in_slice = (k % 20) / 5 == 2;
    EXPECT_EQ(buf[k], in_slice ? -7 : static_cast<int>(k)) << k;
  }
  EXPECT_THROW(slice.begin(), std::logic_error);  // strided: no raw-pointer iteration
}

TEST(ArrayViewConstTest, MutableViewConvertsToConstOnly) {
  static_assert(std::is_convertible_v<ArrayView<float>, ArrayView<const float>>);
  static_assert(!std::is_constructible_v<ArrayView<float>, ArrayView<const float>>);
  std::vector<float> buf{1, 2, 3, 4, 5, 6};
  const ArrayView<float> v(buf.data(), {2, 3});
  const ArrayView<const float> c = v;
  EXPECT_EQ(c.data(), v.data());
  EXPECT_EQ(c.shape(), v.shape());
  EXPECT_EQ(c(1, 2), 6.0f);
  float sum = 0;
  for (const float x : c[1]) sum += x;
  EXPECT_EQ(sum, 15.0f);
}

TEST(ArrayViewConstTest, ZeroDViewHoldsOneElement) {
  double x = 2.5;
  const ArrayView<double> v(&x, Shape{});
  EXPECT_EQ(v.ndim(), 0u);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_EQ(v.element({}), 2.5);
  double out = 0;
  v.copy_to(&out);
  EXPECT_EQ(out, 2.5);
  const ArrayView<double> null_view;
  EXPECT_EQ(null_view.size(), 0u);
  EXPECT_EQ(null_view.begin(), null_view.end());
}

TEST(ArrayViewConstTest, ExplicitStridesMustMatchTheShape) {
  int x = 0;
  EXPECT_THROW(ArrayView<int>(&x, {2, 2}, Strides{1}), std::invalid_argument);
}

}  // namespace
}  // namespace taskfarm
