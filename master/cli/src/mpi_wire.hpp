// The socketpair between a rank's relay and its node master in `taskfarm run --mpi`
// (docs/design.md §17): SOCK_SEQPACKET, one message per datagram — a fixed Wire, followed for
// the text kinds (joblog rows, --events lines, --trace records, -k output, the node's failures
// at its end) by their text, split over
// several datagrams when long (a task's output in an "output" event has no bound). Used by both
// processes of a rank, each from its one thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace taskfarm::cli::mpi {

struct Wire {
  enum Kind : std::uint32_t { go, ranges, closed, more, report, rows, progress, events, trace, ended, data, output, failures, pulse };
  Kind kind = go;
  std::uint32_t count = 0;                ///< ranges: pairs in `v`; text kinds: bytes of text after the Wire
  /// ranges: [b, e) pairs; go: GoField; report: ReportField; progress: v[0] tasks succeeded,
  /// v[1] finally failed, so far (cumulative); text kinds: v[0] 1 if more of this text follows;
  /// data: v[0] the byte offset in the output's data of the `count` bytes after the Wire;
  /// pulse: v[0] the node's DoneFrontier::low() (mpi_watch.hpp)
  std::array<std::uint64_t, 2 * 32> v{};
};
/// A node's report: its RunReport's counts; r_error 1 if its farm could not finish (a farm
/// error, interrupted, an exception), r_stopped 1 if it stopped because a file of the run could
/// not be written (its --tmpdir full: exit 102, as on one machine), r_restored 1 if it wrote back
/// the --output .npy header a worker had written over (exit 103), r_halted 1 if --halt stopped it.
enum ReportField { r_tasks, r_succeeded, r_failed, r_retries, r_deaths, r_error, r_stopped, r_restored, r_halted, r_fields };
/// What rank 0's "go" asks of every node master: its joblog rows, its counts (--progress), its
/// --events lines, its --trace records, one `ended` at its first task that ended, and (--mpi-gather,
/// not rank 0's node) its output's bytes as `data` — its output, a node-local array of the dtype
/// and shape in go.v[kGoDtype...] — (--keep-order) its tasks' stdout as `output` (mpi_order.hpp),
/// and (--exec with inputs) its rows with their tasks' inputs fingerprint.
enum GoField { g_rows, g_progress, g_events, g_trace, g_ended, g_gather, g_order, g_inputs, g_stdin, g_fields };
/// With g_stdin (ranks but 0: plan again from standard input's copy), rank 0's Hello::tasks_hash
/// at v[kGoTasksHash], which the node's new plan must match.
constexpr std::size_t kGoTasksHash = 15;
/// --mpi-gather: in "go", the output's DType at v[kGoDtype], its ndim at v[kGoNdim], its extents
/// from v[kGoDims] (at most kGoMaxDims).
constexpr std::size_t kGoDtype = 16, kGoNdim = 17, kGoDims = 18, kGoMaxDims = 32;

/// The text kinds: whole lines (rows, events) or whole records (trace, output, failures: one
/// text per node, before its report, mpi_failures.hpp), sent as one text.
constexpr bool is_text(Wire::Kind k) {
  return k == Wire::rows || k == Wire::events || k == Wire::trace || k == Wire::output || k == Wire::failures;
}

/// Most bytes of text in one datagram (a longer text goes as several, joined again by recv_message).
constexpr std::size_t kMaxTextBytes = 32 * 1024;

struct Message {
  Wire wire;
  std::string text;  ///< text kinds: the whole text
};

/// Who is at the other end of this process's socket, for its errors ("…'s node master is gone"):
/// set once by each process of the rank right after the fork (a process has one such socket).
void name_peer(std::string peer);

void send_wire(int fd, const Wire& w);
/// Sends `text` of text kind `kind` in datagrams of at most kMaxTextBytes.
void send_text(int fd, Wire::Kind kind, std::string_view text);
/// Sends the output bytes `bytes`, at `offset` of its data, as `data` datagrams of at most
/// kMaxTextBytes each (each one whole: rank 0 writes each where it says).
void send_data(int fd, std::uint64_t offset, const char* bytes, std::size_t n);
/// Waits at most `ms` for a message (a text's later parts, sent back to back, at most 10 s
/// more); nullopt on none; throws Error when the other side is gone (naming it: name_peer).
std::optional<Message> recv_message(int fd, int ms);

/// What each rank tells rank 0 over MPI at the start (MPI_Gather): its node's name
/// ("HOST:RANK"), its -j, and a hash of what it read as the run's tasks (extent and input
/// lines), which must be rank 0's.
struct Hello {
  char host[64] = {};
  std::uint64_t workers = 0;
  std::uint64_t tasks_hash = 0;
};

}  // namespace taskfarm::cli::mpi
