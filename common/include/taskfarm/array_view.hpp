// ArrayView<T>: a non-owning N-d strided view of elements that live elsewhere (a SharedArray,
// a mapped .npy file, any buffer); copying a view copies no elements. Any process or thread may
// use a view for as long as the memory's owner keeps it mapped; concurrent writers to the same
// elements must be kept apart by the caller (the farm gives each task its own frames).
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <cstddef>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "taskfarm/dtype.hpp"

namespace taskfarm {

/// Distance between neighbours along each axis, in elements (not bytes, unlike NumPy).
using Strides = std::vector<std::ptrdiff_t>;

/// Strides of a C-order (row-major, last axis contiguous) array of `shape`.
inline Strides c_strides(const Shape& shape) {
  Strides s(shape.size());
  std::ptrdiff_t step = 1;
  for (std::size_t k = shape.size(); k-- > 0;) {
    s[k] = step;
    step *= static_cast<std::ptrdiff_t>(shape[k]);
  }
  return s;
}

template <class T>
class ArrayView {
 public:
  using element_type = T;
  using value_type = std::remove_cv_t<T>;

  /// A null view: no elements (data() == nullptr, size() == 0, ndim() == 0).
  ArrayView() noexcept = default;
  /// C-order view of `shape` starting at `data`.
  ArrayView(T* data, Shape shape)
      : data_(data), shape_(std::move(shape)), strides_(c_strides(shape_)), size_(count(shape_)) {}
  /// View with explicit strides (in elements), one per axis; throws std::invalid_argument else.
  ArrayView(T* data, Shape shape, Strides strides)
      : data_(data), shape_(std::move(shape)), strides_(std::move(strides)), size_(count(shape_)) {
    if (strides_.size() != shape_.size()) {
      throw std::invalid_argument("ArrayView: " + std::to_string(strides_.size()) +
                                  " strides for shape " + format_shape(shape_));
    }
  }
  /// A read-only view of the same elements.
  template <class U>  // NOLINTNEXTLINE(google-explicit-constructor): T* -> const T*
  ArrayView(const ArrayView<U>& other) requires(std::is_same_v<const U, T> && !std::is_same_v<U, T>)
      : data_(other.data()),
        shape_(other.shape()),
        strides_(other.strides()),
        size_(other.size()) {}

  /// Address of element (0, 0, ...).
  T* data() const noexcept { return data_; }
  const Shape& shape() const noexcept { return shape_; }
  const Strides& strides() const noexcept { return strides_; }
  std::size_t ndim() const noexcept { return shape_.size(); }
  /// Number of elements.
  std::size_t size() const noexcept { return size_; }

  /// Sub-array i along axis 0 (frame i of a stack of frames): ndim() - 1 axes.
  /// Unchecked (an assert in debug builds); at(i) checks.
  ArrayView operator[](std::size_t i) const {
    assert(ndim() > 0 && i < shape_[0]);
    return remove_axis(0, i);
  }
  /// Like operator[], but throws std::out_of_range naming the index and the shape.
  ArrayView at(std::size_t i) const {
    if (ndim() == 0) throw std::out_of_range("ArrayView::at: cannot index a 0-d view");
    check_axis_index(0, i, "at");
    return remove_axis(0, i);
  }

  /// Element (i, j, ...), one index per axis. Unchecked (an assert in debug builds).
  template <class... I>
  requires(sizeof...(I) >= 1 && (std::is_integral_v<I> && ...)) T& operator()(I... idx) const {
    assert(sizeof...(I) == ndim());
    std::ptrdiff_t off = 0;
    std::size_t k = 0;
    ((off += static_cast<std::ptrdiff_t>(idx) * strides_[k++]), ...);
    return data_[off];
  }
  /// Element (i, j, ...) with two or more indices; throws std::out_of_range naming the indices
  /// and the shape if their count or any value is wrong. (For one index use element({i}):
  /// at(i) is the sub-array.)
  template <class... I>
  requires(sizeof...(I) >= 2 && (std::is_integral_v<I> && ...)) T& at(I... idx) const {
    const std::array<std::size_t, sizeof...(I)> ix{to_index(idx)...};
    if (!in_range(ix.data(), ix.size())) {
      std::string text;
      ((text += (text.empty() ? "" : ", ") + std::to_string(idx)), ...);
      throw std::out_of_range("ArrayView::at: index (" + text + ") out of range for shape " +
                              format_shape(shape_));
    }
    return data_[offset(ix.data())];
  }
  /// Element at the given indices, one per axis (none for a 0-d view); checked like at().
  T& element(std::initializer_list<std::size_t> idx) const {
    if (!in_range(idx.begin(), idx.size())) {
      std::string text;
      for (const std::size_t i : idx) text += (text.empty() ? "" : ", ") + std::to_string(i);
      throw std::out_of_range("ArrayView::element: index (" + text + ") out of range for shape " +
                              format_shape(shape_));
    }
    return data_[offset(idx.begin())];
  }

