// The command template of `taskfarm run --exec` (worker/exec/src/command_template.cpp): every
// replacement string against GNU parallel 20221122's answers, several sources, quoting for
// --shell, and the templates refused. tests/cli/exec.sh runs the same through the binary.
#include "command_template.hpp"
#include "memory_failure.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "taskfarm/error.hpp"

namespace taskfarm::exec {
namespace {

using Args = std::vector<std::string>;

Args expand(const Args& words, const std::vector<std::string_view>& inputs, std::uint64_t seq = 1, unsigned slot = 1,
            bool shell = false) {
  return CommandTemplate(words, shell, inputs.size()).expand(inputs, seq, slot);
}

TEST(CommandTemplate, PathPartsAreGnuParallels) {
  struct Case {
    std::string_view in, no_ext, base, dir, base_no_ext;
  };
  // parallel echo '[{}] [{.}] [{/}] [{//}] [{/.}]' ::: ... printed these.
  const Case cases[] = {{"dir.x/foo.tar.gz", "dir.x/foo.tar", "foo.tar.gz", "dir.x", "foo.tar"},
                        {"foo", "foo", "foo", ".", "foo"},
                        {".bashrc", "", ".bashrc", ".", ""},
                        {"foo.", "foo", "foo.", ".", "foo"},
                        {"/a/b", "/a/b", "b", "/a", "b"},
                        {"a/b/", "a/b/", "", "a", ""},
                        {"/", "/", "", "/", ""},
                        {"dir/.hidden", "dir/", ".hidden", "dir", ""},
                        {"a/b.c/d", "a/b.c/d", "d", "a/b.c", "d"},
                        {"/a", "/a", "a", "/", "a"},
                        {"a//b", "a//b", "b", "a", "b"}};
  for (const Case& c : cases) {
    EXPECT_EQ(expand({"x", "{}", "{.}", "{/}", "{//}", "{/.}"}, {c.in}),
              (Args{"x", std::string(c.in), std::string(c.no_ext), std::string(c.base), std::string(c.dir),
                    std::string(c.base_no_ext)}))
        << c.in;
  }
}

TEST(CommandTemplate, WithoutReplacementStringsTheInputsAreAppended) {
  EXPECT_EQ(expand({"gzip", "-9"}, {"a b.txt"}), (Args{"gzip", "-9", "a b.txt"}));
  EXPECT_EQ(expand({"echo"}, {"a", "1"}), (Args{"echo", "a", "1"}));
  // {#} and {%} are replacement strings too: nothing is appended then (GNU parallel's rule).
  EXPECT_EQ(expand({"echo", "{#}", "{%}"}, {"a"}, 7, 2), (Args{"echo", "7", "2"}));
}

TEST(CommandTemplate, SeveralSourcesArePositionalOrSpreadOrJoined) {
  EXPECT_EQ(expand({"echo", "{2}-{1}", "{2/.}"}, {"a", "d/1.c"}), (Args{"echo", "d/1.c-a", "1"}));
  EXPECT_EQ(expand({"echo", "{}"}, {"a", "1"}), (Args{"echo", "a", "1"}));  // alone: an argument each
  EXPECT_EQ(expand({"echo", "x{}y"}, {"a", "1"}), (Args{"echo", "xa 1y"}));  // in a word: joined by spaces
  EXPECT_EQ(expand({"cp", "{1}", "{2//}/{1/}"}, {"src/f.txt", "dst/"}), (Args{"cp", "src/f.txt", "./f.txt"}));
}

TEST(CommandTemplate, BracesThatAreNotReplacementStringsStayAsWritten) {
  EXPECT_EQ(expand({"echo", "{foo}", "{0}", "{1x}", "{", "}", "a{b"}, {"v"}),
            (Args{"echo", "{foo}", "{0}", "{1x}", "{", "}", "a{b", "v"}));
}

TEST(CommandTemplate, ValuesAreNeverSplitOrInterpreted) {
  const std::string_view nasty = "$(touch x) `y` 'q' \"d\" a\nb \\ *";
  EXPECT_EQ(expand({"printf", "%s", "{}"}, {nasty}), (Args{"printf", "%s", std::string(nasty)}));
  EXPECT_EQ(expand({"echo", "{}"}, {""}), (Args{"echo", ""}));
}

TEST(CommandTemplate, ShellModeQuotesEveryValueAndKeepsTheScript) {
  EXPECT_EQ(expand({"grep -c x {} | sort", "&&", "echo", "{#}"}, {"it's a $file"}, 3, 1, true),
            (Args{"/bin/sh", "-c", "grep -c x 'it'\\''s a $file' | sort && echo 3"}));
  EXPECT_EQ(expand({"echo"}, {"a b", "c"}, 1, 1, true), (Args{"/bin/sh", "-c", "echo 'a b' c"}));
}

TEST(CommandTemplate, ASourceThatDoesNotExistIsRefused) {
  EXPECT_THROW(CommandTemplate({"echo", "{3}"}, false, 2), Error);
  EXPECT_THROW(CommandTemplate({"echo", "{2.}"}, false, 1), Error);
  EXPECT_THROW(CommandTemplate({"echo"}, false, 0), Error);
  try {
    CommandTemplate({"echo", "{3}"}, false, 2);
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "replacement string {3} names input source 3, but there are 2 input sources");
  }
}

TEST(CommandTemplate, LiteralProgramAndSlotAreKnownBeforeAnyTask) {
  EXPECT_EQ(*CommandTemplate({"gzip", "{}"}, false, 1).literal_program(), "gzip");
  EXPECT_EQ(CommandTemplate({"{}", "x"}, false, 1).literal_program(), nullptr);
  EXPECT_EQ(CommandTemplate({"gzip"}, true, 1).literal_program(), nullptr);  // a script
  EXPECT_TRUE(CommandTemplate({"echo", "{%}"}, false, 1).uses_slot());
  EXPECT_FALSE(CommandTemplate({"echo", "{#}"}, false, 1).uses_slot());
}

// GNU parallel 20221122: `parallel -I XX echo XX {.} {} {1} ::: a.b` prints "a.b a {} {1}";
// `parallel -I XX echo ::: a` prints "a".
TEST(CommandTemplate, DashIStringStandsForTheInputAndBracesOfInputsBecomeText) {
  auto with_i = [](const Args& words, const std::vector<std::string_view>& in) {
    return CommandTemplate(words, false, in.size(), "XX").expand(in, 7, 2);
  };
  EXPECT_EQ(with_i({"echo", "XX", "{.}", "{}", "{1}", "pre-XX-post", "{#}"}, {"a.b"}),
            (Args{"echo", "a.b", "a", "{}", "{1}", "pre-a.b-post", "7"}));
  EXPECT_EQ(with_i({"echo"}, {"a"}), (Args{"echo", "a"})) << "no XX: the input is appended";
  EXPECT_EQ(with_i({"echo", "XX"}, {"a", "b"}), (Args{"echo", "a", "b"}));
  EXPECT_THROW(CommandTemplate({"echo"}, false, 1, ""), Error);
}

// `parallel ::: "echo a"` runs `echo a`; `parallel ::: echo ::: a b` runs `echo a`, `echo b`.
TEST(CommandTemplate, EmptyTemplateRunsTheInputsAsAShellCommand) {
  const CommandTemplate t({}, false, 2);
  EXPECT_TRUE(t.through_shell());
  EXPECT_EQ(t.literal_program(), nullptr);
  const std::vector<std::string_view> in{"echo", "$HOME a"};
  EXPECT_EQ(t.expand(in, 1, 1), (Args{"/bin/sh", "-c", "echo $HOME a"})) << "the input is the script: not quoted";
}

TEST(CommandTemplate, QuotedCommandReadsBackAsTheArgumentVector) {
  EXPECT_EQ(quote_command(Args{"gzip", "-9", "a b.txt", "it's", ""}), "gzip -9 'a b.txt' 'it'\\''s' ''");
  EXPECT_EQ(terminal_quote("c\xc2\x9b" "d"), "$'c\\xc2\\x9bd'");  // (the resume hint's words: h13b N10)
  EXPECT_EQ(terminal_quote("a b"), "'a b'");
  EXPECT_EQ(terminal_quote("plain.txt"), "plain.txt");
  // A bidirectional control would show the words in another order (h13c P3): as bytes too.
  EXPECT_EQ(terminal_quote("a\u202Etxt.exe"), "$'a\\xe2\\x80\\xaetxt.exe'");
  EXPECT_EQ(terminal_quote("b\u2067c\u061C"), "$'b\\xe2\\x81\\xa7c\\xd8\\x9c'");
  EXPECT_EQ(terminal_quote("\u2014 \u20AC"), "'\u2014 \u20AC'");  // (other characters of that block are text)
  // A C1 control or a byte that is not UTF-8 as bash's \xHH, which gives the same bytes back (h12b N6).
  EXPECT_EQ(quote_command(Args{"sh", "a\x9b" "31mb", "c\xc2\x9b" "31md", "\xc3\xa9"}),
            "sh $'a\\x9b31mb' $'c\\xc2\\x9b31md' '\xc3\xa9'");
}

// A failure names its command on one line of the summary: a file name with a newline or a
// terminal escape sequence is written as bash's $'...' (which reads back as the same bytes), and
// a command of megabytes (inputs up to 128 KiB each) is cut, saying how much was left out.
TEST(CommandTemplate, QuotedCommandIsOneBoundedLine) {
  EXPECT_EQ(quote_command(Args{"cp", "a\nb", "x\x1b[31m'\\", "\xc3\xbc \x7f"}),
            "cp $'a\\nb' $'x\\x1b[31m\\'\\\\' $'\xc3\xbc \\x7f'");
  const std::string big(120000, 'b');
  const std::string q = quote_command(Args{"echo", big, big, big});
  EXPECT_EQ(q.find('\n'), std::string::npos);
  EXPECT_EQ(q.substr(0, 8), "echo bbb");
  // 1024 of "echo " + 120000 bytes kept, the rest of that word and the two other words (each
  // with its space) left out.
  EXPECT_EQ(q.substr(kQuotedCommandMax), "... [" + std::to_string(120005 - 1024 + 2 * 120001) + " more bytes]");
  // Cut between characters, never inside one: "abc '" + 600 x ü (2 bytes) + "'": byte 1024 is
  // the second byte of a ü, so the line ends after 1023 bytes.
  std::string umlauts;
  for (int k = 0; k < 600; ++k) umlauts += "\xc3\xbc";
  const std::string cut = quote_command(Args{"abc", umlauts});
  EXPECT_TRUE(cut == "abc '" + umlauts.substr(0, 1018) + "... [183 more bytes]") << cut.substr(1000);
}

}  // namespace
}  // namespace taskfarm::exec

// --mem-limit: what the common runtimes print when an allocation is refused makes a failed
// command's cause `memory` (worker/exec/src/memory_failure.hpp); other failures stay `exit`.
TEST(MemoryFailure, RuntimesReportsOfARefusedAllocationAreRecognised) {
  using taskfarm::exec::reports_allocation_failure;
  for (const char* said : {"Traceback (most recent call last):\n  File \"<string>\", line 1\nMemoryError\n",
                           "terminate called after throwing an instance of 'std::bad_alloc'\n  what():  std::bad_alloc\n",
                           "sort: Cannot allocate memory\n", "fatal error: runtime: out of memory\n",
                           "memory allocation of 4294967296 bytes failed\n", "bash: xmalloc: cannot allocate 42 bytes\n",
                           "Exception in thread \"main\" java.lang.OutOfMemoryError: Java heap space\n",
                           "grep: memory exhausted\n"})
    EXPECT_TRUE(reports_allocation_failure(said)) << said;
  for (const char* said : {"", "gzip: a.txt: No such file or directory\n", "Segmentation fault\n", "error: exit 3\n"})
    EXPECT_FALSE(reports_allocation_failure(said)) << said;
}
