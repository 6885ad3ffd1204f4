// Worker → master datagrams (common/src/protocol.cpp): the master decodes whatever a worker
// sends. Contract: decode() either throws ProtocolError or returns a message whose encoding is
// the datagram itself, byte for byte (the encoding is canonical, so anything else means a field
// was read wrongly, e.g. a bool byte that is neither 0 nor 1).
#include <string>
#include <type_traits>
#include <variant>

#include "fuzz_check.hpp"
#include "taskfarm/detail/protocol.hpp"

using namespace taskfarm;

namespace {

// Reads every bool of `m` as a value, the way the master branches on it: UBSan's bool check
// stops the fuzzer on a byte that is neither 0 nor 1 (re-encoding only copies the byte).
int count_flags(const proto::Message& m) {
  return std::visit(
      [](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        int n = 0;
        if constexpr (std::is_same_v<T, proto::Job>) {
          n = int{msg.wants_result} + int{msg.capture_stdout} + int{msg.time_tasks};
        } else if constexpr (std::is_same_v<T, proto::Done>) {
          for (const proto::ChunkDone& c : msg.chunks) n += int{c.returned};
        } else if constexpr (std::is_same_v<T, proto::TaskError>) {
          n = int{msg.out_of_memory};
        }
        return n;
      },
      m);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes = fuzz::as_text(data, size);
  if (bytes.size() > proto::kMaxMessage) return 0;  // the channel refuses these before decode()
  proto::Message m;
  try {
    m = proto::decode(bytes);
  } catch (const proto::ProtocolError&) {
    return 0;
  }
  fuzz::require(count_flags(m) >= 0, "flags read");
  std::string again;
  proto::encode(m, again);
  fuzz::require(again == bytes, "encode(decode(datagram)) == datagram");
  return 0;
}
