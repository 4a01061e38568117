// Block-coordinate descent on the surrogate 0.5 Tr(D^T D A) - Tr(D^T B): agreement with a
// plain reference implementation, monotone decrease atom by atom and pass by pass, the
// unit-ball (and nonnegativity) constraint, untouched atoms without curvature, the same
// bits from A's upper triangle alone, and the projected optimality conditions at the fixed
// point.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>

#include "dictlearn/core/random.hpp"
#include "dictlearn/update/online_update.hpp"
#include "test_support.hpp"

namespace {

using dictlearn::Index;
using dictlearn::Matrix;
using dictlearn::OnlineUpdateOptions;
using dictlearn::Random;
using dictlearn::surrogate_objective;
using dictlearn::Vector;
using dictlearn::testing::gaussian;
using dictlearn::testing::sparse_codes;

// Feasible start: columns with norms uniformly in (0, 1].
Matrix feasible_dictionary(Index d, Index K, Random& random, bool positive) {
  Matrix D = gaussian(d, K, random);
  if (positive) D = D.cwiseAbs();
  for (Index k = 0; k < K; ++k) D.col(k) *= (1.0 - random.uniform()) / D.col(k).norm();
  return D;
}

struct Problem {
  Matrix a, b, dictionary;
};

Problem random_problem(Index d, Index K, Index n, Random& random, bool positive = false) {
  const Matrix c = sparse_codes(K, n, 0.3, random);
  const Matrix x = gaussian(d, n, random);
  return {c * c.transpose() / double(n), x * c.transpose() / double(n),
          feasible_dictionary(d, K, random, positive)};
}

// One atom step of Mairal's Algorithm 2, D a_k recomputed from scratch.
void reference_atom_step(const Matrix& a, const Matrix& b, Matrix& D, Index k, bool positive) {
  Vector u = D.col(k) + (b.col(k) - D * a.col(k)) / a(k, k);
  if (positive) u = u.cwiseMax(0.0);
  D.col(k) = u / std::max(1.0, u.norm());
}

}  // namespace

TEST_CASE("online update equals a from-scratch implementation of Mairal's BCD", "[online]") {
  Random random(101);
  for (int trial = 0; trial < 30; ++trial) {
    // Small shapes, and shapes crossing the implementation's blocks (16 rows, 8 atoms,
    // 128 rows per thread) with partial blocks at the ends.
    const bool large = trial % 4 == 3;
    const Index d = large ? 250 + Index(random.below(60)) : 2 + Index(random.below(10));
    const Index K = 1 + Index(random.below(large ? 40 : 12));
    const Index n = 3 + Index(random.below(40));
    const bool positive = trial % 3 == 0;
    Problem p = random_problem(d, K, n, random, positive);
    if (trial % 5 == 1 && K > 2) {  // an atom without curvature inside a block of atoms
      const Index unused = 1 + Index(random.below(std::uint64_t(K - 1)));
      p.a.row(unused).setZero();
      p.a.col(unused).setZero();
      p.b.col(unused).setZero();
    }
    for (Index passes : {Index(1), Index(3)}) {
      OnlineUpdateOptions options;
      options.passes = passes;
      options.positive = positive;
      options.threads = trial % 2 == 0 ? 1 : 2;
      Matrix expected = p.dictionary;
      for (Index pass = 0; pass < passes; ++pass)
        for (Index k = 0; k < K; ++k)
          if (p.a(k, k) > options.min_curvature)
            reference_atom_step(p.a, p.b, expected, k, positive);
      Matrix D = p.dictionary;
      dictlearn::online_dictionary_update(p.a, p.b, D, options);
      INFO("trial=" << trial << " d=" << d << " K=" << K << " n=" << n << " passes=" << passes);
      CHECK((D - expected).cwiseAbs().maxCoeff() <= 1e-12);
    }
  }
}

