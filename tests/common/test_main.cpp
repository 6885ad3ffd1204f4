// main() of the common tests: one check around every test process that it left no shm segment
// of its own behind, and a note of its pid for the suite-wide check (check_segments.cmake).
#include <gtest/gtest.h>
#include <unistd.h>

#include "test_support.hpp"

namespace {

class NoSegmentLeftBehind : public ::testing::Environment {
 public:
  void SetUp() override { taskfarm::test::record_test_pid(::getpid()); }
  void TearDown() override {
    const auto left = taskfarm::test::segments_of(::getpid());
    EXPECT_TRUE(left.empty()) << "segments left in /dev/shm: " << ::testing::PrintToString(left);
  }
};

}  // namespace

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  ::testing::AddGlobalTestEnvironment(new NoSegmentLeftBehind);  // gtest takes ownership
  return RUN_ALL_TESTS();
}
