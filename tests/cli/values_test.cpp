// The option values of `taskfarm run`: what each parser accepts, and that each refusal names
// the option and the text.
#include <gtest/gtest.h>

#include "usage_error.hpp"
#include "values.hpp"

namespace taskfarm::cli {
namespace {

using namespace std::chrono_literals;

/// The UsageError message `f` throws, or "" if it does not throw one.
template <class F>
std::string refusal(F f) {
  try {
    f();
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(Values, CountsArePositiveDecimals) {
  EXPECT_EQ(parse_count("--tasks", "1"), 1u);
  EXPECT_EQ(parse_count("--tasks", "18446744073709551615"), 18446744073709551615ull);
  EXPECT_EQ(parse_count("--retries", "0", true), 0u);
  for (const char* bad : {"0", "-3", "+3", "ten", "", "3x", " 3", "18446744073709551616"})
    EXPECT_NE(refusal([&] { parse_count("--tasks", bad); }).find(std::string("--tasks: '") + bad + "'"),
              std::string::npos)
        << bad;
}

TEST(Values, WorkersTakeCountsNegativesAndPercentages) {
  EXPECT_EQ(parse_workers("4", 8), 4);
  EXPECT_EQ(parse_workers("-1", 8), -1);
  EXPECT_EQ(parse_workers("-2", 8), -2);
  EXPECT_EQ(parse_workers("50%", 8), 4);
  EXPECT_EQ(parse_workers("10%", 2), 1);  // never below one
  EXPECT_EQ(parse_workers("200%", 2), 4);
  for (const char* bad : {"0", "-0", "many", "", "%", "0%", "-5%", "1.5"})
    EXPECT_NE(refusal([&] { parse_workers(bad, 8); }).find("--workers"), std::string::npos) << bad;
}

TEST(Values, WorkersFarBeyondTheCpusAreWarnedOrRefused) {
  EXPECT_EQ(check_worker_count("8", 8, 100, 1), "");
  EXPECT_EQ(check_worker_count("-1", -1, 100, 4), "");
  EXPECT_EQ(check_worker_count("9", 9, 3, 1), "");  // at most one worker per task runs
  EXPECT_NE(check_worker_count("9", 9, 100, 1).find("warning: 9 workers on 1 usable CPU (--workers 9)"),
            std::string::npos);
  EXPECT_NE(check_worker_count("512", 512, 1000, 2).find("warning: 512 workers on 2 usable CPUs"), std::string::npos);
  EXPECT_NE(refusal([] { check_worker_count("513", 513, 1000, 2); })
                .find("--workers: '513' would run 513 workers on 2 usable CPUs: at most 256 per CPU (512)"),
            std::string::npos);
  EXPECT_NE(refusal([] { check_worker_count("100000", 100000, 1000000, 2); }).find("--workers: '100000'"),
            std::string::npos);
  EXPECT_EQ(refusal([] { check_worker_count("100000", 100000, 3, 2); }), "");
}

TEST(Values, ChunkIsAutoOrPositive) {
  EXPECT_EQ(parse_chunk("auto"), 0u);
  EXPECT_EQ(parse_chunk("64"), 64u);
  EXPECT_NE(refusal([] { parse_chunk("0"); }), "");
  EXPECT_NE(refusal([] { parse_chunk("Auto"); }), "");
}

TEST(Values, DurationsTakeUnits) {
  EXPECT_EQ(parse_duration("--timeout", "500ms"), 500ms);
  EXPECT_EQ(parse_duration("--timeout", "30s"), 30s);
  EXPECT_EQ(parse_duration("--timeout", "30"), 30s);  // GNU parallel: seconds
  EXPECT_EQ(parse_duration("--timeout", "1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("--timeout", "2m"), 120s);
  EXPECT_EQ(parse_duration("--timeout", "1h"), 3600s);
  for (const char* bad : {"", "s", "5parsecs", "-1s", "0", "0.1ms", "1e3s", "1.2.3s"})
    EXPECT_NE(refusal([&] { parse_duration("--timeout", bad); }).find(std::string("--timeout: '") + bad + "'"),
              std::string::npos)
        << bad;
}

TEST(Values, SizesAreBinary) {
  EXPECT_EQ(parse_size("--mem-limit", "4096"), 4096u);
  EXPECT_EQ(parse_size("--mem-limit", "512M"), 512ull << 20);
  EXPECT_EQ(parse_size("--mem-limit", "2G"), 2ull << 30);
  EXPECT_EQ(parse_size("--mem-limit", "2GiB"), 2ull << 30);
  EXPECT_EQ(parse_size("--mem-limit", "2GB"), 2ull << 30);
  EXPECT_EQ(parse_size("--mem-limit", "1.5K"), 1536u);
  for (const char* bad : {"", "lots", "2X", "-1G", "0", "0.1"})
    EXPECT_NE(refusal([&] { parse_size("--mem-limit", bad); }).find("--mem-limit"), std::string::npos) << bad;
}

TEST(Values, HaltAsGnuParallelSpellsIt) {
  EXPECT_EQ(parse_halt("never").halt, Halt::never);
  auto now = parse_halt("now,fail=3");
  EXPECT_EQ(now.halt, Halt::now);
  EXPECT_EQ(now.after, 3u);
  auto soon = parse_halt("soon,fail=1");
  EXPECT_EQ(soon.halt, Halt::soon);
  EXPECT_EQ(soon.after, 1u);
  EXPECT_EQ(parse_halt("now").after, 1u);
  for (const char* bad : {"", "sometimes", "now,fail=0", "now,fail=", "now,success=1", "soon,fail=x", "now;fail=1"})
    EXPECT_NE(refusal([&] { parse_halt(bad); }).find("--halt"), std::string::npos) << bad;
}

TEST(Values, RatesAreNonNegative) {
  EXPECT_EQ(parse_rate("--chaos", "0"), 0.0);
  EXPECT_EQ(parse_rate("--chaos", "2.5"), 2.5);
  for (const char* bad : {"", "-1", "x", "1/s"}) EXPECT_NE(refusal([&] { parse_rate("--chaos", bad); }), "") << bad;
}

}  // namespace
}  // namespace taskfarm::cli
