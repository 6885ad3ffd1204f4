// Rank 0's printer of `taskfarm run --mpi --keep-order` (master/cli/src/mpi_order.cpp): records
// from several nodes, in any order and cut anywhere between records, come out in task order,
// each task whole; a joblog row waits for its task's output; a run cut short prints what is done
// and drops the rows of tasks never done; a node's relays send a task's row before its end.
// tests/mpi/ runs it end to end under mpirun.
#include "mpi_order.hpp"
#include "mpi_relay.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <sys/socket.h>
#include <sys/time.h>

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <future>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "taskfarm/error.hpp"
#include "file_text.hpp"
#include "taskfarm/unique_fd.hpp"

namespace taskfarm::cli::mpi {
namespace {

std::string contents(int fd) { return test::file_text(fd); }

std::string record(std::uint64_t index, std::uint32_t flags, const std::string& bytes) {
  std::string t;
  append_output_record(t, index, flags, bytes);
  return t;
}

struct MpiOrderedPrinter : ::testing::Test {
  UniqueFd fd{::memfd_create("stdout", MFD_CLOEXEC)};
  StdoutWriter out{nullptr, fd.get()};
  std::string parent = ::testing::TempDir();
  std::vector<std::string> rows;  // "RANK:ROWS"
  OrderedPrinter::WriteRows write_rows = [this](int rank, std::string_view r) {
    rows.push_back(std::to_string(rank) + ":" + std::string(r));
  };
  std::string printed() {
    out.flush();
    return contents(fd.get());
  }
  std::size_t spool_dirs() const {
    std::size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(parent))
      n += e.path().filename().string().rfind("taskfarm-" + std::to_string(::getpid()) + "-", 0) == 0;
    return n;
  }
};

TEST_F(MpiOrderedPrinter, TasksComeOutInOrderWholeWhateverOrderTheyArriveIn) {
  OrderedPrinter p({{0, 3}, {5, 7}}, parent, out, write_rows);
  EXPECT_EQ(spool_dirs(), 1u);
  // Task 5 done first, task 1 in two pieces around task 0's end, task 6 never printing.
  p.take(record(5, o_done | o_succeeded, "five\n") + record(1, 0, "one-a "));
  p.take(record(6, o_done | o_succeeded, ""));
  EXPECT_EQ(printed(), "");
  for (const auto& d : std::filesystem::directory_iterator(parent)) {
    if (d.path().filename().string().rfind("taskfarm-" + std::to_string(::getpid()) + "-", 0) == 0) {
      EXPECT_TRUE(std::filesystem::is_empty(d.path())) << "early tasks within the memory budget make no file";
    }
  }
  p.take(record(0, 0, "zero-a ") + record(0, o_done | o_succeeded, "zero-b\n"));
  EXPECT_EQ(printed(), "zero-a zero-b\none-a ");  // task 1 is next: what came of it is out
  p.take(record(2, o_done, "two (failed)\n"));
  p.take(record(1, o_done | o_succeeded, "one-b\n"));
  EXPECT_EQ(printed(), "zero-a zero-b\none-a one-b\ntwo (failed)\nfive\n");
  p.finish();
  EXPECT_EQ(printed(), "zero-a zero-b\none-a one-b\ntwo (failed)\nfive\n");
}

TEST_F(MpiOrderedPrinter, ARowWaitsUntilItsTaskIsPrinted) {
  OrderedPrinter p({{0, 4}}, parent, out, write_rows);
  p.rows(1, "2\tok from rank 1\n1\tretried\n");
  p.rows(0, "0\tok\n");
  EXPECT_TRUE(rows.empty());
  p.take(record(2, o_done | o_succeeded, "2\n") + record(1, o_done | o_succeeded, "1\n"));
  EXPECT_TRUE(rows.empty()) << "task 0 is not out yet";
  p.take(record(0, o_done | o_succeeded, "0\n"));
  EXPECT_EQ(printed(), "0\n1\n2\n");
  EXPECT_EQ(rows, (std::vector<std::string>{"0:0\tok\n", "1:1\tretried\n2\tok from rank 1\n"})) << "a write per rank's run of rows";
  p.rows(1, "1\tok, late\n");  // a row of a task already out is written at once
  EXPECT_EQ(rows.back(), "1:1\tok, late\n");
}

// A joblog row as a node makes it (index, slot, pid, start, runtime, attempt, outcome, ...).
std::string row(std::uint64_t index, const std::string& outcome) {
  return std::to_string(index) + "\t0\t100\t1.5\t0.1\t" + (outcome == "retried" ? "1" : "2") + "\t" + outcome + "\t1\t0\n";
}

// Outside pass F37: with a joblog, a task's output is printed whole only once its final row is
// at rank 0 — a row that died with its rank after the output was printed made the --resume
// print the task again. The end of a task (its done record) waits for its row; a retried row
// is not its final one.
TEST_F(MpiOrderedPrinter, WithAJoblogATaskEndsOnlyOnceItsFinalRowIsHere) {
  OrderedPrinter p({{0, 3}}, parent, out, write_rows);
  p.expect_rows();
  p.take(record(1, o_done | o_succeeded, "one\n"));
  p.take(record(0, 0, "zero\n") + record(0, o_done | o_succeeded, ""));
  EXPECT_EQ(printed(), "zero\n") << "the piece of the task waited for goes straight through, but task 0 is not done";
  p.rows(0, row(0, "retried"));
  EXPECT_EQ(printed(), "zero\n") << "a retried row is not task 0's last";
  EXPECT_TRUE(rows.empty());
  p.rows(0, row(0, "ok"));
  EXPECT_EQ(printed(), "zero\n") << "task 0 done; task 1's end still waits for its row";
  EXPECT_EQ(rows, (std::vector<std::string>{"0:" + row(0, "retried") + row(0, "ok")}));
  p.rows(1, row(1, "failed") + row(2, "ok"));
  EXPECT_EQ(printed(), "zero\none\n");
  EXPECT_EQ(rows.back(), "1:" + row(1, "failed"));
  p.take(record(2, o_done | o_succeeded, "two\n"));  // its row came first (as a node sends it)
  EXPECT_EQ(printed(), "zero\none\ntwo\n");
  EXPECT_EQ(rows.back(), "1:" + row(2, "ok"));
}

TEST_F(MpiOrderedPrinter, WithAJoblogATaskWhoseRowNeverCameIsNotPrinted) {
  OrderedPrinter p({{0, 4}}, parent, out, write_rows);
  p.expect_rows();
  // Tasks 0 and 2 ended on a rank lost before their rows were sent; task 1's row came.
  p.take(record(0, o_done | o_succeeded, "zero\n") + record(2, o_done | o_succeeded, "two\n"));
  p.rows(1, row(1, "ok"));
  p.take(record(1, o_done | o_succeeded, "one\n"));
  EXPECT_EQ(printed(), "") << "task 0 is not done without its row";
  p.finish();
  EXPECT_EQ(printed(), "one\n") << "only the task whose row came is printed: a --resume runs 0 and 2";
  EXPECT_EQ(rows, (std::vector<std::string>{"1:" + row(1, "ok")}));
  EXPECT_EQ(p.unprinted_ok(), 2u);
}

TEST_F(MpiOrderedPrinter, ARunCutShortPrintsWhatIsDoneAndDropsTheRowsOfTasksNeverDone) {
  auto p = std::make_unique<OrderedPrinter>(std::vector<IndexRange>{{0, 5}}, parent, out, write_rows);
  p->take(record(0, 0, "zero, cut\n") + record(2, o_done | o_succeeded, "two\n") + record(3, 0, "three, cut\n") +
          record(4, o_done | o_succeeded, "four\n"));
  p->rows(0, "2\tok\n3\tretried\n4\tok\n");
  p->finish();  // task 0's node was lost while it ran; task 1 never came; task 3's node lost too
  EXPECT_EQ(printed(), "zero, cut\ntwo\nfour\n");
  EXPECT_EQ(rows, (std::vector<std::string>{"0:2\tok\n4\tok\n"}));
  p.reset();
  EXPECT_EQ(spool_dirs(), 0u) << "the spool directory is removed with the printer";
}

// F41: a task cut mid-line by its lost node ends its line on stdout, so the tasks printed after
// it (held behind it) do not start on the PARTIAL line — whether it came straight through, or
// was held early in memory or on disk and printed when its turn came.
TEST_F(MpiOrderedPrinter, APartialTaskCutMidLineEndsItsLine) {
  for (const std::size_t budget : {std::size_t{64} << 20, std::size_t{0}}) {
    SCOPED_TRACE("memory budget " + std::to_string(budget));
    ASSERT_EQ(::ftruncate(fd.get(), 0), 0);
    ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    OrderedPrinter straight({{0, 3}}, parent, out, write_rows, budget);
    straight.take(record(0, 0, "zero, cut mid") + record(1, o_done | o_succeeded, "one\n"));
    straight.finish();
    EXPECT_EQ(printed(), "zero, cut mid\none\n");
    ASSERT_EQ(::ftruncate(fd.get(), 0), 0);
    ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    OrderedPrinter held({{0, 4}}, parent, out, write_rows, budget);
    held.take(record(1, 0, "one, cut") + record(2, o_done | o_succeeded, "two\n"));  // early: held
    held.take(record(0, o_done | o_succeeded, "zero\n"));  // 1 printed as far as it came
    held.finish();
    EXPECT_EQ(printed(), "zero\none, cut\ntwo\n");
    ASSERT_EQ(::ftruncate(fd.get(), 0), 0);
    ASSERT_EQ(::lseek(fd.get(), 0, SEEK_SET), 0);
    OrderedPrinter whole_line({{0, 2}}, parent, out, write_rows, budget);
    whole_line.take(record(0, 0, "zero, cut after its line\n") + record(1, o_done | o_succeeded, "one\n"));
    whole_line.finish();
    EXPECT_EQ(printed(), "zero, cut after its line\none\n") << "no empty line added";
  }
}

// A full --tmpdir (here: a file size limit) when a task that came early is spooled: its output
// is lost — never printed, its rows never written, nothing after it printed — and said.
TEST_F(MpiOrderedPrinter, ATaskThatCannotBeSpooledIsLostAndStopsThePrintingThere) {
  OrderedPrinter p({{0, 4}}, parent, out, write_rows, /*memory_budget=*/0);  // every early task on disk
  struct sigaction ignore {}, was {};
  ignore.sa_handler = SIG_IGN;
  ASSERT_EQ(::sigaction(SIGXFSZ, &ignore, &was), 0);
  rlimit limit{}, before{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &before), 0);
  limit = before;
  limit.rlim_cur = 64;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &limit), 0);
  p.take(record(1, o_done | o_succeeded, "one\n") + record(2, o_done | o_succeeded, std::string(100, 'x')) +
         record(3, o_done | o_succeeded, "three\n"));
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &before), 0);
  ASSERT_EQ(::sigaction(SIGXFSZ, &was, nullptr), 0);
  EXPECT_NE(p.error().find("2.out"), std::string::npos) << p.error();
  p.rows(0, "1\tok\n2\tok\n3\tok\n");
  p.take(record(0, o_done | o_succeeded, "zero\n"));
  EXPECT_EQ(printed(), "zero\none\n") << "printing stops at the lost task";
  p.finish();
  EXPECT_EQ(printed(), "zero\none\n") << "nothing after a lost task is printed, even at the end";
  EXPECT_EQ(rows, (std::vector<std::string>{"0:1\tok\n"})) << "only printed tasks' rows";
  EXPECT_EQ(p.unprinted_ok(), 2u) << "tasks 2 (lost) and 3 (behind it) succeeded unprinted: not counted done (F34)";
}

