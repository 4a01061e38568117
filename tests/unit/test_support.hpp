#pragma once
// Shared helpers of the coder unit tests: a portable random generator and random
// dictionaries. (std::normal_distribution differs between standard libraries, so
// Gaussians come from raw mt19937_64 bits by Box-Muller; tests embed reference values
// computed from these exact streams.)
#include <cmath>
#include <cstdint>
#include <random>

#include "dictlearn/core/random.hpp"
#include "dictlearn/core/types.hpp"

namespace dictlearn::testing {

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : engine_(seed) {}
  double uniform() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  Index below(Index n) { return static_cast<Index>(uniform() * static_cast<double>(n)); }
  double gaussian() {
    const double u1 = 1.0 - uniform();  // (0, 1]
    const double u2 = uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  Vector gaussian_vector(Index n) {
    Vector v(n);
    for (Index i = 0; i < n; ++i) v(i) = gaussian();
    return v;
  }

 private:
  std::mt19937_64 engine_;
};

/// d x K dictionary with unit-norm columns. `shared` > 0 adds a common component to every
/// atom, which correlates the atoms (and makes the lasso path drop atoms now and then).
inline Matrix random_dictionary(Index d, Index K, Rng& rng, double shared = 0.0) {
  const Vector common = rng.gaussian_vector(d);
  Matrix D(d, K);
  for (Index k = 0; k < K; ++k) {
    D.col(k) = rng.gaussian_vector(d) + shared * rng.uniform() * common;
    D.col(k).normalize();
  }
  return D;
}

/// rows x cols standard normal entries from dictlearn's own generator.
inline Matrix gaussian(Index rows, Index cols, Random& random) {
  Matrix m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = random.normal();
  return m;
}

/// K x n codes with about `density` of the entries nonzero (standard normal values).
inline Matrix sparse_codes(Index K, Index n, double density, Random& random) {
  Matrix c = Matrix::Zero(K, n);
  for (Index j = 0; j < n; ++j)
    for (Index k = 0; k < K; ++k)
      if (random.uniform() < density) c(k, j) = random.normal();
  return c;
}

}  // namespace dictlearn::testing
