#include "command_template.hpp"

#include <algorithm>
#include <cctype>

#include "taskfarm/detail/text.hpp"
#include "taskfarm/error.hpp"

namespace taskfarm::exec {

std::string_view basename_of(std::string_view path) {
  const auto slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::string_view without_extension(std::string_view path) {
  const auto slash = path.rfind('/');
  const auto dot = path.rfind('.');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) return path;
  return path.substr(0, dot);
}

std::string_view dirname_of(std::string_view path) {
  auto end = path.find_last_not_of('/');
  if (end == std::string_view::npos) return path.empty() ? "." : "/";  // "" or only slashes
  const auto slash = path.rfind('/', end);
  if (slash == std::string_view::npos) return ".";
  end = path.find_last_not_of('/', slash);
  return end == std::string_view::npos ? "/" : path.substr(0, end + 1);
}

std::string shell_quote(std::string_view s) {
  const bool plain = !s.empty() && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || std::string_view("-_./=:,%+@").find(c) != std::string_view::npos;
  });
  if (plain) return std::string(s);
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string_view("'\\''") : std::string_view(&c, 1);
  return q + "'";
}

namespace {

// A word holding control characters as bash's $'...' writes it: a newline or an escape sequence
// in a file name never breaks the one-line message or reaches the terminal as such — nor does a
// C1 control or a byte that is not UTF-8 (h12b N6); \xHH gives bash those very bytes back.
std::string ansi_c_quote(std::string_view s) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string q = "$'";
  for (std::size_t i = 0; i < s.size();) {
    const detail::TextUnit unit = detail::text_unit_at(s, i);
    const char c = s[i];
    if (c == '\n') q += "\\n";
    else if (c == '\t') q += "\\t";
    else if (c == '\r') q += "\\r";
    else if (c == '\\' || c == '\'') (q += '\\') += c;
    else if (unit.unsafe)
      for (std::size_t k = 0; k < unit.size; ++k) {
        const auto u = static_cast<unsigned char>(s[i + k]);
        ((q += "\\x") += hex[u >> 4]) += hex[u & 15];
      }
    else q.append(s.substr(i, unit.size));
    i += unit.size;
  }
  return q + "'";
}

}  // namespace

std::string terminal_quote(std::string_view s) { return detail::has_terminal_unsafe(s) ? ansi_c_quote(s) : shell_quote(s); }

std::string quote_command(std::span<const std::string> argv) {
  std::string s;
  std::size_t cut = 0;  // bytes of words left out past the bound
  for (const std::string& a : argv) {
    if (s.size() >= kQuotedCommandMax) {
      cut += a.size() + 1;
      continue;
    }
    if (!s.empty()) s += ' ';
    s += terminal_quote(a);
  }
  if (s.size() > kQuotedCommandMax) {  // cut before a UTF-8 continuation byte never splits a character
    std::size_t at = kQuotedCommandMax;
    while (at > 0 && (static_cast<unsigned char>(s[at]) & 0xc0) == 0x80) --at;
    cut += s.size() - at;
    s.resize(at);
  }
  if (cut > 0) s += "... [" + std::to_string(cut) + " more bytes]";
  return s;
}

CommandTemplate::Word CommandTemplate::parse_word(std::string_view w, bool& any) const {
  const std::size_t sources = sources_;
  const bool custom = replace_ != "{}";  // -I: {} and {N...} are text
  Word word;
  auto text = [&word](std::string_view t) {
    if (t.empty()) return;
    if (word.empty() || word.back().kind != Kind::text) word.push_back(Part{});
    word.back().text += t;
  };
  while (!w.empty()) {
    const auto open = w.find('{');
    if (const auto r = custom ? w.find(replace_) : std::string_view::npos; r != std::string_view::npos && r <= open) {
      text(w.substr(0, r));
      w.remove_prefix(r + replace_.size());
      word.push_back(Part{Kind::input, 0, {}});
      any = true;
      continue;
    }
    const auto close = open == std::string_view::npos ? open : w.find('}', open);
    if (close == std::string_view::npos) {
      text(w);
      break;
    }
    text(w.substr(0, open));
    const std::string_view inside = w.substr(open + 1, close - open - 1);
    w.remove_prefix(close + 1);
    Part p;
    std::size_t digits = 0;
    while (digits < inside.size() && std::isdigit(static_cast<unsigned char>(inside[digits])) != 0) ++digits;
    const std::string_view suffix = inside.substr(digits);
    if (custom && (digits > 0 || inside.empty())) {
      text("{" + std::string(inside) + "}");
      continue;
    }
    if (inside == "#") p.kind = Kind::seq;
    else if (inside == "%") p.kind = Kind::slot;
    else if (suffix.empty()) p.kind = Kind::input;
    else if (suffix == ".") p.kind = Kind::no_ext;
    else if (suffix == "/") p.kind = Kind::base;
    else if (suffix == "//") p.kind = Kind::dir;
    else if (suffix == "/.") p.kind = Kind::base_no_ext;
    else {
      text("{" + std::string(inside) + "}");  // not a replacement string: as written
      continue;
    }
    if (digits > 0) {
      if (digits > 9) throw Error("replacement string {" + std::string(inside) + "}: there is no input source that large");
      p.source = std::stoul(std::string(inside.substr(0, digits)));
      if (p.source == 0) {  // {0} is not a replacement string
        text("{" + std::string(inside) + "}");
        continue;
      }
      if (p.source > sources)
        throw Error("replacement string {" + std::string(inside) + "} names input source " + std::to_string(p.source) +
                    ", but there " + (sources == 1 ? "is 1 input source" : "are " + std::to_string(sources) + " input sources"));
    }
    any = true;
    word.push_back(std::move(p));
  }
  return word;
}