// F31: when the MPI job must end (mpirun SIGKILLs rank 0 ~1 s after its SIGTERM), a standard
// output that takes nothing (here a pipe nobody reads) does not hold rank 0: the printer gives up
// within the writer's patience, names the task it stopped in as PARTIAL, prints nothing after it
// and writes no row of a task not wholly out (a --resume runs them).
TEST_F(MpiOrderedPrinter, AStdoutNobodyReadsIsGivenUpOnOnceTheJobMustEnd) {
  int pipe_fds[2];
  ASSERT_EQ(::pipe2(pipe_fds, O_CLOEXEC), 0);
  UniqueFd reader(pipe_fds[0]), writer(pipe_fds[1]);
  StdoutWriter to_pipe(nullptr, writer.get());
  static volatile std::sig_atomic_t stop = 0;  // (what the relay's signal handler sets)
  stop = 0;
  to_pipe.give_up_after_stop(&stop, std::chrono::milliseconds(100));
  OrderedPrinter p({{0, 4}}, parent, to_pipe, write_rows);
  p.take(record(0, o_done | o_succeeded, "zero\n"));
  p.rows(0, "0\tok\n1\tok\n2\tok\n");
  const int capacity = ::fcntl(writer.get(), F_GETPIPE_SZ);
  ASSERT_GT(capacity, 0);
  // Task 1 prints more than the pipe holds; the stop comes while the printer waits on it.
  auto printing = std::async(std::launch::async, [&] {
    p.take(record(1, o_done | o_succeeded, std::string(4 * static_cast<std::size_t>(capacity), '1')) +
           record(2, o_done | o_succeeded, "two\n"));
  });
  struct Unblock {  // on any way out: the stop, and the pipe read until the printer returns
    std::future<void>& printing;
    int reader;
    ~Unblock() {
      stop = SIGTERM;
      ::fcntl(reader, F_SETFL, O_NONBLOCK);
      std::vector<char> sink(1 << 16);
      for (int i = 0; i < 10000 && printing.wait_for(std::chrono::milliseconds(1)) != std::future_status::ready; ++i)
        (void)!::read(reader, sink.data(), sink.size());
    }
  } unblock{printing, reader.get()};
  bool full = false;
  for (int i = 0; i < 5000 && !full; ++i) {  // bounded: until the pipe takes no more
    pollfd w{writer.get(), POLLOUT, 0};
    full = ::poll(&w, 1, 0) == 0;
    if (!full) ::poll(nullptr, 0, 1);
  }
  ASSERT_TRUE(full) << "the printer never filled the pipe";
  const auto t_stop = std::chrono::steady_clock::now();
  stop = SIGTERM;
  ASSERT_EQ(printing.wait_for(std::chrono::seconds(5)), std::future_status::ready)
      << "the printer still waited on its standard output 5 s after the stop";
  EXPECT_LT(std::chrono::steady_clock::now() - t_stop, std::chrono::milliseconds(900)) << "not before mpirun's SIGKILL";
  ::testing::internal::CaptureStderr();
  p.finish();
  const std::string said = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(said.find("the output of index 1 is PARTIAL"), std::string::npos) << said;
  EXPECT_EQ(rows, (std::vector<std::string>{"0:0\tok\n"})) << "no row of a task not wholly out";
  ASSERT_EQ(::fcntl(reader.get(), F_SETFL, O_NONBLOCK), 0);
  std::string piped(8 * static_cast<std::size_t>(capacity), '\0');
  const ssize_t got = ::read(reader.get(), piped.data(), piped.size());
  ASSERT_GT(got, 0);
  piped.resize(static_cast<std::size_t>(got));
  EXPECT_EQ(piped, "zero\n" + std::string(piped.size() - 5, '1')) << "task 0, then what the pipe took of task 1, nothing else";
  EXPECT_LT(piped.size(), 5u + 4 * static_cast<std::size_t>(capacity));
}

