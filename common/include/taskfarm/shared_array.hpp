// AnySharedArray and SharedArray<T>: an N-d array whose elements every process of a farm maps,
// backed by a POSIX shm segment or by a .npy file. The process that create()s a shm-backed array
// owns the segment and removes it when the owning object is destroyed (a forked copy never
// does); other processes attach() by handle() and only unmap. A .npy-backed array is a file:
// create_npy() writes it (under a temporary name, renamed into place when complete: a file
// that was there is replaced whole, never truncated or written, and a failure removes only the
// temporary file), attach()/open_npy() map it, nothing removes it. An object is used by one
// thread at a time; its elements may be read and written from any thread or process.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

#include "taskfarm/array_view.hpp"
#include "taskfarm/dtype.hpp"

namespace taskfarm {

/// The type-erased owner (or attachment) of one shared array. Move-only.
class AnySharedArray {
 public:
  enum class Backing : std::uint8_t { none, shm, npy };
  /// When create_npy's file appears at its path: at once, or at publish().
  enum class Publish : std::uint8_t { now, later };
  /// What publish() does to a file already at the path.
  enum class OnExisting : std::uint8_t { replace, refuse };

  /// A new zero-filled array in a fresh shm segment (taskfarm-<pid>-<random>, mode 0600) that
  /// this object owns and removes. All bytes are reserved now: when /dev/shm is too small this
  /// throws Error saying how much was asked and how much is free, and leaves nothing behind.
  static AnySharedArray create(DType dtype, Shape shape);
  /// Creates the .npy file `path`: writes its header, reserves the data (zero-filled) and maps
  /// it read-write, all in a new file "PATH.taskfarm-<pid>-<n>.tmp" of the same directory,
  /// renamed to `path` when complete (Publish::now) or by publish() (Publish::later). An
  /// existing regular file at `path` is replaced by that rename and untouched before it; a
  /// FIFO, device or directory there is refused (Error, nothing opened or created). Checks the
  /// free space of the directory first (the new file needs all of it: the old one keeps its
  /// blocks until replaced); a missing directory or too little space throws Error naming the
  /// path. A failure leaves no file of ours and the old one as it was. The object holds an
  /// exclusive flock(2) on the file while it lives (a `taskfarm run` naming it is refused).
  /// The file stays after destruction: it is the output.
  static AnySharedArray create_npy(const std::string& path, DType dtype, Shape shape,
                                   Publish publish = Publish::now);
  /// Maps an existing .npy file (PROT_READ from an O_RDONLY descriptor unless `writable`).
  /// Never blocks: a FIFO or device is refused by its kind. Throws Error naming the path if it
  /// is not a .npy file taskfarm can map (see npy.hpp) or is truncated.
  static AnySharedArray open_npy(const std::string& path, bool writable = true);
  /// Maps the array another process published with handle(). Opens read-write, or read-only if
  /// the OS refuses writing or the handle comes from a read-only mapping ("npy-ro:", "shm-ro:";
  /// then writable() is false). Never removes anything. Throws Error naming the segment or file
  /// if it does not exist, cannot be opened or does not match.
  static AnySharedArray attach(std::string_view handle);
  /// Like attach(), but always read-only: PROT_READ from an O_RDONLY descriptor, so a stray
  /// write through data() faults (SIGSEGV) instead of changing the array.
  static AnySharedArray attach_read_only(std::string_view handle);

  /// The handle attach() maps read-only: "npy:…" becomes "npy-ro:…", "shm:…" "shm-ro:…".
  static std::string read_only_handle(std::string_view handle);

  /// For create_npy(..., Publish::later): renames the finished file to name(). OnExisting::refuse
  /// throws Error if anything is at the path by now; a FIFO, device or directory is never
  /// replaced. Until then handle() names the file through this process's descriptor of it
  /// ("/proc/PID/fd/N": other processes of the same user open that, before and after the rename,
  /// while this object lives). No-op once published.
  void publish(OnExisting on_existing = OnExisting::replace);
  /// False only for a create_npy(..., Publish::later) array not yet published.
  bool published() const noexcept;

  /// An empty object: no array, operator bool is false.
  AnySharedArray() noexcept;
  AnySharedArray(AnySharedArray&& other) noexcept;
  AnySharedArray& operator=(AnySharedArray&& other) noexcept;
  AnySharedArray(const AnySharedArray&) = delete;
  AnySharedArray& operator=(const AnySharedArray&) = delete;
  /// Unmaps; an owned segment's name is removed too.
  ~AnySharedArray();

  /// What another process passes to attach(): "shm:f8:100x512x512:taskfarm-123-0123456789abcdef"
  /// or "npy:i4:1000x1000:/abs/path/out.npy" (the path last: it may contain ':'); "shm-ro:" and
  /// "npy-ro:" when this object maps it read-only, so that every attachment is read-only too.
  std::string handle() const;

  /// Typed view of all elements. Throws Error naming this array if T is not dtype(), or if T is
  /// not const and the array was mapped read-only.
  template <class T>
  ArrayView<T> as() const {
    if (!*this || dtype_of<T>() != dtype_) throw_mismatch(dtype_of<T>(), nullptr);
    if constexpr (!std::is_const_v<T>) {
      if (!writable_) throw_read_only();
    }
    return ArrayView<T>(static_cast<T*>(data_), shape_);
  }
  /// Throws Error naming this array and both dtypes and shapes unless it holds exactly these.
  void check(DType dtype, const Shape& shape) const;

