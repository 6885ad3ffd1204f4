#include "taskfarm/detail/protocol.hpp"

#include <cereal/archives/binary.hpp>
#include <algorithm>
#include <cstring>
#include <type_traits>

#include "taskfarm/serialize.hpp"

namespace taskfarm::proto {
namespace {

struct Header {
  std::uint32_t magic;
  std::uint16_t version;
  std::uint16_t type;  // index into Message
};
static_assert(sizeof(Header) == 8);

// Lengths read from the wire are checked before anything is allocated: a faulty worker must
// not make the master allocate gigabytes.
template <class Ar>
void load_size(Ar& ar, std::size_t& n, std::size_t max, const char* what) {
  cereal::size_type size = 0;
  ar(cereal::make_size_tag(size));
  if (size > max) throw ProtocolError(std::string(what) + " of " + std::to_string(size) + " entries exceeds the limit of " + std::to_string(max));
  n = static_cast<std::size_t>(size);
}

template <class Ar>
void io_string(Ar& ar, std::string& s) {
  if constexpr (Ar::is_loading::value) {
    std::size_t n = 0;
    load_size(ar, n, kMaxText, "string");
    s.resize(n);
    ar(cereal::binary_data(s.data(), n));
  } else {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(s.size())));
    ar(cereal::binary_data(s.data(), s.size()));
  }
}

// A bool travels as one byte, 0 or 1. Any other byte is refused: read straight into a bool it
// would be undefined behaviour wherever the master branches on it.
bool flag_of(std::uint8_t byte) {
  if (byte > 1) throw ProtocolError("flag byte " + std::to_string(byte) + " is neither 0 nor 1");
  return byte == 1;
}
template <class Ar>
void io_flag(Ar& ar, bool& b) {
  std::uint8_t byte = b ? 1 : 0;
  ar(byte);
  if constexpr (Ar::is_loading::value) b = flag_of(byte);
}

template <class Ar, class T, class F>
void io_vector(Ar& ar, std::vector<T>& v, std::size_t max, F&& each) {
  if constexpr (Ar::is_loading::value) {
    std::size_t n = 0;
    load_size(ar, n, max, "list");
    v.resize(n);
  } else {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(v.size())));
  }
  for (T& x : v) each(ar, x);
}

// An entry of an Assign or a Done travels as one block of bytes: what the archive would write
// field by field (each field raw, a bool as its one byte), built and read with memcpy in a
// buffer on the stack. Field by field, each field was a call through the stream — 7 per entry,
// ~900 for a Done of 128 single-index chunks — a third of the master's own time per trivial
// task, and a share of the worker's (docs/performance.md, session 10). One block per list
// instead needs a heap buffer, an allocation per message: measured, it made a warm
// program-mode call slower (likely a copy-on-write fault on its page after a fork-mode call).
template <class F>
constexpr void each_field(Chunk& c, F&& f) {
  f(c.id), f(c.begin), f(c.end), f(c.attempt), f(c.budget_ns);
}
template <class F>
constexpr void each_field(ChunkDone& c, F&& f) {
  f(c.chunk_id), f(c.upto), f(c.arena_pos), f(c.arena_len), f(c.elapsed_ns), f(c.returned), f(c.carried);
}
template <class T>
constexpr std::size_t entry_bytes() {
  T x{};
  std::size_t n = 0;
  each_field(x, [&n](const auto& field) { n += sizeof field; });
  return n;
}
// A field added to an entry changes the wire format: kVersion and docs/protocol.md with it.
static_assert(entry_bytes<Chunk>() == 36 && entry_bytes<ChunkDone>() == 42 && sizeof(bool) == 1);

// A list of at most `max` entries: its length, then each entry's bytes.
template <class Ar, class T>
void io_entries(Ar& ar, std::vector<T>& v, std::size_t max) {
  char entry[entry_bytes<T>()];
  if constexpr (Ar::is_loading::value) {
    std::size_t n = 0;
    load_size(ar, n, max, "list");
    v.resize(n);
    for (T& x : v) {
      ar(cereal::binary_data(entry, sizeof entry));
      const char* p = entry;
      each_field(x, [&p](auto& field) {
        if constexpr (std::is_same_v<std::remove_reference_t<decltype(field)>, bool>) {
          field = flag_of(static_cast<std::uint8_t>(*p));
        } else {
          std::memcpy(&field, p, sizeof field);
        }
        p += sizeof field;
      });
    }
  } else {
    ar(cereal::make_size_tag(static_cast<cereal::size_type>(v.size())));
    for (T& x : v) {
      char* p = entry;
      each_field(x, [&p](const auto& field) {
        std::memcpy(p, &field, sizeof field);  // a bool's object representation is 0 or 1
        p += sizeof field;
      });
      ar(cereal::binary_data(entry, sizeof entry));
    }
  }
}