CommandTemplate::CommandTemplate(std::vector<std::string> words, bool shell, std::size_t sources, std::string replace)
    : shell_(shell), inputs_are_command_(words.empty()), sources_(sources), replace_(std::move(replace)) {
  if (sources == 0) throw Error("a command template needs at least one input source");
  if (replace_.empty()) throw Error("-I: an empty replacement string");
  if (inputs_are_command_) return;
  bool any = false;
  for (const std::string& w : words) words_.push_back(parse_word(w, any));
  for (const Word& w : words_)
    for (const Part& p : w) uses_slot_ = uses_slot_ || p.kind == Kind::slot;
  if (!any) {  // no replacement string: the inputs are appended, one argument each
    for (std::size_t k = 1; k <= sources; ++k) words_.push_back(Word{Part{Kind::input, k, {}}});
  }
}

const std::string* CommandTemplate::literal_program() const noexcept {
  if (shell_ || inputs_are_command_ || words_.front().size() != 1 || words_.front().front().kind != Kind::text) return nullptr;
  return &words_.front().front().text;
}

std::string_view CommandTemplate::transform(std::string_view v, Kind kind) {
  switch (kind) {
    case Kind::no_ext: return without_extension(v);
    case Kind::base: return basename_of(v);
    case Kind::dir: return dirname_of(v);
    case Kind::base_no_ext: return without_extension(basename_of(v));
    default: return v;
  }
}

void CommandTemplate::append_word(const Word& w, std::span<const std::string_view> inputs, std::uint64_t seq,
                                  unsigned slot, std::vector<std::string>& argv) const {
  auto value = [&](const Part& p, std::size_t k) {
    std::string_view v = transform(inputs[k], p.kind);
    return shell_ ? shell_quote(v) : std::string(v);
  };
  // The replacement string alone, standing for several sources: one argument (word) each.
  if (w.size() == 1 && w.front().kind != Kind::text && w.front().kind != Kind::seq && w.front().kind != Kind::slot &&
      w.front().source == 0 && inputs.size() > 1) {
    for (std::size_t k = 0; k < inputs.size(); ++k) argv.push_back(value(w.front(), k));
    return;
  }
  std::string s;
  for (const Part& p : w) {
    switch (p.kind) {
      case Kind::text: s += p.text; break;
      case Kind::seq: s += std::to_string(seq); break;
      case Kind::slot: s += std::to_string(slot); break;
      default:
        if (p.source != 0) {
          s += value(p, p.source - 1);
          break;
        }
        for (std::size_t k = 0; k < inputs.size(); ++k) {
          if (k > 0) s += ' ';
          s += value(p, k);
        }
    }
  }
  argv.push_back(std::move(s));
}

std::vector<std::string> CommandTemplate::expand(std::span<const std::string_view> inputs, std::uint64_t seq,
                                                 unsigned slot) const {
  if (inputs.size() != sources_)
    throw Error("a task with " + std::to_string(inputs.size()) + " inputs for a template of " + std::to_string(sources_) +
                " input sources");
  if (inputs_are_command_) {  // GNU parallel's `parallel ::: "echo a"`: the input is the script
    std::string script;
    for (const std::string_view v : inputs) {
      if (!script.empty()) script += ' ';
      script += v;
    }
    return {"/bin/sh", "-c", std::move(script)};
  }
  std::vector<std::string> argv;
  argv.reserve(words_.size() + inputs.size());
  for (const Word& w : words_) append_word(w, inputs, seq, slot, argv);
  if (!shell_) return argv;
  std::string script;
  for (const std::string& a : argv) {
    if (!script.empty()) script += ' ';
    script += a;
  }
  return {"/bin/sh", "-c", std::move(script)};
}

}  // namespace taskfarm::exec
