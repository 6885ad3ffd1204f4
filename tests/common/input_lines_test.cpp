// InputLines: a segment made whole, and one that grows while it is read (a streamed --exec
// input, docs/design.md §10): a reader sees a line only once the writer published it, finds it
// then without attaching again, and the writer stops at the segment's room instead of writing
// past it.
#include "taskfarm/input_lines.hpp"

#include <gtest/gtest.h>

#include "taskfarm/error.hpp"

namespace taskfarm {
namespace {

TEST(InputLines, AWholeTableReadsBackLineByLine) {
  LineTable t;
  for (const char* l : {"a", "", "long line"}) {
    t.append_text(l);
    t.end_line();
  }
  const InputLines in = InputLines::create(std::move(t));
  const InputLines r = InputLines::attach(in.handle());
  ASSERT_EQ(r.size(), 3u);
  EXPECT_EQ(r.line(0), "a");
  EXPECT_EQ(r.line(1), "");
  EXPECT_EQ(r.line(2), "long line");
  EXPECT_THROW((void)r.line(3), Error);
}

TEST(InputLines, AGrowingSegmentShowsALineOnlyOncePublished) {
  InputLines w = InputLines::create_growing(3, 16);
  const InputLines r = InputLines::attach(w.handle());  // attached while empty, as a worker is
  EXPECT_EQ(r.size(), 0u);
  ASSERT_TRUE(w.append_text("ab"));
  ASSERT_TRUE(w.append_text("c"));
  EXPECT_TRUE(w.open_line());
  ASSERT_TRUE(w.end_line());
  EXPECT_THROW((void)r.line(0), Error) << "ended but not published";
  w.publish();
  EXPECT_EQ(r.line(0), "abc") << "found by reading the count again";
  ASSERT_TRUE(w.end_line());  // an empty line
  ASSERT_TRUE(w.append_text("xyz"));
  ASSERT_TRUE(w.end_line());
  w.publish();
  EXPECT_EQ(r.line(1), "");
  EXPECT_EQ(r.line(2), "xyz");
  EXPECT_FALSE(w.end_line()) << "a fourth line: past the room of 3";
  EXPECT_TRUE(w.append_text("0123456789"));
  EXPECT_FALSE(w.append_text("0123")) << "past 16 bytes of text";
  EXPECT_EQ(w.text_written(), 16u);
  EXPECT_THROW((void)r.line(3), Error);
}

}  // namespace
}  // namespace taskfarm
