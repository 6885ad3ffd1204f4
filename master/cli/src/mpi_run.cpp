// `taskfarm run --mpi` (docs/design.md §17). Per rank, two processes:
//  - the relay: this process. It forks the node master first, then calls MPI_Init, and from then
//    on only moves small messages between its socketpair and MPI. Rank 0's relay also hands out
//    ranges: a node asks when it runs low and gets the next slice of the run (fast nodes ask
//    more often), creates the --output file before any work goes out, and prints the summary.
//  - the node master: forked before MPI_Init, so that it may fork and exec its workers freely
//    (Open MPI does not support fork() after MPI_Init in a process it manages). It runs the
//    ordinary Farm with a RangeFeed over the socketpair, maps the --output .npy (a shared file)
//    and reports its RunReport's counts when its feed is closed and its work done (mpi_node.cpp).
// Rank 0 writes the run's one --joblog (every node's rows, each with its node), --trace (a
// process per node) and --events stream (every node's lines, each with its rank and host); a
// rank lost ends the job, and rank 0 says so, naming the ranks that did not answer (mpi_stop.cpp).
// Also: mpi_link.hpp (tags, the stop signal, rank 0's calls that give up after a stop),
// mpi_rank0.hpp (the hand-out and rank 0's records), mpi_summary.hpp (rank 0's last words).
#include "mpi_run.hpp"

#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "mpi_failures.hpp"
#include "mpi_gather.hpp"
#include "mpi_leak_check.hpp"
#include "mpi_node.hpp"
#include "mpi_order.hpp"
#include "mpi_stdin.hpp"
#include "mpi_summary.hpp"
#include "mpi_rank0.hpp"
#include "mpi_watch.hpp"
#include "mpi_wire.hpp"
#include "spool_dir.hpp"
#include "stdout_writer.hpp"
#include "summary.hpp"
#include "taskfarm/detail/write_out.hpp"
#include "taskfarm/error.hpp"
#include "taskfarm/progress.hpp"
#include "taskfarm/shared_array.hpp"

#ifdef TASKFARM_WITH_MPI
#include <mpi.h>

#include "mpi_link.hpp"
#include "mpi_stop.hpp"
#endif

namespace taskfarm::cli {

#ifndef TASKFARM_WITH_MPI
bool mpi_built() { return false; }
int run_mpi(RunPlan&, const std::string&, std::uint64_t, bool, const MpiStdin&) {
  throw Error("--mpi: this taskfarm was built without MPI");
}
#else
bool mpi_built() { return true; }

namespace {

using mpi::HandOut;
using mpi::Hello;
using mpi::Message;
using mpi::RankJoblog;
using mpi::RankTrace;
using mpi::Wire;
using namespace mpi;  // the tags and calls of mpi_link.hpp
}  // namespace

int run_mpi(RunPlan& plan, const std::string& output_path, std::uint64_t grain_option, bool gather, const MpiStdin& in) {
  std::uint64_t todo = 0;
  for (auto [b, e] : plan.todo.ranges) todo += e - b;
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) throw_errno("--mpi: socketpair");
  const std::uint64_t workers = static_cast<std::uint64_t>(std::max(1, plan.farm.workers));
  const std::uint64_t lines_hash = mpi::hash_lines(plan);
  std::cout.flush();
  const pid_t child = ::fork();
  if (child < 0) throw_errno("--mpi: fork");
  if (child == 0) {
    ::close(sv[0]);
    mpi::name_peer("this rank's relay (its MPI process)");
    ::_exit(mpi::node_main(plan, in.replan, output_path, sv[1], grain_option));
  }
  ::close(sv[1]);
  mpi::name_peer("this rank's node master (pid " + std::to_string(child) + ")");
  plan.lines.reset();  // the node master's now
  const int fd = sv[0];
  mpi::catch_stop_signals();