// Early output in memory up to the budget, on disk beyond (a task that passes it goes there
// whole): either way each task comes out whole and in order, and the spool is left empty.
TEST_F(MpiOrderedPrinter, EarlyTasksPastTheMemoryBudgetWaitOnDiskAndComeOutTheSame) {
  OrderedPrinter p({{0, 5}}, parent, out, write_rows, /*memory_budget=*/8);
  p.take(record(1, 0, "one-a ") + record(2, o_done | o_succeeded, "two\n") + record(1, o_done | o_succeeded, "one-b\n") +
         record(3, o_done | o_succeeded, std::string(20, 'x') + "\n") + record(4, o_done | o_succeeded, "4\n"));
  std::size_t files = 0;
  for (const auto& d : std::filesystem::directory_iterator(parent))
    if (d.path().filename().string().rfind("taskfarm-" + std::to_string(::getpid()) + "-", 0) == 0)
      for ([[maybe_unused]] const auto& f : std::filesystem::directory_iterator(d.path())) ++files;
  EXPECT_GE(files, 2u) << "tasks past the 8-byte budget wait in files";
  p.take(record(0, o_done | o_succeeded, "zero\n"));
  EXPECT_EQ(printed(), "zero\none-a one-b\ntwo\n" + std::string(20, 'x') + "\n4\n");
  for (const auto& d : std::filesystem::directory_iterator(parent)) {
    if (d.path().filename().string().rfind("taskfarm-" + std::to_string(::getpid()) + "-", 0) == 0) {
      EXPECT_TRUE(std::filesystem::is_empty(d.path())) << "a printed task's file is removed";
    }
  }
}

