// InputLines: the lines of --input-lines in one read-only shared segment, so that task i can
// read line i without the master sending it. The master creates (and removes) it; workers
// attach by handle (the segment name).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "taskfarm/shm_segment.hpp"

namespace taskfarm {

class InputLines {
 public:
  static InputLines create(const std::vector<std::string>& lines);
  static InputLines attach(const std::string& handle);

  std::string handle() const { return seg_.name(); }
  std::uint64_t size() const noexcept { return count_; }
  /// Line i without its newline. Throws Error if i is out of range.
  std::string_view line(std::uint64_t i) const;

 private:
  ShmSegment seg_;
  std::uint64_t count_ = 0;
  const std::uint64_t* offsets_ = nullptr;
  const char* text_ = nullptr;
};

}  // namespace taskfarm