  /// The view with `axis` removed at position i: take(1, i) of a (rows, slices, cols) stack is
  /// NumPy's data[:, i, :], a strided (rows, cols) view. Throws std::out_of_range.
  ArrayView take(std::size_t axis, std::size_t i) const {
    if (axis >= ndim()) {
      throw std::out_of_range("ArrayView::take: axis " + std::to_string(axis) +
                              " out of range for shape " + format_shape(shape_));
    }
    check_axis_index(axis, i, "take");
    return remove_axis(axis, i);
  }

  /// True if the elements lie in C order without gaps (axes of extent 1 may have any stride).
  bool contiguous() const noexcept {
    std::ptrdiff_t expected = 1;
    for (std::size_t k = ndim(); k-- > 0;) {
      if (shape_[k] != 1 && strides_[k] != expected) return false;
      expected *= static_cast<std::ptrdiff_t>(shape_[k]);
    }
    return true;
  }

  /// Iteration over all elements in C order; only for contiguous() views (a 1-d frame row, a
  /// whole array), throws std::logic_error otherwise. Strided views: index, or copy_to().
  T* begin() const {
    require_contiguous("begin");
    return data_;
  }
  T* end() const {
    require_contiguous("end");
    return data_ + size_;
  }

  /// Copies the elements, in C order, into the contiguous buffer dst[0 .. size()).
  void copy_to(value_type* dst) const {
    if (size_ == 0) return;
    if (contiguous()) {
      std::copy_n(data_, size_, dst);
    } else {
      walk(0, data_, dst, [](T& view, value_type& buf) { buf = view; });
    }
  }
  /// Overwrites the elements from the contiguous C-order buffer src[0 .. size()).
  void copy_from(const value_type* src) const requires(!std::is_const_v<T>) {
    if (size_ == 0) return;
    if (contiguous()) {
      std::copy_n(src, size_, data_);
    } else {
      walk(0, data_, src, [](T& view, const value_type& buf) { view = buf; });
    }
  }

 private:
  static std::size_t count(const Shape& shape) {
    std::size_t n = 1;
    for (const std::size_t e : shape) n *= e;
    return n;
  }
  template <class I>
  static std::size_t to_index(I v) {
    if constexpr (std::is_signed_v<I>) {
      if (v < 0) return std::numeric_limits<std::size_t>::max();
    }
    return static_cast<std::size_t>(v);
  }
  bool in_range(const std::size_t* ix, std::size_t n) const {
    if (n != ndim()) return false;
    for (std::size_t k = 0; k < n; ++k) {
      if (ix[k] >= shape_[k]) return false;
    }
    return true;
  }
  std::ptrdiff_t offset(const std::size_t* ix) const {
    std::ptrdiff_t off = 0;
    for (std::size_t k = 0; k < ndim(); ++k)
      off += static_cast<std::ptrdiff_t>(ix[k]) * strides_[k];
    return off;
  }
  void check_axis_index(std::size_t axis, std::size_t i, const char* what) const {
    if (i >= shape_[axis]) {
      throw std::out_of_range(std::string("ArrayView::") + what + ": index " + std::to_string(i) +
                              " out of range for axis " + std::to_string(axis) + " of shape " +
                              format_shape(shape_));
    }
  }
  void require_contiguous(const char* what) const {
    if (!contiguous()) {
      throw std::logic_error(std::string("ArrayView::") + what + ": the view of shape " +
                             format_shape(shape_) +
                             " is strided, not contiguous; index it or use copy_to()");
    }
  }
  ArrayView remove_axis(std::size_t axis, std::size_t i) const {
    const auto a = static_cast<std::ptrdiff_t>(axis);
    Shape shape = shape_;
    Strides strides = strides_;
    shape.erase(shape.begin() + a);
    strides.erase(strides.begin() + a);
    return ArrayView(data_ + static_cast<std::ptrdiff_t>(i) * strides_[axis], std::move(shape),
                     std::move(strides));
  }
  // Walks the view in C order alongside a contiguous buffer, calling op(view_elem, buf_elem).
  template <class B, class Op>
  B* walk(std::size_t axis, T* elem, B* buf, Op op) const {
    if (axis == ndim()) {
      op(*elem, *buf);
      return buf + 1;
    }
    const std::ptrdiff_t step = strides_[axis];
    for (std::size_t i = 0; i < shape_[axis]; ++i) {
      buf = walk(axis + 1, elem + static_cast<std::ptrdiff_t>(i) * step, buf, op);
    }
    return buf;
  }

  T* data_ = nullptr;
  Shape shape_;
  Strides strides_;
  std::size_t size_ = 0;
};

}  // namespace taskfarm