TEST_F(MpiOrderedPrinter, ACutRecordIsAnError) {
  OrderedPrinter p({{0, 2}}, parent, out, write_rows);
  const std::string r = record(0, o_done, "zero\n");
  EXPECT_THROW(p.take(r.substr(0, r.size() - 1)), Error);
  EXPECT_THROW(p.take(r.substr(0, 5)), Error);
}

// F37, the node's side: under -k with a joblog, the record that says a task is done reaches
// rank 0 after the task's final row — the relay passes the node's messages on in order, so rank 0
// never waits on a row a lost rank took with it. Here a worker program's result big enough to be
// sent at once (16 KiB) once went out before its row existed.
TEST(MpiNodeRelays, ATasksEndGoesUpAfterItsRow) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd node(sv[0]), relay(sv[1]);
  RowRelay rows(node.get());
  OutputRelay output(node.get(), /*exec=*/false);
  output.send_after(rows);
  const std::string big(20 * 1024, 'x');
  auto observe = [&](auto&& call) {  // as the node's fanout: rows first, then the output
    call(static_cast<FarmObserver&>(rows));
    call(static_cast<FarmObserver&>(output));
  };
  const auto now = std::chrono::steady_clock::now();
  observe([&](FarmObserver& o) { o.on_result(IndexResult{0, {}, std::span<const char>(big.data(), big.size())}); });
  observe([&](FarmObserver& o) { o.on_result(IndexResult{1, {}, std::span<const char>(big.data(), 5)}); });
  TasksDone t{0, 100, 0, 2, 0, {}, now, now};
  observe([&](FarmObserver& o) { o.on_tasks_done(t); });
  FailureRecord retried, failed;
  retried.index = failed.index = 2;
  failed.final = true;
  observe([&](FarmObserver& o) { o.on_failure(retried); });
  observe([&](FarmObserver& o) { o.on_failure(failed); });
  output.flush();  // the node's end: the output relay first (mpi_node.cpp)
  rows.flush();
  std::set<std::uint64_t> with_row, ended;
  std::string out_text;
  while (auto m = recv_message(relay.get(), 0)) {
    if (m->wire.kind == Wire::rows) {
      std::istringstream lines(m->text);
      for (std::string line; std::getline(lines, line);) {
        std::istringstream columns(line);
        std::string column, outcome;
        for (int k = 0; k <= 6 && std::getline(columns, column, '\t'); ++k) outcome = column;
        if (outcome != "retried") with_row.insert(std::stoull(line));  // (a retried row is not the task's last)
      }
      continue;
    }
    ASSERT_EQ(m->wire.kind, Wire::output);
    out_text += m->text;
    for (std::string_view text = m->text; !text.empty();) {
      std::uint64_t index = 0;
      std::uint32_t flags = 0, bytes = 0;
      ASSERT_GE(text.size(), 16u);
      std::memcpy(&index, text.data(), 8);
      std::memcpy(&flags, text.data() + 8, 4);
      std::memcpy(&bytes, text.data() + 12, 4);
      text.remove_prefix(16 + bytes);
      if ((flags & o_done) == 0) continue;
      EXPECT_EQ(with_row.count(index), 1u) << "task " << index << "'s end went up before its final row";
      ended.insert(index);
    }
  }
  EXPECT_EQ(ended, (std::set<std::uint64_t>{0, 1, 2}));
  // Rank 0's printer makes of it what a node sent: both outputs, whole, in order.
  UniqueFd fd{::memfd_create("stdout", MFD_CLOEXEC)};
  StdoutWriter out{nullptr, fd.get()};
  OrderedPrinter p({{0, 3}}, ::testing::TempDir(), out, [](int, std::string_view) {});
  p.take(out_text);
  p.finish();
  out.flush();
  EXPECT_EQ(contents(fd.get()), big + big.substr(0, 5));
}

