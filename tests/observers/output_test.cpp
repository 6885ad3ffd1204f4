// What the observers write: JSON strings escaped whatever the bytes, EventStream's whole lines
// covering every task of a call, a Trace that is a closed JSON array of whole records, and the
// progress line and the stall line. (The formats' fields are checked by parsing in tests/cli: runs.sh, trace.sh.)
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "json.hpp"
#include "taskfarm/event_stream.hpp"
#include "taskfarm/fanout_observer.hpp"
#include "taskfarm/pool.hpp"
#include "taskfarm/progress.hpp"
#include "taskfarm/trace.hpp"

namespace taskfarm {
namespace {

using detail::json_string;

TEST(Json, EscapesControlsQuotesAndBadUtf8) {
  EXPECT_EQ(json_string("plain"), "\"plain\"");
  EXPECT_EQ(json_string("a\"b\\c\nd\te\x01"), "\"a\\\"b\\\\c\\nd\\te\\u0001\"");
  EXPECT_EQ(json_string("caf\xc3\xa9 \xe2\x82\xac"), "\"caf\xc3\xa9 \xe2\x82\xac\"");  // valid UTF-8 kept
  EXPECT_EQ(json_string("\xff\xc3"), "\"\\ufffd\\ufffd\"");
  EXPECT_EQ(json_string("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate is not UTF-8
}

/// The number after `"key":` in `line`, or -1.
long long field(const std::string& line, const std::string& key) {
  const auto at = line.find("\"" + key + "\":");
  return at == std::string::npos ? -1 : std::stoll(line.substr(at + key.size() + 3));
}

TEST(EventStream, EveryLineIsOneWholeObjectAndTheChunksCoverTheCall) {
  std::vector<std::string> lines;
  EventStream events([&](std::string_view line) { lines.emplace_back(line); });
  PoolOptions o;
  o.workers = 2;
  o.chunk = 9;
  Pool pool(o);
  events.start(100, 100, 0, 2, "pool");
  CallOptions call;
  call.observer = &events;
  pool.for_each(100, [](std::uint64_t) {}, call);
  events.end(pool.last_report(), 0);
  ASSERT_GE(lines.size(), 3u);
  std::vector<int> covered(100, 0);
  for (const std::string& line : lines) {
    ASSERT_TRUE(line.starts_with("{\"event\":\"") && line.ends_with("}\n")) << line;
    EXPECT_EQ(line.find('\n'), line.size() - 1) << "one line per event: " << line;
    if (line.find("\"event\":\"chunk\"") == std::string::npos) continue;
    for (long long i = field(line, "begin"); i < field(line, "end"); ++i) ++covered[static_cast<std::size_t>(i)];
  }
  EXPECT_TRUE(lines.front().starts_with("{\"event\":\"start\""));
  EXPECT_TRUE(lines.back().starts_with("{\"event\":\"end\""));
  EXPECT_EQ(field(lines.back(), "succeeded"), 100);
  for (std::size_t i = 0; i < covered.size(); ++i) EXPECT_EQ(covered[i], 1) << "index " << i;
}

TEST(Trace, IsAClosedArrayOfWholeRecordsWithASlicePerPiece) {
  const std::string path = ::testing::TempDir() + "trace-" + std::to_string(::getpid()) + ".json";
  {
    Trace trace = Trace::create(path, "pool trace");
    PoolOptions o;
    o.workers = 2;
    o.chunk = 25;
    Pool pool(o);
    CallOptions call;
    call.observer = &trace;
    pool.for_each(100, [](std::uint64_t) {}, call);
    trace.finish();
  }
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::filesystem::remove(path);
  const std::string s = text.str();
  ASSERT_TRUE(s.starts_with("[\n{") && s.ends_with("}\n]\n")) << s;
  EXPECT_NE(s.find("\"args\":{\"name\":\"pool trace\"}"), std::string::npos);
  std::uint64_t sliced = 0;
  std::istringstream records(s);
  for (std::string line; std::getline(records, line);) {
    if (line == "[" || line == "]") continue;
    EXPECT_TRUE(line.starts_with("{") && (line.ends_with("},") || line.ends_with("}"))) << line;
    if (line.find("\"cat\":\"chunk\"") != std::string::npos)
      sliced += static_cast<std::uint64_t>(field(line, "end") - field(line, "begin"));
  }
  EXPECT_EQ(sliced, 100u) << "a slice per committed piece, covering every task once";
}

// Trace::create over a file of the user's (h11 F8): the file is replaced at finish(), by a trace
// written whole, and not at all by one a full disk cut (here: RLIMIT_FSIZE, SIGXFSZ ignored).
TEST(Trace, ReplacesAFileOfTheUsersOnlyWhenWrittenWhole) {
  const std::string dir = ::testing::TempDir() + "trace-user-" + std::to_string(::getpid());
  std::filesystem::create_directory(dir);
  const std::string path = dir + "/t.json";
  auto read = [](const std::string& p) {
    std::ifstream in(p);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  };
  auto keep = [&path] { std::ofstream(path) << "precious"; };
  TasksDone piece;
  piece.begin = 0;
  piece.end = 1;

  keep();
  {
    Trace trace = Trace::create(path, "t");
    trace.on_tasks_done(piece);
    EXPECT_EQ(read(path), "precious") << "replaced before the trace was whole";
    trace.finish();
  }
  const std::string whole = read(path);
  EXPECT_TRUE(whole.starts_with("[\n{") && whole.ends_with("}\n]\n")) << whole;

  keep();
  {
    Trace trace = Trace::create(path, "t");
    struct rlimit old {};
    ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &old), 0);
    const auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
    struct rlimit cap = old;
    cap.rlim_cur = 4096;
    ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &cap), 0);
    for (std::uint64_t i = 0; i < 1000 && !trace.write_failed(); ++i) {
      piece.begin = i;
      piece.end = i + 1;
      trace.on_tasks_done(piece);
    }
    ::setrlimit(RLIMIT_FSIZE, &old);
    std::signal(SIGXFSZ, old_handler);
    ASSERT_TRUE(trace.write_failed());
    EXPECT_THROW(trace.finish(), SystemError);
  }
  EXPECT_EQ(read(path), "precious") << "a cut trace replaced the user's file";
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    names.push_back(e.path().filename().string());
  EXPECT_EQ(names, std::vector<std::string>{"t.json"}) << "a temporary file left";
  std::filesystem::remove_all(dir);
}