TEST_CASE("online update gives bitwise the same dictionary for 1, 2 and 3 threads", "[online]") {
  Random random(102);
  for (const Index d : {Index(64), Index(256), Index(300), Index(517)}) {
    Problem p = random_problem(d, 37, 50, random);
    OnlineUpdateOptions options;
    options.passes = 2;
    Matrix one = p.dictionary;
    dictlearn::online_dictionary_update(p.a, p.b, one, options);
    for (int threads : {2, 3}) {
      options.threads = threads;
      Matrix more = p.dictionary;
      dictlearn::online_dictionary_update(p.a, p.b, more, options);
      INFO("d=" << d << " threads=" << threads);
      CHECK(more == one);
    }
  }
}

TEST_CASE("online update reads only A's upper triangle when told so, with the same bits",
          "[online]") {
  Random random(103);
  // Full register tiles, partial row and atom blocks, the per-atom path (positive), and
  // several threads: every way the products take their weights.
  struct Shape {
    Index d, K;
    bool positive;
    int threads;
  };
  for (const Shape shape :
       {Shape{64, 256, false, 1}, Shape{37, 29, false, 1}, Shape{300, 45, false, 2},
        Shape{20, 19, true, 1}, Shape{256, 64, true, 2}, Shape{5, 3, false, 1}}) {
    Problem p = random_problem(shape.d, shape.K, 60, random, shape.positive);
    // Exactly symmetric, as the trainer's A (a GEMM's C C^T may differ across the diagonal
    // in the last bit).
    p.a.triangularView<Eigen::StrictlyLower>() = p.a.transpose();
    OnlineUpdateOptions options;
    options.passes = 2;
    options.positive = shape.positive;
    options.threads = shape.threads;
    Matrix from_full = p.dictionary;
    dictlearn::online_dictionary_update(p.a, p.b, from_full, options);
    // A stale lower triangle: NaN would spread into D if any of it were read.
    Matrix upper = p.a;
    for (Index j = 0; j < shape.K; ++j)
      for (Index i = j + 1; i < shape.K; ++i) upper(i, j) = std::nan("");
    options.a_upper_only = true;
    Matrix from_upper = p.dictionary;
    dictlearn::online_dictionary_update(upper, p.b, from_upper, options);
    INFO("d=" << shape.d << " K=" << shape.K << " positive=" << shape.positive
              << " threads=" << shape.threads);
    CHECK(from_upper == from_full);
  }
}

TEST_CASE("surrogate_objective is 0.5 Tr(D^T D A) - Tr(D^T B)", "[online]") {
  Random random(7);
  const Problem p = random_problem(5, 4, 20, random);
  const Matrix& D = p.dictionary;
  const double expected = 0.5 * (D.transpose() * D * p.a).trace() - (D.transpose() * p.b).trace();
  CHECK(surrogate_objective(p.a, p.b, D) == Approx(expected).epsilon(1e-13));
  // It is the lasso-free part of 0.5 ||X - D C||^2 / n up to a constant:
  // 0.5 Tr(X^T X)/n - Tr(D^T B) + 0.5 Tr(D^T D A).
  const Matrix c = sparse_codes(4, 30, 0.5, random), x = gaussian(5, 30, random);
  const Matrix a = c * c.transpose() / 30.0, b = x * c.transpose() / 30.0;
  const double loss = 0.5 * (x - D * c).squaredNorm() / 30.0;
  CHECK(surrogate_objective(a, b, D) + 0.5 * x.squaredNorm() / 30.0 == Approx(loss).epsilon(1e-12));
}

