#pragma once
// A small counter-friendly random generator (SplitMix64, Steele, Lea, Flood 2014).
// dictlearn never uses std:: distributions: their output is implementation-defined, and
// every rank, every platform and every rank count must draw the same numbers. Streams are
// keyed by (seed, purpose, index...) with derive_seed, so no state is shared or carried.
#include <cmath>
#include <cstdint>
#include <initializer_list>

namespace dictlearn {

inline std::uint64_t splitmix64(std::uint64_t& state) {
  std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

/// A seed for an independent stream identified by a tuple of integers.
inline std::uint64_t derive_seed(std::initializer_list<std::uint64_t> keys) {
  std::uint64_t state = 0x6A09E667F3BCC909ULL;
  std::uint64_t out = 0;
  for (std::uint64_t key : keys) {
    state ^= key + 0x9E3779B97F4A7C15ULL + (out << 6) + (out >> 2);
    out = splitmix64(state);
  }
  return out;
}

class Random {
 public:
  explicit Random(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next() { return splitmix64(state_); }
  /// Uniform in [0, 1) with 53 random bits.
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }
  /// Uniform integer in [0, n), n > 0 (Lemire's multiply-shift; negligible bias for n << 2^64).
  std::uint64_t below(std::uint64_t n) {
    return std::uint64_t((static_cast<unsigned __int128>(next()) * n) >> 64);
  }
  /// Standard normal by Box-Muller (the second value is discarded to keep streams simple).
  double normal() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  /// Fisher-Yates shuffle of [first, first + n).
  template <typename T>
  void shuffle(T* first, std::uint64_t n) {
    for (std::uint64_t i = n; i > 1; --i) {
      const std::uint64_t j = below(i);
      T tmp = first[i - 1];
      first[i - 1] = first[j];
      first[j] = tmp;
    }
  }

 private:
  std::uint64_t state_;
};

}  // namespace dictlearn
