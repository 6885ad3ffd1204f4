// The wire protocol between master and worker: every message is one SOCK_SEQPACKET datagram
// holding a fixed header (magic, version, type) and a cereal binary body. Both sides use it;
// the master treats everything a worker sends as untrusted input (decode() validates sizes,
// magic, version and type, and never allocates more than the datagram could hold).
// See docs/protocol.md for every message and which process sends it.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "taskfarm/error.hpp"

namespace taskfarm::proto {

inline constexpr std::uint32_t kMagic = 0x4d524654;  // "TFRM" little-endian
inline constexpr std::uint16_t kVersion = 7;  // 5: TaskError::exit_code/signal/stderr_tail (a task's own process); 6: its runtime_ns; 7: the slot's delivering, last_chunk and task_pid
inline constexpr std::size_t kMaxMessage = 64 * 1024;  // largest datagram either side sends
inline constexpr std::size_t kMaxBatch = 1024;         // chunks per Assign / entries per Done
inline constexpr std::size_t kMaxText = 4096;          // strings in messages

/// Worker → master, first message: the worker is up and serving.
struct Hello {
  std::int32_t pid = 0;
};
/// Master → worker: the job the following chunks belong to.
struct Job {
  std::uint64_t job_id = 0;
  std::string kernel;
  std::vector<std::uint64_t> extent;
  std::string output_handle, input_handle, lines_handle;
  bool wants_result = false;
  bool capture_stdout = false;
  bool time_tasks = false;  // stamp task_started_ns per index (a task timeout is set)
};
struct Chunk {
  std::uint64_t id = 0, begin = 0, end = 0;
  std::uint32_t attempt = 0;
  /// 0: run all of it. Else stop at the first index boundary after this much time, commit
  /// what ran and hand the rest back (ChunkDone::returned): a probe of unknown task time.
  std::uint64_t budget_ns = 0;
};
/// Master → worker: run these chunks of job `job_id`, in order.
struct Assign {
  std::uint64_t job_id = 0;
  std::vector<Chunk> chunks;
};
/// Master → worker: finish and exit 0.
struct Stop {};
/// Master → worker: the result arena has room again.
struct Wake {};
/// Indices [previous upto (or chunk begin), upto) of chunk `chunk_id` are committed. A chunk
/// may be committed in several pieces (when its results fill the arena); it is complete when
/// upto == its end, or when `returned` says [upto, end) was not run (its budget was spent).
struct ChunkDone {
  std::uint64_t chunk_id = 0;
  std::uint64_t upto = 0;
  std::uint64_t arena_pos = 0, arena_len = 0;  // per-index records in the arena (0 len: none)
  std::uint64_t elapsed_ns = 0;
  bool returned = false;
  /// The records (arena_len bytes, arena_pos 0) are not in the arena but in a sealed memfd
  /// passed with this Done (SCM_RIGHTS): they are larger than the arena (docs/design.md §3).
  bool carried = false;
};
/// Worker → master: these chunk pieces are committed (their results are in place). A Done
/// with a carried entry has exactly that one entry and exactly one descriptor attached.
struct Done {
  std::uint64_t job_id = 0;
  std::vector<ChunkDone> chunks;
};
/// Worker → master: the kernel threw at `index`; the rest of the chunk goes on. When the task
/// is a process of its own (a command run per task, `taskfarm run --exec`) that exited non-zero
/// or was killed, `exit_code` (1-255) or `signal` (1-64) says how — at most one of them is set —
/// `what` names the command and `stderr_tail` holds the last of what it wrote to stderr.
struct TaskError {
  std::uint64_t job_id = 0, chunk_id = 0, index = 0;
  bool out_of_memory = false;
  std::string type, what;
  std::int32_t exit_code = 0, signal = 0;
  std::string stderr_tail;
  std::uint64_t runtime_ns = 0;  // how long the failed task ran, when the worker measured it (a process of its own)
};

using Message = std::variant<Hello, Job, Assign, Stop, Wake, Done, TaskError>;

/// A datagram that is not a valid message.
class ProtocolError : public Error {
 public:
  using Error::Error;
};

/// Encodes `m` into `out` (replacing its contents). Throws Error if it exceeds kMaxMessage.
void encode(const Message& m, std::string& out);
/// Decodes one datagram. Throws ProtocolError saying what is wrong.
Message decode(std::span<const char> datagram);
/// Throws ProtocolError unless `fds` is the number of descriptors `m` must come with: one for
/// a Done with a carried entry (then its only entry), none for anything else.
void check_attached(const Message& m, std::size_t fds);

std::string_view message_name(const Message& m) noexcept;

}  // namespace taskfarm::proto