TEST_CASE("every BCD atom step and every pass decreases the surrogate", "[online]") {
  Random random(202);
  int steps = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const Index d = 2 + Index(random.below(8)), K = 1 + Index(random.below(10));
    const Index n = 2 + Index(random.below(30));
    const bool positive = trial % 2 == 1;
    Problem p = random_problem(d, K, n, random, positive);
    INFO("trial=" << trial << " d=" << d << " K=" << K << " n=" << n << " positive=" << positive);
    // Atom by atom (reference steps, which the previous test ties to the library).
    Matrix D = p.dictionary;
    double before = surrogate_objective(p.a, p.b, D);
    for (Index k = 0; k < K; ++k) {
      if (!(p.a(k, k) > 1e-12)) continue;
      reference_atom_step(p.a, p.b, D, k, positive);
      const double after = surrogate_objective(p.a, p.b, D);
      CHECK(after <= before + 1e-12 * (1.0 + std::abs(before)));
      before = after;
      ++steps;
    }
    // Pass by pass with the library.
    OnlineUpdateOptions options;
    options.positive = positive;
    D = p.dictionary;
    before = surrogate_objective(p.a, p.b, D);
    for (int pass = 0; pass < 5; ++pass) {
      dictlearn::online_dictionary_update(p.a, p.b, D, options);
      const double after = surrogate_objective(p.a, p.b, D);
      CHECK(after <= before + 1e-12 * (1.0 + std::abs(before)));
      before = after;
      for (Index k = 0; k < K; ++k) CHECK(D.col(k).norm() <= 1.0 + 1e-12);
      if (positive) CHECK(D.minCoeff() >= 0.0);
    }
  }
  CHECK(steps > 500);
}

TEST_CASE("each BCD atom step is the exact minimiser over the ball for that atom", "[online]") {
  // With one atom the problem is min 0.5 A ||d||^2 - b^T d over ||d|| <= 1 (and d >= 0):
  // no feasible point may do better than one library pass.
  Random random(303);
  for (int trial = 0; trial < 40; ++trial) {
    const Index d = 2 + Index(random.below(6));
    const bool positive = trial % 2 == 1;
    Matrix a(1, 1);
    a(0, 0) = 0.05 + 2.0 * random.uniform();
    const Matrix b = gaussian(d, 1, random);
    Matrix D = feasible_dictionary(d, 1, random, positive);
    OnlineUpdateOptions options;
    options.positive = positive;
    dictlearn::online_dictionary_update(a, b, D, options);
    const double best = surrogate_objective(a, b, D);
    INFO("trial=" << trial);
    for (int probe = 0; probe < 200; ++probe) {
      Matrix other = feasible_dictionary(d, 1, random, positive);
      if (probe % 2) other = 0.5 * (other + D);  // also probe near the answer
      CHECK(surrogate_objective(a, b, other) >= best - 1e-12);
    }
  }
}

TEST_CASE("atoms without curvature are left unchanged, the others still move", "[online]") {
  Random random(404);
  const Index d = 6, K = 7, n = 40;
  Matrix c = sparse_codes(K, n, 0.4, random);
  c.row(2).setZero();  // A_22 = 0 and row/column 2 of A are zero
  c.row(5) *= 1e-8;    // A_55 ~ 1e-17 < min_curvature
  const Matrix x = gaussian(d, n, random);
  const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
  REQUIRE(a(2, 2) == 0.0);
  REQUIRE(a(5, 5) > 0.0);
  REQUIRE(a(5, 5) < 1e-12);
  Matrix D0 = gaussian(d, K, random);
  D0.col(2) *= 3.0;  // even an infeasible atom is not touched
  for (bool positive : {false, true}) {
    OnlineUpdateOptions options;
    options.passes = 4;
    options.positive = positive;
    Matrix D = D0;
    dictlearn::online_dictionary_update(a, b, D, options);
    CHECK(D.col(2) == D0.col(2));
    CHECK(D.col(5) == D0.col(5));
    for (Index k : {0, 1, 3, 4, 6}) {
      CHECK((D.col(k) - D0.col(k)).norm() > 1e-6);
      CHECK(D.col(k).norm() <= 1.0 + 1e-12);
      if (positive) CHECK(D.col(k).minCoeff() >= 0.0);
    }
  }
}

