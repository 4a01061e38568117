// LCA (Rozell et al. 2008): with the soft threshold its fixed point is the lasso solution
// (compared with LARS); with the hard threshold every active potential satisfies the
// fixed-point equation u = b - (G - I) a with |u| > lambda and every inactive |u| <= lambda;
// positive (rectified) codes; the step budget and the tolerance stop; float agrees.
#include <catch2/catch.hpp>

#include "dictlearn/coding/lars.hpp"
#include "dictlearn/coding/lca.hpp"
#include "test_support.hpp"

using dictlearn::Index;
using dictlearn::LarsLasso;
using dictlearn::LarsOptions;
using dictlearn::Lca;
using dictlearn::LcaOptions;
using dictlearn::Matrix;
using dictlearn::Vector;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

TEST_CASE("soft-threshold LCA converges to the lasso solution of LARS", "[lca]") {
  Rng rng(606);
  for (int trial = 0; trial < 12; ++trial) {
    const Index d = 12 + trial, K = 2 * d;
    const Matrix D = random_dictionary(d, K, rng);
    const Vector x = rng.gaussian_vector(d);
    const Matrix G = D.transpose() * D;
    const Vector b = D.transpose() * x;
    for (bool positive : {false, true}) {
      const double lambda = 0.3 * (positive ? b.maxCoeff() : b.cwiseAbs().maxCoeff());
      if (!(lambda > 0)) continue;
      LarsOptions lars_options;
      lars_options.lambda = lambda;
      lars_options.positive = positive;
      Vector exact(K), code(K);
      LarsLasso<double>(K).solve(G, b, lars_options, exact);
      LcaOptions options;
      options.lambda = lambda;
      options.positive = positive;
      options.dt = 0.2;
      options.steps = 200000;
      options.tol = 1e-13;
      Lca<double> lca(K);
      lca.solve(G, b, options, code);
      INFO("trial=" << trial << " positive=" << positive << " steps=" << lca.steps());
      CHECK(lca.steps() < options.steps);  // stopped by the tolerance
      CHECK((code - exact).cwiseAbs().maxCoeff() <= 1e-8 * (1.0 + exact.cwiseAbs().maxCoeff()));
      if (positive) CHECK(code.minCoeff() >= 0.0);
    }
  }
}

TEST_CASE("hard-threshold LCA stops at a fixed point of its dynamics", "[lca]") {
  Rng rng(607);
  const Index d = 20, K = 40;
  const Matrix D = random_dictionary(d, K, rng);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector b = D.transpose() * x;
  LcaOptions options;
  options.threshold = LcaOptions::Threshold::hard;
  options.lambda = 0.25 * b.cwiseAbs().maxCoeff();
  options.steps = 100000;
  options.tol = 1e-13;
  Lca<double> lca(K);
  Vector code(K);
  const Index nonzeros = lca.solve(G, b, options, code);
  REQUIRE(nonzeros > 0);
  // At the fixed point u = b - (G - I) a; a = u on the support (|u| > lambda), 0 elsewhere.
  const Vector u = b - (G * code - code);
  for (Index k = 0; k < K; ++k) {
    if (code(k) != 0.0) {
      CHECK(std::abs(u(k) - code(k)) <= 1e-9);
      CHECK(std::abs(code(k)) > options.lambda);
    } else {
      CHECK(std::abs(u(k)) <= options.lambda + 1e-9);
    }
  }
}

TEST_CASE("LCA honours its step budget, warm starts and float arithmetic", "[lca]") {
  Rng rng(608);
  const Index d = 16, K = 32;
  const Matrix D = random_dictionary(d, K, rng);
  const Vector x = rng.gaussian_vector(d);
  const Matrix G = D.transpose() * D;
  const Vector b = D.transpose() * x;
  LcaOptions options;
  options.lambda = 0.2 * b.cwiseAbs().maxCoeff();
  options.steps = 7;
  options.tol = 0.0;
  Lca<double> lca(K);
  Vector code(K);
  lca.solve(G, b, options, code);
  CHECK(lca.steps() == 7);

  // Started from the converged code, the dynamics stay there and stop at once.
  options.steps = 200000;
  options.tol = 1e-13;
  lca.solve(G, b, options, code);
  const Index cold_steps = lca.steps();
  const Vector converged = code;
  options.warm_start = true;
  lca.solve(G, b, options, code);
  CHECK(lca.steps() < cold_steps / 10);
  CHECK((code - converged).cwiseAbs().maxCoeff() <= 1e-9);

  options.warm_start = false;
  options.tol = 1e-6;
  Lca<float> single(K);
  Eigen::VectorXf float_code(K);
  single.solve(G.cast<float>(), b.cast<float>(), options, float_code);
  CHECK((float_code.cast<double>() - converged).cwiseAbs().maxCoeff() <= 1e-3);
}