template <class Ar> void io(Ar& ar, Hello& m) { ar(m.pid); }
template <class Ar> void io(Ar& ar, Job& m) {
  ar(m.job_id);
  io_string(ar, m.kernel);
  io_vector(ar, m.extent, 16, [](Ar& a, std::uint64_t& d) { a(d); });
  io_string(ar, m.output_handle);
  io_string(ar, m.input_handle);
  io_string(ar, m.lines_handle);
  io_flag(ar, m.wants_result);
  io_flag(ar, m.capture_stdout);
  io_flag(ar, m.time_tasks);
}
template <class Ar> void io(Ar& ar, Assign& m) {
  ar(m.job_id);
  io_entries(ar, m.chunks, kMaxBatch);
}
template <class Ar> void io(Ar&, Stop&) {}
template <class Ar> void io(Ar&, Wake&) {}
template <class Ar> void io(Ar& ar, Done& m) {
  ar(m.job_id);
  io_entries(ar, m.chunks, kMaxBatch);
}
template <class Ar> void io(Ar& ar, TaskError& m) {
  ar(m.job_id, m.chunk_id, m.index);
  io_flag(ar, m.out_of_memory);
  io_string(ar, m.type);
  io_string(ar, m.what);
  ar(m.exit_code, m.signal);
  io_string(ar, m.stderr_tail);
  ar(m.runtime_ns);
  if constexpr (Ar::is_loading::value) {
    // What the master puts into a FailureRecord and a joblog row must be a process's status.
    if (m.exit_code < 0 || m.exit_code > 255) throw ProtocolError("TaskError exit code " + std::to_string(m.exit_code) + " is not 0-255");
    if (m.signal < 0 || m.signal > 64) throw ProtocolError("TaskError signal " + std::to_string(m.signal) + " is not 0-64");
    if (m.exit_code != 0 && m.signal != 0) throw ProtocolError("TaskError with both an exit code and a signal");
  }
}

template <std::size_t I = 0>
Message make_alternative(std::size_t type) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (type == I) return Message(std::in_place_index<I>);
    return make_alternative<I + 1>(type);
  } else {
    throw ProtocolError("unknown message type " + std::to_string(type));
  }
}

}  // namespace

void encode(const Message& m, std::string& out) {
  out.clear();
  const Header h{kMagic, kVersion, static_cast<std::uint16_t>(m.index())};
  out.append(reinterpret_cast<const char*>(&h), sizeof h);
  {
    detail::StringAppendBuf buf(out);
    std::ostream os(&buf);
    cereal::BinaryOutputArchive ar(os);
    std::visit([&ar](const auto& msg) { io(ar, const_cast<std::remove_cvref_t<decltype(msg)>&>(msg)); }, m);
  }
  if (out.size() > kMaxMessage)
    throw Error("message " + std::string(message_name(m)) + " of " + std::to_string(out.size()) + " bytes exceeds " + std::to_string(kMaxMessage));
}

Message decode(std::span<const char> datagram) {
  if (datagram.size() < sizeof(Header)) throw ProtocolError("datagram of " + std::to_string(datagram.size()) + " bytes is shorter than a header");
  Header h{};
  std::memcpy(&h, datagram.data(), sizeof h);
  if (h.magic != kMagic) throw ProtocolError("bad magic 0x" + [&] { char b[16]; std::snprintf(b, sizeof b, "%08x", h.magic); return std::string(b); }());
  if (h.version != kVersion) throw ProtocolError("protocol version " + std::to_string(h.version) + ", expected " + std::to_string(kVersion));
  Message m = make_alternative(h.type);
  detail::SpanReadBuf buf(datagram.subspan(sizeof h));
  std::istream is(&buf);
  try {
    cereal::BinaryInputArchive ar(is);
    std::visit([&ar](auto& msg) { io(ar, msg); }, m);
  } catch (const cereal::Exception& e) {
    throw ProtocolError(std::string("truncated ") + std::string(message_name(m)) + " message: " + e.what());
  }
  if (is.peek() != std::char_traits<char>::eof()) throw ProtocolError(std::string("trailing bytes after ") + std::string(message_name(m)) + " message");
  return m;
}

void check_attached(const Message& m, std::size_t fds) {
  const auto* done = std::get_if<Done>(&m);
  const bool carries = done != nullptr && std::any_of(done->chunks.begin(), done->chunks.end(), [](const ChunkDone& c) { return c.carried; });
  if (carries && (done->chunks.size() != 1 || fds != 1))
    throw ProtocolError("Done with a carried result must have one entry and one descriptor (has " + std::to_string(done->chunks.size()) +
                        " entries, " + std::to_string(fds) + " descriptors)");
  if (!carries && fds != 0)
    throw ProtocolError(std::to_string(fds) + " descriptor(s) attached to a " + std::string(message_name(m)) + " message that carries none");
}

std::string_view message_name(const Message& m) noexcept {
  static constexpr std::string_view names[] = {"Hello", "Job", "Assign", "Stop", "Wake", "Done", "TaskError"};
  return names[m.index()];
}

}  // namespace taskfarm::proto
