// The socketpair between a rank's relay and its node master in `taskfarm run --mpi`
// (docs/design.md §17): SOCK_SEQPACKET, one message per datagram — a fixed Wire, followed for
// `rows` by joblog rows as text. Used by both processes of a rank, each from its one thread.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace taskfarm::cli::mpi {

struct Wire {
  enum Kind : std::uint32_t { go, ranges, closed, more, report, rows, progress };
  Kind kind = go;
  std::uint32_t count = 0;                ///< ranges: pairs in `v`; rows: bytes of text after the Wire
  /// ranges: [b, e) pairs; go: v[0] send rows, v[1] send progress; report: ReportField;
  /// progress: v[0] tasks succeeded, v[1] finally failed, so far (cumulative)
  std::array<std::uint64_t, 2 * 32> v{};
};
enum ReportField { r_tasks, r_succeeded, r_failed, r_retries, r_deaths, r_error, r_fields };

/// Most bytes of rows in one datagram (a batch larger than this goes as several, at row ends).
constexpr std::size_t kMaxRowBytes = 32 * 1024;

struct Message {
  Wire wire;
  std::string rows;  ///< kind rows: whole lines of joblog text
};

void send_wire(int fd, const Wire& w);
/// Sends `rows` (whole lines) in datagrams of at most kMaxRowBytes, split at line ends.
void send_rows(int fd, std::string_view rows);
/// Waits at most `ms` for a datagram; nullopt on none; throws Error when the other side is gone.
std::optional<Message> recv_message(int fd, int ms);

}  // namespace taskfarm::cli::mpi