TEST(Progress, LineCountsDoneAndFailedTasks) {
  Progress progress(ProgressMode::lines, 10, -1);
  TasksDone piece;
  piece.begin = 0;
  piece.end = 6;
  const std::uint64_t failed[] = {2};
  piece.failed = failed;
  progress.on_tasks_done(piece);
  FailureRecord f;
  f.index = 2;
  f.final = true;
  progress.on_failure(f);
  const std::string line = progress.line(std::chrono::steady_clock::now());
  EXPECT_TRUE(line.starts_with("taskfarm: 6/10  60%")) << line;
  EXPECT_NE(line.find("1 failed"), std::string::npos) << line;
}

// The hostile test's F8: a total the caller got wrong drew "100/0 100%", a count that looks
// finished and right. It is said instead.
TEST(Progress, ATotalTooSmallIsSaidNotDrawnAsAFraction) {
  Progress progress(ProgressMode::bar, 0, -1);
  TasksDone piece;
  piece.begin = 0;
  piece.end = 100;
  progress.on_tasks_done(piece);
  const std::string line = progress.line(std::chrono::steady_clock::now());
  EXPECT_NE(line.find("] 100 done, more than the 0 tasks Progress was told"), std::string::npos) << line;
  EXPECT_EQ(line.find("100/0"), std::string::npos) << line;
}

// A streamed input (taskfarm run --exec from a pipe): the total grows while the run goes on, and
// until it is all no percentage or ETA pretends to know the end.
TEST(Progress, AnOpenTotalIsSaidSoFarUntilItIsAll) {
  Progress progress(ProgressMode::lines, 0, -1);
  progress.set_total(8, /*all=*/false);
  TasksDone piece;
  piece.begin = 0;
  piece.end = 4;
  progress.on_tasks_done(piece);
  std::string line = progress.line(std::chrono::steady_clock::now());
  EXPECT_TRUE(line.starts_with("taskfarm: 4/8+ so far")) << line;
  EXPECT_EQ(line.find('%'), std::string::npos) << line;
  EXPECT_EQ(line.find("ETA"), std::string::npos) << line;
  progress.set_total(10, /*all=*/true);
  line = progress.line(std::chrono::steady_clock::now());
  EXPECT_TRUE(line.starts_with("taskfarm: 4/10  40%")) << line;
}

