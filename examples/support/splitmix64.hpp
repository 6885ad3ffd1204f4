// SplitMix64 (Steele, Lea, Flood 2014): a tiny counter-based generator. The examples seed it by
// task index, so every task's random numbers are fixed whatever process runs it and in what
// order (std:: distributions may differ between library versions; these bits never do).
#pragma once

#include <cstdint>

namespace examples {

/// The SplitMix64 output for counter value `x` (the finaliser of x + golden gamma).
constexpr std::uint64_t splitmix64(std::uint64_t x) noexcept {
  std::uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/// A stream of SplitMix64 values: state advances by the golden gamma per draw.
class SplitMix64 {
 public:
  explicit constexpr SplitMix64(std::uint64_t seed) noexcept : state_(seed) {}
  constexpr std::uint64_t next() noexcept {
    const std::uint64_t out = splitmix64(state_);
    state_ += 0x9e3779b97f4a7c15ULL;
    return out;
  }

 private:
  std::uint64_t state_;
};

/// A double uniform in [0, 1) from the top 53 bits of `bits`.
constexpr double unit_double(std::uint64_t bits) noexcept {
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

}  // namespace examples
