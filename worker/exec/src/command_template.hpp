// CommandTemplate: the words after `--` of `taskfarm run --exec`, with GNU parallel's
// replacement strings, turned into one task's argument vector. Pure (no OS calls): the
// built-in worker (taskfarm-exec) expands it per task; the CLI parses it once to refuse a bad
// template before anything is created, and quotes commands for messages. Any thread.
//
// Replacement strings: {} the input; {.} without its extension; {/} its basename; {//} its
// directory; {/.} basename without extension; {#} the job number (index + 1); {%} the slot
// (1 ... workers); {N}, {N.}, {N/}, {N//}, {N/.} the same of input source N (1-based). With
// several sources, {} & co. stand for every source's value: separate arguments where the word
// is the replacement string alone, joined by spaces inside a longer word. A template without
// any replacement string gets the inputs appended, one argument each. No shell is involved
// unless `shell`: then the words are joined by spaces into one `/bin/sh -c` script and every
// value is put in single quotes, so a value is never read as shell syntax.
//
// GNU parallel's -I: another string than {} stands for the input; {} and the numbered forms
// ({1}, {1.} ...) are then text, while {.} {/} {//} {/.} {#} {%} keep their meaning. An empty
// template (`taskfarm run --exec ::: "echo a" "echo b"`) runs each task's inputs, joined by
// spaces, as a shell command (`/bin/sh -c`, unquoted: the input is the command), as GNU parallel.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace taskfarm::exec {

class CommandTemplate {
 public:
  /// Parses `words` (at least one) for `sources` input sources (at least one). Throws
  /// taskfarm::Error naming a replacement string that refers to a source that does not exist.
  /// `replace`: the string that stands for the input (-I; "{}" by default). No words: the
  /// inputs are the command.
  CommandTemplate(std::vector<std::string> words, bool shell, std::size_t sources, std::string replace = "{}");

  /// One task's argument vector: `inputs` holds each source's value (sources() of them),
  /// `seq` is {#}, `slot` is {%}. With `shell`: {"/bin/sh", "-c", script}.
  std::vector<std::string> expand(std::span<const std::string_view> inputs, std::uint64_t seq,
                                  unsigned slot) const;

  std::size_t sources() const noexcept { return sources_; }
  bool shell() const noexcept { return shell_; }
  /// Whether the command runs as /bin/sh -c (--shell, or the inputs are the command).
  bool through_shell() const noexcept { return shell_ || inputs_are_command_; }
  /// Whether the template uses {%} (the worker then takes a slot number).
  bool uses_slot() const noexcept { return uses_slot_; }
  /// The program word, if it holds no replacement string (it can be looked up before any task).
  const std::string* literal_program() const noexcept;

 private:
  enum class Kind : std::uint8_t { text, input, no_ext, base, dir, base_no_ext, seq, slot };
  struct Part {
    Kind kind = Kind::text;
    std::size_t source = 0;  ///< 0: every source; else 1-based
    std::string text;        ///< Kind::text
  };
  using Word = std::vector<Part>;

  static std::string_view transform(std::string_view value, Kind kind);
  Word parse_word(std::string_view word, bool& any) const;
  void append_word(const Word& w, std::span<const std::string_view> inputs, std::uint64_t seq, unsigned slot,
                   std::vector<std::string>& argv) const;

  std::vector<Word> words_;
  bool shell_ = false;
  bool uses_slot_ = false;
  bool inputs_are_command_ = false;
  std::size_t sources_ = 1;
  std::string replace_ = "{}";
};

/// GNU parallel's {.}: `path` without the extension of its last component ("a/b.tar.gz" →
/// "a/b.tar", ".bashrc" → "", "a.d/b" → "a.d/b").
std::string_view without_extension(std::string_view path);
/// {/}: everything after the last '/' ("a/b/" → "").
std::string_view basename_of(std::string_view path);
/// {//}: the directory, as dirname(1) says it ("a/b/" → "a", "b" → ".", "/a" → "/").
std::string_view dirname_of(std::string_view path);

/// `s` as one shell word: itself if it needs no quoting, else in single quotes.
std::string shell_quote(std::string_view s);
/// `s` as one shell word safe to show on a terminal: shell_quote, or bash's $'...' with \xHH for
/// control characters, C1 controls and bytes that are not UTF-8 (it reads back as the same bytes).
std::string terminal_quote(std::string_view s);
/// Most bytes of a command quoted for a message: a failure is one line of the summary, whatever
/// the size of its inputs (an argument may be 128 KiB, a command 2 MiB).
inline constexpr std::size_t kQuotedCommandMax = 1024;
/// An argument vector as a shell would read it back, for messages: one line (a word with control
/// characters as $'a\nb'), cut after kQuotedCommandMax bytes ("... [N more bytes]").
std::string quote_command(std::span<const std::string> argv);

}  // namespace taskfarm::exec