  void* data() const noexcept { return data_; }
  /// Bytes of element data (the header of a .npy file not included).
  std::size_t bytes() const noexcept { return bytes_; }
  DType dtype() const noexcept { return dtype_; }
  const Shape& shape() const noexcept { return shape_; }
  std::size_t ndim() const noexcept { return shape_.size(); }
  /// Number of elements.
  std::size_t size() const noexcept { return size_; }
  /// The shm segment name, or the absolute path of the .npy file.
  const std::string& name() const noexcept { return name_; }
  Backing backing() const noexcept { return backing_; }
  bool writable() const noexcept { return writable_; }
  /// True if this object owns a shm segment and will remove its name.
  bool owns_segment() const noexcept;
  explicit operator bool() const noexcept { return mapping_ != nullptr; }

 private:
  struct Mapping;  // the mapped segment or file; defined in shared_array.cpp

  AnySharedArray(std::unique_ptr<Mapping> mapping, Backing backing, DType dtype, Shape shape,
                 void* data, bool writable, std::string name);
  static AnySharedArray attach_mode(std::string_view handle, bool read_only);
  [[noreturn]] void throw_mismatch(DType wanted, const Shape* wanted_shape) const;
  [[noreturn]] void throw_read_only() const;

  std::unique_ptr<Mapping> mapping_;
  Backing backing_ = Backing::none;
  DType dtype_ = DType::u8;
  Shape shape_;
  void* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t bytes_ = 0;
  bool writable_ = false;
  std::string name_;
};

/// A shared array of element type T (see dtype_of): AnySharedArray with the dtype checked once,
/// plus typed access. Use SharedArray<const T> for arrays mapped read-only.
template <class T>
class SharedArray {
 public:
  /// See AnySharedArray::create.
  static SharedArray create(Shape shape) {
    return SharedArray(AnySharedArray::create(dtype_of<T>(), std::move(shape)));
  }
  /// See AnySharedArray::create_npy.
  static SharedArray create_npy(const std::string& path, Shape shape,
                                AnySharedArray::Publish publish = AnySharedArray::Publish::now) {
    return SharedArray(AnySharedArray::create_npy(path, dtype_of<T>(), std::move(shape), publish));
  }
  /// See AnySharedArray::open_npy; throws Error naming the file if it holds another dtype.
  static SharedArray open_npy(const std::string& path, bool writable = !std::is_const_v<T>) {
    return SharedArray(AnySharedArray::open_npy(path, writable));
  }
  /// See AnySharedArray::attach (attach_read_only for a const T); throws Error naming the
  /// segment if it holds another dtype.
  static SharedArray attach(std::string_view handle) { return SharedArray(attach_any(handle)); }
  /// Like attach(handle), and throws Error naming the segment and both dtypes and shapes unless
  /// the array has exactly `expected_shape`.
  static SharedArray attach(std::string_view handle, const Shape& expected_shape) {
    AnySharedArray any = attach_any(handle);
    any.check(dtype_of<T>(), expected_shape);
    return SharedArray(std::move(any));
  }

  SharedArray() noexcept = default;
  /// Takes over `any`; throws Error naming it if it does not hold T (see AnySharedArray::as).
  explicit SharedArray(AnySharedArray any) : any_(std::move(any)), view_(any_.as<T>()) {}
  SharedArray(SharedArray&& other) noexcept
      : any_(std::move(other.any_)), view_(std::exchange(other.view_, ArrayView<T>{})) {}
  SharedArray& operator=(SharedArray&& other) noexcept {
    any_ = std::move(other.any_);
    view_ = std::exchange(other.view_, ArrayView<T>{});
    return *this;
  }

  /// All elements.
  const ArrayView<T>& view() const noexcept { return view_; }
  /// Sub-array i along axis 0 (frame i); unchecked like ArrayView::operator[].
  ArrayView<T> operator[](std::size_t i) const { return view_[i]; }
  /// Sub-array i along axis 0; throws std::out_of_range naming the index and shape.
  ArrayView<T> at(std::size_t i) const { return view_.at(i); }
  /// Element (i, j, ...), checked; see ArrayView::at.
  template <class... I>
  requires(sizeof...(I) >= 2 && (std::is_integral_v<I> && ...)) T& at(I... idx) const {
    return view_.at(idx...);
  }
  /// Element at the given indices, checked; see ArrayView::element.
  T& element(std::initializer_list<std::size_t> idx) const { return view_.element(idx); }

  T* data() const noexcept { return view_.data(); }
  std::size_t size() const noexcept { return view_.size(); }
  const Shape& shape() const noexcept { return any_.shape(); }
  std::string handle() const { return any_.handle(); }
  const std::string& name() const noexcept { return any_.name(); }
  explicit operator bool() const noexcept { return static_cast<bool>(any_); }

  const AnySharedArray& any() const noexcept { return any_; }
  AnySharedArray& any() noexcept { return any_; }
  operator const AnySharedArray&() const noexcept { return any_; }  // NOLINT: by design
  operator AnySharedArray&() noexcept { return any_; }              // NOLINT: by design

 private:
  static AnySharedArray attach_any(std::string_view handle) {
    if constexpr (std::is_const_v<T>) return AnySharedArray::attach_read_only(handle);
    else return AnySharedArray::attach(handle);
  }

  AnySharedArray any_;
  ArrayView<T> view_;
};

}  // namespace taskfarm