// A stop signal that ends a send blocked on a full socket is said as the job ending, not as a
// broken socket ("Interrupted system call", outside pass F45). The timer's signal has a handler
// without SA_RESTART, as StopSignals' have; the send blocks until it comes (no sleep).
TEST(MpiWire, ASendEndedByAStopSignalSaysTheJobIsEnding) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv), 0);
  UniqueFd node(sv[0]), relay(sv[1]);
  Wire w;
  w.kind = Wire::report;
  const int flags = ::fcntl(node.get(), F_GETFL);
  ASSERT_EQ(::fcntl(node.get(), F_SETFL, flags | O_NONBLOCK), 0);
  while (::send(node.get(), &w, sizeof w, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof w)) {
  }
  ASSERT_EQ(errno, EAGAIN);  // full: the next blocking send waits
  ASSERT_EQ(::fcntl(node.get(), F_SETFL, flags), 0);
  struct sigaction sa {}, old {};
  sa.sa_handler = [](int) {};
  ASSERT_EQ(::sigaction(SIGALRM, &sa, &old), 0);
  itimerval t{};
  t.it_value.tv_usec = 50'000;
  ASSERT_EQ(::setitimer(ITIMER_REAL, &t, nullptr), 0);
  std::string what;
  try {
    name_peer("this rank's relay (its MPI process)");
    send_wire(node.get(), w);
  } catch (const Error& e) {
    what = e.what();
  }
  ::sigaction(SIGALRM, &old, nullptr);
  EXPECT_EQ(what, "--mpi: stopped by a signal while talking to this rank's relay (its MPI process) (the job is ending)");
}

}  // namespace
}  // namespace taskfarm::cli::mpi
