#include "mpi_failures.hpp"

#include <algorithm>
#include <cstring>
#include <tuple>

#include "taskfarm/error.hpp"

namespace taskfarm::cli::mpi {
namespace {

// A `failures` text: this head, `ranges` [b, e) pairs of u64, then `named` NamedHeads each
// followed by its two strings. Both ends are the same build (every rank runs one binary).
struct FailuresHead {
  std::uint64_t records;  // the node's RunReport::failures
  std::uint64_t failed;   // its failed indices
  std::uint64_t cut;      // the first failed index past the ranges sent (UINT64_MAX: none)
  std::uint32_t ranges;
  std::uint32_t named;
};
struct NamedHead {
  std::uint64_t index;
  std::uint32_t has_index;
  std::uint32_t whose_bytes;
  std::uint32_t cause_bytes;
  std::uint32_t unused;
};

template <class T>
void put(std::string& text, const T& v) {
  text.append(reinterpret_cast<const char*>(&v), sizeof v);
}

// Reads what `text` holds in order; throws Error where it ends early.
class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  template <class T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof v).data(), sizeof v);
    return v;
  }
  std::string_view take(std::size_t n) {
    if (n > text_.size()) throw Error("--mpi: a malformed failures message (cut short)");
    const std::string_view s = text_.substr(0, n);
    text_.remove_prefix(n);
    return s;
  }
  bool done() const noexcept { return text_.empty(); }

 private:
  std::string_view text_;
};

// Failures of a task first, by index; those of no task last.
auto order_key(const std::optional<std::uint64_t>& index) { return std::make_tuple(!index.has_value(), index.value_or(0)); }

}  // namespace

std::string encode_failures(const RunReport& r) {
  if (r.failures.empty()) return {};
  std::vector<const FailureRecord*> named;
  for (const FailureRecord& f : r.failures) named.push_back(&f);
  const std::size_t n = std::min(named.size(), kFailuresShown);
  std::partial_sort(named.begin(), named.begin() + static_cast<std::ptrdiff_t>(n), named.end(),
                    [](const FailureRecord* a, const FailureRecord* b) { return order_key(a->index) < order_key(b->index); });
  named.resize(n);
  RangeSet failed;
  for (std::uint64_t i : r.failed_indices()) failed.insert(i);
  std::vector<IndexRange> ranges = failed.ranges();
  std::uint64_t cut = UINT64_MAX;
  if (ranges.size() > kFailureRangesSent) {
    cut = ranges[kFailureRangesSent].first;
    ranges.resize(kFailureRangesSent);
  }
  std::string text;
  put(text, FailuresHead{r.failures.size(), failed.count(), cut, static_cast<std::uint32_t>(ranges.size()),
                         static_cast<std::uint32_t>(named.size())});
  for (const auto& [b, e] : ranges) {
    put(text, b);
    put(text, e);
  }
  for (const FailureRecord* f : named) {
    const std::string whose = f->describe_whose(), cause = f->describe_cause();
    put(text, NamedHead{f->index.value_or(0), f->index ? 1u : 0u, static_cast<std::uint32_t>(whose.size()),
                        static_cast<std::uint32_t>(cause.size()), 0});
    text += whose;
    text += cause;
  }
  return text;
}

void FailureNames::add(int rank, std::string_view text) {
  // Read whole and checked before anything of it is kept.
  Reader in(text);
  const auto head = in.get<FailuresHead>();
  std::vector<IndexRange> ranges;
  std::uint64_t in_ranges = 0;
  for (std::uint32_t k = 0; k < head.ranges; ++k) {
    const auto b = in.get<std::uint64_t>(), e = in.get<std::uint64_t>();
    if (b >= e || e >= head.cut || (!ranges.empty() && b <= ranges.back().second))
      throw Error("--mpi: a malformed failures message (ranges out of order)");
    ranges.emplace_back(b, e);
    in_ranges += e - b;
  }
  if (in_ranges > head.failed || (head.cut == UINT64_MAX && in_ranges != head.failed))
    throw Error("--mpi: a malformed failures message (counts)");
  std::string host = rank >= 0 && static_cast<std::size_t>(rank) < hosts_.size() ? hosts_[static_cast<std::size_t>(rank)] : "?";
  if (const std::string suffix = ":" + std::to_string(rank);
      host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0)
    host.resize(host.size() - suffix.size());  // its rank is said already
  std::vector<Named> named;
  for (std::uint32_t k = 0; k < head.named; ++k) {
    const auto h = in.get<NamedHead>();
    const std::string_view whose = in.take(h.whose_bytes), cause = in.take(h.cause_bytes);
    named.push_back({h.has_index != 0 ? std::optional<std::uint64_t>(h.index) : std::nullopt,
                     std::string(whose) + " on rank " + std::to_string(rank) + " (" + host + "): " + std::string(cause)});
  }
  if (!in.done()) throw Error("--mpi: a malformed failures message (bytes past its end)");

  records_ += head.records;
  failed_count_ += head.failed;
  for (Named& n : named) named_.push_back(std::move(n));
  std::stable_sort(named_.begin(), named_.end(), [](const Named& a, const Named& b) { return order_key(a.index) < order_key(b.index); });
  if (named_.size() > kFailuresShown) named_.resize(kFailuresShown);
  // The failed indices: exact below limit_ — below every node's cut, and below the ranges
  // rank 0 let go of to stay within kFailureRangesKept.
  for (const auto& [b, e] : ranges) failed_.insert(b, std::min(e, limit_));
  std::uint64_t limit = std::min(limit_, head.cut);
  std::vector<IndexRange> kept = failed_.ranges();
  if (kept.size() > kFailureRangesKept) limit = std::min(limit, kept[kFailureRangesKept].first);
  if (limit != limit_) {
    limit_ = limit;
    failed_.clear();
    for (const auto& [b, e] : kept)
      if (b < limit_) failed_.insert(b, std::min(e, limit_));
  }
}

FailureLines FailureNames::lines() const {
  FailureLines f;
  for (const Named& n : named_) f.described.push_back(n.line);
  f.records = records_;
  f.failed = failed_.ranges();  // (the last may go on past limit_: the rest is counted)
  f.failed_unlisted = failed_count_ - std::min(failed_count_, failed_.count());
  return f;
}

}  // namespace taskfarm::cli::mpi