// `taskfarm run --mpi`'s rank 0 ticks Progress without workers: who holds the run up there is a
// silent rank (outside pass F44), shown where a slow worker would be, until it is heard again.
TEST(Progress, NamesWhatHoldsTheRunUpWhereTheSlowestWorkerGoes) {
  Progress progress(ProgressMode::lines, 10, -1);
  progress.set_holdup("rank 2 (node7) silent for 0:05");
  std::string line = progress.line(std::chrono::steady_clock::now());
  EXPECT_TRUE(line.ends_with("0 failed  rank 2 (node7) silent for 0:05")) << line;
  progress.set_holdup("");
  line = progress.line(std::chrono::steady_clock::now());
  EXPECT_TRUE(line.ends_with("0 failed")) << line;
}

// A task that is a process of its own (an --exec command): when that process is stopped, not
// its worker, what holds the run up is said to be the command, with its pid (F42).
TEST(Progress, NamesTheStoppedCommandOfTheWorkerLongestWithoutProgress) {
  Progress progress(ProgressMode::lines, 10, -1);
  WorkerLiveness w;
  w.slot = 1;
  w.pid = 4122;
  w.busy = true;
  w.index = 7;
  w.since_progress = std::chrono::seconds(65);
  w.state = 'S';
  w.task_pid = 4130;
  w.task_state = 'T';
  FarmTick t;
  t.workers.push_back(w);
  progress.on_tick(t);
  const std::string line = progress.line(std::chrono::steady_clock::now());
  EXPECT_NE(line.find("  slot 1 on 7 for 1:05, its command (pid 4130) stopped"), std::string::npos) << line;
  // What the command started is stopped (the stall found it in the worker's process group).
  t.workers[0].task_state = 'S';
  t.workers[0].stopped_pid = 4131;
  progress.on_tick(t);
  const std::string grandchild = progress.line(std::chrono::steady_clock::now());
  EXPECT_NE(grandchild.find("  slot 1 on 7 for 1:05, pid 4131 of its process group stopped"), std::string::npos) << grandchild;
  // The run over, its last line names no stall that has ended (h11b).
  progress.finish();
  const std::string last = progress.line(std::chrono::steady_clock::now());
  EXPECT_EQ(last.find("slot 1"), std::string::npos) << last;
}

// What a task printed that is not UTF-8 (binary, Latin-1) became U+FFFD in `text`, the bytes
// lost (outside pass h12 F14): `bytes` carries them in base64 then; UTF-8 text has no `bytes`.
TEST(EventStream, OutputThatIsNotUtf8CarriesItsBytes) {
  std::vector<std::string> lines;
  EventStream events([&](std::string_view line) { lines.emplace_back(line); });
  const std::string binary("a\0b\xff\xfe" "c", 6), text = "caf\xc3\xa9\n";
  events.on_result(IndexResult{3, {}, std::span<const char>(binary.data(), binary.size())});
  events.on_result(IndexResult{4, {}, std::span<const char>(text.data(), text.size())});
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("text":"a\u0000b\ufffd\ufffdc","bytes":"YQBi//5j")"), std::string::npos) << lines[0];
  EXPECT_EQ(lines[1].find("bytes"), std::string::npos) << lines[1];
}