  mpi::check_leaks_now_not_at_exit();  // Open MPI keeps what it allocates from here on
  MPI_Init(nullptr, nullptr);
  int rank = 0, size = 1;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  const Hello me = mpi::hello(rank, plan, lines_hash);
  std::vector<Hello> hellos(rank == 0 ? static_cast<std::size_t>(size) : 0);
  MPI_Gather(&me, static_cast<int>(sizeof me), MPI_BYTE, hellos.data(), static_cast<int>(sizeof me), MPI_BYTE, 0,
             MPI_COMM_WORLD);
  // A grant its node may no longer read: having failed, it sent its report and exited meanwhile.
  // The socket's next read says so (the report, then its end); a failed send says nothing more.
  auto grant_to_node = [fd](const Wire& g) {
    try {
      mpi::send_wire(fd, g);
    } catch (const Error&) {
    }
  };
  int status = exit_ok;
  AnySharedArray output;
  CreatedFile created;  // rank 0: the new --output, removed if no task succeeded (as on one machine)
  std::optional<RankJoblog> joblog;
  std::optional<RankTrace> trace;
  std::optional<mpi::RankEvents> events;
  std::optional<mpi::FailureNames> failures;  // rank 0: every node's failed tasks, for the summary
  std::optional<mpi::GatherSink> gathered;  // rank 0, where a node gathers (or --mpi-gather)
  std::optional<mpi::Probe> probe;           // rank 0: do the other nodes see the output?
  // rank 0 with --keep-order: prints every node's output in task order
  StdoutWriter ordered_out([](int error) {
    if (error != EPIPE) std::cerr << "taskfarm: cannot write to standard output: " << std::strerror(error) << "\n";
  });
  std::optional<mpi::OrderedPrinter> printer;
  mpi::GatherShape gather_shape{};
  // rank 0 ready, then what it asks of every node (mpi::GoField)
  std::array<int, 1 + mpi::g_fields> start{1};
  if (rank == 0) {
    try {
      for (int r = 1; r < size && in.copy == nullptr; ++r)  // (from standard input: checked by each node)
        if (hellos[static_cast<std::size_t>(r)].tasks_hash != me.tasks_hash)
          throw Error("rank " + std::to_string(r) + " (" + hellos[static_cast<std::size_t>(r)].host +
                      ") read other tasks than rank 0: with --mpi every rank must read the same input files");
      // Made under temporary names, then put in place once all are made (as on one machine): a
      // failure leaves nothing behind. The output, a new file, before any node maps it.
      if (plan.output && !plan.output->reuse)
        output = AnySharedArray::create_npy(plan.output->path, plan.output->dtype, plan.output->shape,
                                            AnySharedArray::Publish::later);
      std::vector<std::string> hosts;
      for (const Hello& h : hellos) hosts.emplace_back(h.host);
      failures.emplace(hosts);
      if (!plan.joblog.empty()) joblog.emplace(plan, hosts);
      if (!plan.trace.empty()) trace.emplace(plan, hosts);
      if (output && !output.published()) {
        output.publish(AnySharedArray::OnExisting::refuse);
        created.arm(plan.output->path);
      }
      if (joblog) joblog->publish_if_new();
      if (trace) trace->publish_if_new();
      start[1 + mpi::g_rows] = joblog ? 1 : 0;
      start[1 + mpi::g_progress] = plan.progress != ProgressMode::off || plan.events ? 1 : 0;
      start[1 + mpi::g_events] = plan.events ? 1 : 0;
      start[1 + mpi::g_trace] = trace ? 1 : 0;
      start[1 + mpi::g_inputs] = joblog && plan.exec && plan.exec->joblog_inputs ? 1 : 0;
      if (plan.output) {  // (the sink kept only if some node gathers)
        gathered.emplace(plan.output->path);
        try {
          gather_shape = mpi::gather_shape(gathered->output());
        } catch (const Error&) {
          if (gather) throw;  // (without --mpi-gather, only a node that does not see the file needs it)
        }
        // (A directory rank 0 may not write in — a --resume into a writable output there — has
        // no probe: every node then maps the output, and one that cannot says --mpi-gather.)
        if (!gather) try {
            probe.emplace(plan.output->path);
          } catch (const Error&) {
          }
      }
      start[1 + mpi::g_gather] = gather ? 1 : 0;  // every node gathers
      if (plan.keep_order) {
        printer.emplace(plan.todo.ranges, plan.exec ? plan.exec->tmpdir : default_spool_parent(), ordered_out,
                        [&joblog](int from, std::string_view rows) {
                          if (joblog) joblog->write(from, rows);
                        });
        if (joblog) printer->expect_rows();  // a task printed whole only with its row here (F37)
        // mpirun SIGKILLs rank 0 ~1 s after its SIGTERM: a stdout that takes nothing (mpirun's
        // pty, a slow reader) must not keep rank 0 from saying why the job ends (F31).
        ordered_out.give_up_after_stop(&g_stop_signal, std::chrono::milliseconds(100));
        start[1 + mpi::g_order] = 1;
      }
      start[1 + mpi::g_ended] = trace && plan.claims.trace.existed() ? 1 : 0;  // (a joblog goes in place at its first row)
    } catch (const Error& e) {
      std::cerr << "taskfarm: " << e.what() << "\n";
      start[0] = 0;
    }
  }
  MPI_Bcast(start.data(), static_cast<int>(start.size()), MPI_INT, 0, MPI_COMM_WORLD);  // every node maps the output only once it exists
  // Standard input's copy from rank 0 to every other rank, with what rank 0 read as the run's tasks.
  std::uint64_t rank0_tasks = me.tasks_hash;
  if (start[0] && in.copy != nullptr) {
    std::array<std::uint64_t, 2> head{0, me.tasks_hash};
    std::string_view mine;
    if (rank == 0) head[0] = (mine = in.copy->bytes()).size();
    MPI_Bcast(head.data(), 2, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    rank0_tasks = head[1];
    char* at = rank == 0 ? const_cast<char*>(mine.data()) : in.copy->resize(head[0]);
    for (std::uint64_t done = 0; done < head[0];) {
      const std::uint64_t n = std::min<std::uint64_t>(head[0] - done, 1u << 30);
      MPI_Bcast(at + done, static_cast<int>(n), MPI_BYTE, 0, MPI_COMM_WORLD);
      done += n;
    }
  }
  // Each other node gathers if it does not see rank 0's probe beside the output (its file system
  // is not rank 0's), or with --mpi-gather; rank 0 keeps its sink if any node gathers.
  bool gathers = false;
  if (start[0] && !output_path.empty()) {
    std::uint64_t token = probe ? probe->token() : 0;
    MPI_Bcast(gather_shape.data(), static_cast<int>(gather_shape.size()), MPI_UINT64_T, 0, MPI_COMM_WORLD);
    MPI_Bcast(&token, 1, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    const int mine = rank != 0 && (start[1 + mpi::g_gather] != 0 ||
                                   (token != 0 && gather_shape[1] != 0 && !mpi::sees_probe(output_path, token)));
    int any = 0;
    MPI_Reduce(&mine, &any, 1, MPI_INT, MPI_MAX, 0, MPI_COMM_WORLD);
    gathers = mine != 0;
    probe.reset();
    if (rank == 0 && any == 0) gathered.reset();
  }
  if (rank == 0 && start[0] && plan.events) {  // its "start" before any node's line
    std::uint64_t all_workers = 0;
    for (const Hello& h : hellos) all_workers += h.workers;
    events.emplace(&g_stop_signal).start(plan, todo, all_workers);
  }
  const auto t0 = std::chrono::steady_clock::now();
  std::array<std::uint64_t, mpi::r_fields> total{};
  std::vector<char> reported(static_cast<std::size_t>(size), 0), stopping(static_cast<std::size_t>(size), 0);
  int reports = 0;
  bool own_reported = false;
  std::uint64_t requests = 0;
  std::chrono::steady_clock::duration serving{};  // rank 0: inside requests (the hand-out's cost)
  std::vector<char> inbox;  // rank 0: a text or data message from another rank
  // Rank 0's slices: 16 per worker of the whole job, now that the node count is known (every
  // node's -j taken as this one's); a node asks at half of its own estimate, made before MPI_Init.
  const std::uint64_t hand_grain =
      grain_option != 0 ? grain_option
                        : std::max<std::uint64_t>(1, std::min<std::uint64_t>(todo / (16 * workers * static_cast<std::uint64_t>(size)) + 1, 1u << 20));
  HandOut handout(plan.todo.ranges, hand_grain);
  // A joblog that cannot be written stops the run, as on one machine, and so does --halt on any
  // node: no range goes out after it (the ranges out finish; --resume runs the rest).
  auto next_grant = [&] {
    if ((!joblog || joblog->error().empty()) && total[mpi::r_halted] == 0 && (!printer || printer->error().empty()))
      return handout.next();
    Wire closed;
    closed.kind = Wire::closed;
    return closed;
  };
  // Rank 0's --progress: each node's counts so far come up; the progress sees their growth.
  Progress progress(rank == 0 ? plan.progress : ProgressMode::off, todo);
  std::vector<std::array<std::uint64_t, 2>> counted(static_cast<std::size_t>(size));
  auto add_counts = [&](int from, const std::uint64_t* v) {
    auto& c = counted[static_cast<std::size_t>(from)];
    if (v[0] > c[0]) {
      TasksDone t;
      t.end = v[0] - c[0];
      progress.on_tasks_done(t);
    }
    for (std::uint64_t k = c[1]; k < v[1]; ++k) {
      FailureRecord f;
      f.index = 0;
      f.final = true;
      progress.on_failure(f);
    }
    c = {std::max(c[0], v[0]), std::max(c[1], v[1])};
  };
  auto last_tick = std::chrono::steady_clock::now(), last_draw = last_tick;
  // Rank 0: every rank's last message, and what it holds (F44: a stopped rank is named).
  std::optional<mpi::RankWatch> watch;
  if (rank == 0) {
    std::vector<std::string> hosts;
    for (const Hello& h : hellos) hosts.emplace_back(h.host);
    watch.emplace(hosts, plan.farm.stall_warning, t0);
  }
  auto grant_watched = [&](int to) {
    Wire g = next_grant();
    if (g.kind == Wire::ranges) watch->granted(to, g.v[0], g.v[1]);
    return g;
  };
  auto add_report = [&](int from, const std::uint64_t* v) {
    if (watch) watch->reported(from);
    for (int k = 0; k < mpi::r_fields; ++k) total[static_cast<std::size_t>(k)] += v[k];
    reported[static_cast<std::size_t>(from)] = 1;
    ++reports;
  };
  // Rank 0: a node's text (joblog rows, --events lines, --trace records) into its file or stream.
  auto deliver = [&](int from, Wire::Kind kind, std::string_view t) {
    if (kind == Wire::rows && joblog) {
      if (printer) printer->rows(from, t);  // a row waits for its task's output
      // A node sends a task's --events lines before its row: once rank 0's events stream gave
      // up on its stdout, a row may be of a task whose output events did not get out (F36).
      else if (!events || !events->gave_up()) joblog->write(from, t);
    }
    if (kind == Wire::output && printer) printer->take(t);
    if (kind == Wire::events && events) events->write(t);
    if (kind == Wire::trace && trace) trace->append(t);
    if (kind == Wire::failures && failures) try {
        failures->add(from, t);
      } catch (const Error& e) {
        std::cerr << "taskfarm: rank " << from << ": " << e.what() << "\n";
      }
  };
  // Rank 0: a task ended on some node; a trace replacing a user's file may go in place.
  auto task_ended = [&] {
    if (trace) trace->task_ended();
  };
  // One MPI message, if any is there: rank 0 serves requests and takes texts and reports; a
  // node relay passes grants down. Returns whether there was one.
  auto serve_mpi = [&] {
    int flag = 0;
    MPI_Status st;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return false;
    const int from = st.MPI_SOURCE;
    if (watch) watch->heard(from, std::chrono::steady_clock::now());
    if (st.MPI_TAG == kTagMore) {
      const auto t = std::chrono::steady_clock::now();
      char c;
      MPI_Recv(&c, 1, MPI_CHAR, from, kTagMore, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      ++requests;
      send_grant_unless_stopped(grant_watched(from), from);
      serving += std::chrono::steady_clock::now() - t;
    } else if (st.MPI_TAG == kTagGrant) {
      Wire g;
      MPI_Recv(&g, static_cast<int>(sizeof g), MPI_BYTE, 0, kTagGrant, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      if (!own_reported) grant_to_node(g);
    } else if (st.MPI_TAG == kTagReport) {
      std::array<std::uint64_t, mpi::r_fields> v{};
      MPI_Recv(v.data(), mpi::r_fields, MPI_UINT64_T, from, kTagReport, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      add_report(from, v.data());
    } else if (st.MPI_TAG == kTagProgress) {
      std::array<std::uint64_t, 2> v{};
      MPI_Recv(v.data(), 2, MPI_UINT64_T, from, kTagProgress, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      add_counts(from, v.data());
    } else if (st.MPI_TAG == kTagRows || st.MPI_TAG == kTagEvents || st.MPI_TAG == kTagTrace || st.MPI_TAG == kTagOutput ||
               st.MPI_TAG == kTagFailures) {
      int n = 0;
      MPI_Get_count(&st, MPI_CHAR, &n);
      if (receive_unless_stopped(inbox, n, MPI_CHAR, from, st.MPI_TAG))
        deliver(from, kind_of(st.MPI_TAG), std::string_view(inbox.data(), inbox.size()));
    } else if (st.MPI_TAG == kTagData) {
      int n = 0;
      MPI_Get_count(&st, MPI_BYTE, &n);
      if (receive_unless_stopped(inbox, n, MPI_BYTE, from, kTagData) && gathered)
        gathered->write(from, inbox.data(), inbox.size());
    } else if (st.MPI_TAG == kTagPulse) {
      std::uint64_t low = 0;
      MPI_Recv(&low, 1, MPI_UINT64_T, from, kTagPulse, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      watch->done_below(from, low);
    } else if (st.MPI_TAG == kTagEnded) {
      char c;
      MPI_Recv(&c, 1, MPI_CHAR, from, kTagEnded, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      task_ended();
    } else {
      char c;
      MPI_Recv(&c, 1, MPI_CHAR, from, kTagStopping, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
      stopping[static_cast<std::size_t>(from)] = 1;
    }
    return true;
  };
  // What this rank's node master says: to rank 0's records, or up to rank 0.
  mpi::DataBatch data;  // --mpi-gather, ranks but 0: output bytes on their way to rank 0
  auto send_data = [&] {
    if (data.empty()) return;
    MPI_Send(data.message().data(), static_cast<int>(data.message().size()), MPI_BYTE, 0, kTagData, MPI_COMM_WORLD);
    data.clear();
  };
  auto from_node = [&](const Message& m) {
    const Wire::Kind k = m.wire.kind;
    if (k != Wire::data || !data.fits(m)) send_data();  // in order: a piece's bytes before its rows
    if (watch) watch->heard(0, std::chrono::steady_clock::now());
    if (k == Wire::more) {
      if (rank == 0) {
        const auto t = std::chrono::steady_clock::now();
        ++requests;
        grant_to_node(grant_watched(0));
        serving += std::chrono::steady_clock::now() - t;
      } else {
        char c = 0;
        MPI_Send(&c, 1, MPI_CHAR, 0, kTagMore, MPI_COMM_WORLD);
      }
    } else if (mpi::is_text(k)) {
      if (rank == 0) deliver(0, k, m.text);
      else MPI_Send(m.text.data(), static_cast<int>(m.text.size()), MPI_CHAR, 0, tag_of(k), MPI_COMM_WORLD);
    } else if (k == Wire::data) {
      if (rank != 0) data.add(m);  // (rank 0's own node writes the output itself)
    } else if (k == Wire::ended) {
      char c = 0;
      if (rank == 0) task_ended();
      else MPI_Send(&c, 1, MPI_CHAR, 0, kTagEnded, MPI_COMM_WORLD);
    } else if (k == Wire::progress) {
      if (rank == 0) add_counts(0, m.wire.v.data());
      else MPI_Send(m.wire.v.data(), 2, MPI_UINT64_T, 0, kTagProgress, MPI_COMM_WORLD);
    } else if (k == Wire::pulse) {
      if (rank == 0) watch->done_below(0, m.wire.v[0]);
      else MPI_Send(m.wire.v.data(), 1, MPI_UINT64_T, 0, kTagPulse, MPI_COMM_WORLD);
    } else if (k == Wire::report) {
      own_reported = true;
      if (rank == 0) add_report(0, m.wire.v.data());
      else MPI_Send(m.wire.v.data(), mpi::r_fields, MPI_UINT64_T, 0, kTagReport, MPI_COMM_WORLD);
    }
  };
  if (!start[0]) {
    // Rank 0 said why (bad input: exit 2 on every rank, as on one machine); every rank knows.
    Wire no;
    no.kind = Wire::closed;
    grant_to_node(no);  // its node master ends quietly
    ::close(fd);
    int child_status = 0;
    wait_child(child, child_status, 30'000);
    printer.reset();
    joblog.reset();
    trace.reset();
    MPI_Finalize();
    return rank == 0 ? exit_usage : exit_ok;  // a rank that fails first would make mpirun kill the others mid-exit
  }
  try {
    Wire go;
    go.kind = Wire::go;
    for (int k = 0; k < mpi::g_fields; ++k) go.v[static_cast<std::size_t>(k)] = static_cast<std::uint64_t>(start[1 + static_cast<std::size_t>(k)]);
    go.v[mpi::g_gather] = gathers ? 1 : 0;  // (rank 0's node writes into the output)
    if (in.copy != nullptr && rank != 0) {    // its node plans again from rank 0's standard input
      go.v[mpi::g_stdin] = 1;
      go.v[mpi::kGoTasksHash] = rank0_tasks;
    }
    if (gathers) mpi::put_gather_shape(go, gather_shape);
    mpi::send_wire(fd, go);
    while ((rank == 0 ? reports < size : !own_reported) && g_stop_signal == 0) {
      // Once its node has reported, it exits and its socket reads EOF: only MPI is left to watch.
      if (own_reported) ::poll(nullptr, 0, 1);
      else if (auto m = mpi::recv_message(fd, data.empty() ? 1 : 0)) from_node(*m);
      else send_data();  // nothing more at once
      while (serve_mpi()) {
      }
      if (rank == 0 && std::chrono::steady_clock::now() - last_tick >= std::chrono::milliseconds(20)) {
        // A rank silent while it holds tasks, said once per stall (F44), the bar cleared first.
        const auto now = std::chrono::steady_clock::now();
        for (const mpi::RankStall& s : watch->stalls(now)) {
          progress.clear();
          detail::write_best_effort(STDERR_FILENO, "taskfarm: " + s.describe() + "\n");
          if (events) events->write(s.event());
        }
        if (now - last_draw >= std::chrono::milliseconds(200)) {
          progress.set_holdup(watch->holdup(now));  // named where a slow worker is
          progress.on_tick(FarmTick{});  // it redraws on time (a line every 2 s, a bar 10 times a second)
          last_draw = now;
        }
        last_tick = now;
      }
    }
  } catch (const std::exception& e) {
    // Open MPI 4.1 cannot go on without a rank (no ULFM): end the whole job, with the reason.
    std::cerr << "taskfarm: rank " << rank << ": " << e.what() << "; ending the MPI job\n";
    ::close(fd);
    int child_status = 0;
    wait_child(child, child_status, 30'000);
    if (printer) printer->finish();  // what is done is printed, and its rows written
    printer.reset();
    if (trace) trace->finish();
    trace.reset();   // (an unpublished one's temporary file removed)
    joblog.reset();
    MPI_Abort(MPI_COMM_WORLD, exit_farm);
    return exit_farm;
  }
  // Rank 0, a run cut short: how far the joblog got, for the --resume.
  auto say_joblog_count = [&] { mpi::say_joblog_count(plan, joblog ? &*joblog : nullptr); };
  if (const int sig = g_stop_signal; sig != 0) {
    mpi::StopHooks hooks;
    hooks.from_node = from_node;
    hooks.serve_mpi = serve_mpi;
    hooks.say_ending = [&](const std::string& lost) {
      if (printer) printer->finish();  // what is done is printed, and its rows written
      std::cerr << "taskfarm: rank 0: the MPI job is ending (" << ::strsignal(sig) << ")"
                << (lost.empty() ? std::string() : "; lost: rank " + lost) << "\n";
      say_joblog_count();
      if (events)
        events->end(todo, counted, total, 128 + sig, "the MPI job is ending" + (lost.empty() ? std::string() : "; lost: rank " + lost),
                    std::chrono::steady_clock::now() - t0);
    };
    hooks.release = [&] {
      if (trace) trace->finish();
      printer.reset();  // the destructors do not run at _Exit: the spool and unpublished temporaries removed now
      trace.reset();
      joblog.reset();
      events.reset();
    };
    mpi::end_on_stop(sig, child, fd, rank, reported, stopping, hooks);
  }
  ::close(fd);  // the node master, if still waiting, sees its relay gone
  int child_status = 0;
  wait_child(child, child_status, 30'000);
  if (printer) printer->finish();
  // -k: rank 0's spool failed, or a stop signal came as it printed the last tasks (it gave up on
  // its stdout: the rows of what it did not print are unwritten, a --resume prints them)
  const bool lost_output = printer && (!printer->error().empty() || ordered_out.gave_up());
  // Tasks that succeeded on their node but whose output rank 0 lost (its --tmpdir full): not
  // printed, not recorded — not counted as succeeded either (F34).
  const std::uint64_t unprinted = printer ? std::min(printer->unprinted_ok(), total[mpi::r_succeeded]) : 0;
  printer.reset();
  if (rank == 0) progress.finish();
  if (rank == 0 && status == exit_ok) {
    mpi::RankTotals totals;
    totals.wall_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    totals.todo = todo;
    totals.ranks = size;
    totals.total = total;
    totals.unprinted = unprinted;
    totals.lost_output = lost_output;
    totals.requests = requests;
    totals.serving = serving;
    if (gathered) totals.gathered = gathered->bytes();
    status = mpi::say_summary(plan, totals, joblog ? &*joblog : nullptr, trace ? &*trace : nullptr,
                              failures ? &*failures : nullptr, created);
    if (events) events->end(todo, {}, total, status, "", std::chrono::steady_clock::now() - t0);
  }
  MPI_Finalize();
  return status;
}
#endif

}  // namespace taskfarm::cli
