// The wire protocol's decoder against datagrams a faulty worker could send (common/src/
// protocol.cpp). fuzz/protocol_fuzz.cpp explores the rest; these are the cases it found.
#include "taskfarm/detail/protocol.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "taskfarm/serialize.hpp"

namespace taskfarm::proto {
namespace {

std::string encoded(const Message& m) {
  std::string bytes;
  encode(m, bytes);
  return bytes;
}

TEST(ProtocolTest, EveryMessageDecodesToItsOwnEncoding) {
  const Message messages[] = {Hello{42},
                              Job{1, "k", {3, 4}, "shm:f8:3x4:s", "", "", true, false, true},
                              Assign{1, {{7, 0, 12, 1, 1000}}},
                              Stop{},
                              Wake{},
                              Done{1, {{7, 5, 0, 16, 99, true}}},
                              TaskError{1, 7, 3, true, "std::bad_alloc", "out of memory", 0, 0, "", 0},
                              TaskError{1, 7, 4, false, "", "gzip -9 'a b'", 1, 0, "gzip: a b: No such file\n", 2500000},
                              TaskError{1, 7, 5, false, "", "sh -c 'kill -SEGV $$'", 0, 11, "", 7}};
  for (const Message& m : messages) {
    const std::string bytes = encoded(m);
    EXPECT_EQ(encoded(decode(bytes)), bytes) << message_name(m);
  }
}

// An Assign's and a Done's entries go as one block of bytes (protocol.cpp): the same bytes, field
// by field in declaration order, as each field written on its own (docs/protocol.md).
TEST(ProtocolTest, ChunkListsAreTheirFieldsInOrder) {
  auto field = [](std::string& out, const auto& v) { out.append(reinterpret_cast<const char*>(&v), sizeof v); };
  auto header = [&](std::uint16_t type) {
    std::string out;
    field(out, kMagic);
    field(out, kVersion);
    field(out, type);
    field(out, std::uint64_t{9});  // job_id
    field(out, std::uint64_t{2});  // entries
    return out;
  };
  const Assign a{9, {{7, 100, 112, 1, 0}, {8, 112, 113, 0, 5000}}};
  std::string want = header(2);
  for (const Chunk& c : a.chunks) field(want, c.id), field(want, c.begin), field(want, c.end), field(want, c.attempt), field(want, c.budget_ns);
  EXPECT_EQ(encoded(a), want);
  const auto back = std::get<Assign>(decode(want));
  ASSERT_EQ(back.chunks.size(), 2u);
  EXPECT_EQ(back.chunks[1].id, 8u);
  EXPECT_EQ(back.chunks[1].begin, 112u);
  EXPECT_EQ(back.chunks[1].end, 113u);
  EXPECT_EQ(back.chunks[1].attempt, 0u);
  EXPECT_EQ(back.chunks[1].budget_ns, 5000u);

  const Done d{9, {{7, 112, 4096, 24, 350, false, false}, {8, 112, 0, 0, 20, true, false}}};
  want = header(5);
  for (const ChunkDone& c : d.chunks) {
    field(want, c.chunk_id), field(want, c.upto), field(want, c.arena_pos), field(want, c.arena_len), field(want, c.elapsed_ns);
    field(want, static_cast<std::uint8_t>(c.returned)), field(want, static_cast<std::uint8_t>(c.carried));
  }
  EXPECT_EQ(encoded(d), want);
  const auto done = std::get<Done>(decode(want));
  ASSERT_EQ(done.chunks.size(), 2u);
  EXPECT_EQ(done.chunks[0].arena_pos, 4096u);
  EXPECT_EQ(done.chunks[0].arena_len, 24u);
  EXPECT_EQ(done.chunks[0].elapsed_ns, 350u);
  EXPECT_FALSE(done.chunks[0].returned);
  EXPECT_TRUE(done.chunks[1].returned);
  EXPECT_FALSE(done.chunks[1].carried);

  // A list whose entries end early is truncated, not read past its datagram.
  want.pop_back();
  EXPECT_THROW(decode(want), ProtocolError);
}

// A bool read straight from the wire could hold any byte: undefined behaviour wherever the
// master branches on it (a Done whose chunk is both returned and not).
TEST(ProtocolTest, FlagByteOtherThanZeroOrOneIsAProtocolError) {
  std::string done = encoded(Done{1, {{7, 12, 0, 0, 99, true, false}}});
  const std::size_t returned_at = done.size() - 2;  // `returned`, then `carried`: the last two
  ASSERT_EQ(done[returned_at], 1);
  ASSERT_EQ(done.back(), 0);
  done[returned_at] = 2;
  try {
    decode(done);
    FAIL() << "a flag byte of 2 was accepted";
  } catch (const ProtocolError& e) {
    EXPECT_NE(std::string(e.what()).find("neither 0 nor 1"), std::string::npos) << e.what();
  }

  std::string error = encoded(TaskError{1, 7, 3, true, "t", "w", 0, 0, "", 0});
  const std::size_t oom_at = 8 + 3 * 8;  // header, job_id, chunk_id, index
  ASSERT_EQ(error[oom_at], 1);
  error[oom_at] = static_cast<char>(0x80);
  EXPECT_THROW(decode(error), ProtocolError);
}

// A task's own process (a command per task) ended as a process can: an exit code of 1-255 or a
// signal of 1-64, never both. Anything else would reach a FailureRecord and a joblog row as a
// status no process can have.
TEST(ProtocolTest, TaskErrorStatusThatNoProcessCanHaveIsAProtocolError) {
  const TaskError bad[] = {{1, 7, 3, false, "", "c", 256, 0, "", 0},
                           {1, 7, 3, false, "", "c", -1, 0, "", 0},
                           {1, 7, 3, false, "", "c", 0, 65, "", 0},
                           {1, 7, 3, false, "", "c", 0, -9, "", 0},
                           {1, 7, 3, false, "", "c", 2, 9, "", 0}};
  for (const TaskError& e : bad) {
    const std::string bytes = encoded(e);
    EXPECT_THROW(decode(bytes), ProtocolError) << "exit " << e.exit_code << ", signal " << e.signal;
  }
  const auto ok = std::get<TaskError>(decode(encoded(TaskError{1, 7, 3, false, "", "c", 255, 0, "tail", 0})));
  EXPECT_EQ(ok.exit_code, 255);
  EXPECT_EQ(ok.stderr_tail, "tail");
}

// A result that is a number skips cereal's stream (serialize.hpp): its bytes must stay what
// cereal's binary archive writes, since either side may take either path (a worker's
// TaskContext::set_result, a master's deserialize of a struct holding it).
template <class T>
void expect_as_cereal(T v) {
  std::ostringstream os;
  {
    cereal::BinaryOutputArchive ar(os);
    ar(v);
  }
  std::string fast;
  detail::append_serialized(fast, v);
  EXPECT_EQ(fast, os.str());
  EXPECT_EQ(detail::deserialize<T>(fast), v);
  EXPECT_THROW(detail::deserialize<T>(std::span<const char>(fast.data(), fast.size() - 1)), cereal::Exception);
}

TEST(ResultBytes, NumbersAreCerealsEncodingAndShortInputThrows) {
  expect_as_cereal<std::uint64_t>(0x0123456789abcdefULL);
  expect_as_cereal<std::int8_t>(-3);
  expect_as_cereal<double>(-2.5e-300);
  expect_as_cereal<bool>(true);
  expect_as_cereal<char>('x');
}

}  // namespace
}  // namespace taskfarm::proto