// So does a failure's stderr tail (a worker that wrote Latin-1 or binary before it died).
TEST(EventStream, StderrTailThatIsNotUtf8CarriesItsBytes) {
  std::vector<std::string> lines;
  EventStream events([&](std::string_view line) { lines.emplace_back(line); });
  FailureRecord f;
  f.cause = FailureCause::signal;
  f.index = 7;
  f.stderr_tail = std::string("a\0b\xff\xfe" "c", 6);
  events.on_failure(f);
  f.stderr_tail = "caf\xc3\xa9\n";
  events.on_failure(f);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_NE(lines[0].find(R"("stderr_tail":"a\u0000b\ufffd\ufffdc","stderr_tail_bytes":"YQBi//5j")"), std::string::npos)
      << lines[0];
  EXPECT_EQ(lines[1].find("stderr_tail_bytes"), std::string::npos) << lines[1];
}

TEST(EventStream, AStallCarriesTheProcessThatRunsTheTask) {
  std::vector<std::string> lines;
  EventStream events([&](std::string_view line) { lines.emplace_back(line); });
  WorkerLiveness w;
  w.slot = 0;
  w.pid = 4122;
  w.index = 5;
  w.state = 'S';
  events.on_stall(w);  // a C++ or Python kernel: no process of its own, the fields as before
  w.task_pid = 4130;
  w.task_state = 'T';
  events.on_stall(w);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0].find("task_"), std::string::npos) << lines[0];
  EXPECT_NE(lines[1].find(R"("pid":4122,"index":5,)"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find(R"("stopped":false,"task_pid":4130,"task_state":"T","task_stopped":true)"), std::string::npos)
      << lines[1];
  w.task_state = 'S';
  w.stopped_pid = 4131;
  events.on_stall(w);
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_NE(lines[2].find(R"("task_stopped":false,"stopped_pid":4131)"), std::string::npos) << lines[2];
}

// The stall line names the process that holds the task, and the kill -CONT that resumes the one
// that is stopped — the worker, its command, or both.
TEST(WorkerLiveness, StallLineNamesTheStoppedProcess) {
  WorkerLiveness w;
  w.slot = 0;
  w.pid = 4122;
  w.index = 5;
  w.since_progress = std::chrono::milliseconds(500);
  w.state = 'S';
  const std::string head = "slot 0 (pid 4122) has shown no progress for 0.5 s on task 5";
  EXPECT_EQ(w.describe_stall(""), head);  // no process of its own: as before
  w.task_pid = 4130;
  w.task_state = 'T';
  EXPECT_EQ(w.describe_stall("hint"), head + "; its command (pid 4130) is stopped (SIGSTOP?): kill -CONT 4130 resumes it; hint");
  w.task_state = 'S';
  EXPECT_EQ(w.describe_stall(""), head + "; its command is pid 4130");
  w.task_state = 'D';
  EXPECT_EQ(w.describe_stall(""), head + "; its command (pid 4130) is in uninterruptible sleep (disk or network I/O)");
  w.state = 'T';
  w.task_state = 'T';
  EXPECT_EQ(w.describe_stall(""), head + "; it and its command (pid 4130) are stopped (SIGSTOP?): kill -CONT 4122 4130 resumes them");
  w.task_state = 'R';
  EXPECT_EQ(w.describe_stall(""), head + "; it is stopped (SIGSTOP?): kill -CONT 4122 resumes it; its command is pid 4130");
  w.state = 'S';
  w.task_state = 'S';
  w.stopped_pid = 4131;  // what the command started
  EXPECT_EQ(w.describe_stall(""), head + "; its command is pid 4130; pid 4131 in its process group is stopped (SIGSTOP?): "
                                         "kill -CONT 4131 resumes it");
  // A tracing stop ('t': a debugger, or strace between two system calls) is not a stop that
  // kill -CONT ends: not said to be one (outside pass h12 F1).
  w.stopped_pid = 0;
  w.task_state = 't';
  EXPECT_FALSE(w.task_stopped());
  EXPECT_EQ(w.describe_stall(""), head + "; its command (pid 4130) is traced (a debugger or strace holds it at times; kill "
                                         "-CONT does not resume that)");
  w.task_state = 'S';
  w.stopped_pid = 4131;
  w.stopped_again = true;  // it was said stopped before, and ran since
  EXPECT_EQ(w.describe_stall("hint"), head + "; its command is pid 4130; pid 4131 in its process group is stopped (SIGSTOP?): "
                                             "kill -CONT 4131 resumes it; it ran and stopped again since the last line (a "
                                             "process reading /dev/tty from the background stops at every read: SIGTTIN); hint");
}

}  // namespace
}  // namespace taskfarm