TEST_CASE("many BCD passes reach the projected optimality conditions", "[online]") {
  // X = D_true C with atoms of norm 0.5 (interior solution) and 2 (on the sphere), plus
  // a little noise: at the minimiser, for every atom k with gradient g_k = D a_k - b_k,
  //   ||d_k|| < 1  =>  g_k = 0,        ||d_k|| = 1  =>  g_k = -mu d_k, mu >= 0.
  Random random(505);
  for (int trial = 0; trial < 5; ++trial) {
    const Index d = 12, K = 8, n = 400;
    Matrix truth = gaussian(d, K, random);
    for (Index k = 0; k < K; ++k) truth.col(k) *= (k % 2 ? 2.0 : 0.5) / truth.col(k).norm();
    const Matrix c = sparse_codes(K, n, 0.4, random);
    const Matrix x = truth * c + 0.01 * gaussian(d, n, random);
    const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
    Matrix D = feasible_dictionary(d, K, random, false);
    OnlineUpdateOptions options;
    options.passes = 300;
    dictlearn::online_dictionary_update(a, b, D, options);
    // A fixed point: one more pass changes nothing measurable.
    Matrix again = D;
    options.passes = 1;
    dictlearn::online_dictionary_update(a, b, again, options);
    INFO("trial=" << trial);
    CHECK((again - D).cwiseAbs().maxCoeff() <= 1e-11);
    const Matrix gradient = D * a - b;
    Index interior = 0, boundary = 0;
    for (Index k = 0; k < K; ++k) {
      INFO("atom " << k << " norm " << D.col(k).norm());
      if (D.col(k).norm() < 1.0 - 1e-9) {
        ++interior;
        CHECK(gradient.col(k).norm() <= 1e-9);
        CHECK(k % 2 == 0);  // one of the short true atoms
      } else {
        ++boundary;
        CHECK(D.col(k).norm() <= 1.0 + 1e-12);
        const double mu = -gradient.col(k).dot(D.col(k));
        CHECK(mu >= 0.0);
        CHECK((gradient.col(k) + mu * D.col(k)).norm() <= 1e-9);
      }
    }
    CHECK(interior == K / 2);
    CHECK(boundary == K / 2);
  }
}

TEST_CASE("positive BCD fixed point satisfies the nonnegative projected KKT conditions",
          "[online]") {
  // Fixed point of d_k = P(d_k - g_k / A_kk), P the projection onto the nonnegative part of
  // the unit ball, is the optimality condition of the convex constrained problem.
  Random random(606);
  const Index d = 10, K = 6, n = 300;
  const Matrix c = sparse_codes(K, n, 0.4, random);
  const Matrix x = gaussian(d, n, random);
  const Matrix a = c * c.transpose() / double(n), b = x * c.transpose() / double(n);
  Matrix D = feasible_dictionary(d, K, random, true);
  OnlineUpdateOptions options;
  options.passes = 300;
  options.positive = true;
  dictlearn::online_dictionary_update(a, b, D, options);
  CHECK(D.minCoeff() >= 0.0);
  const Matrix gradient = D * a - b;
  for (Index k = 0; k < K; ++k) {
    // Nonnegative KKT: on the support g_k + mu d_k = 0; off it g_k >= 0 (mu >= 0).
    const double norm = D.col(k).norm();
    const double mu = norm > 1.0 - 1e-9 ? -gradient.col(k).dot(D.col(k)) : 0.0;
    INFO("atom " << k << " norm " << norm << " mu " << mu);
    CHECK(mu >= -1e-12);
    for (Index i = 0; i < d; ++i) {
      if (D(i, k) > 1e-12)
        CHECK(std::abs(gradient(i, k) + mu * D(i, k)) <= 1e-9);
      else
        CHECK(gradient(i, k) >= -1e-9);
    }
  }
}
