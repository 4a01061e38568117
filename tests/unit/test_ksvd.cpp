// K-SVD: the sparse atom sweep against a dense reference of Rubinstein's approximate K-SVD,
// the residual kept in step, monotone atom steps, the replacement of unused atoms, and the
// trainer: atom recovery on synthetic data, a non-increasing objective, unit columns,
// determinism and its option checks.
#include <Eigen/Dense>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include "dictlearn/data/synthetic.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/update/ksvd.hpp"
#include "test_support.hpp"

namespace {

using namespace dictlearn;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

// K x n codes with exactly s nonzeros per column (random support, values of magnitude in
// [0.5, 1.5] with random signs).
Matrix random_codes(Index K, Index n, Index s, Rng& rng) {
  Matrix c = Matrix::Zero(K, n);
  for (Index j = 0; j < n; ++j)
    for (Index placed = 0; placed < s;) {
      const Index k = rng.below(K);
      if (c(k, j) != 0.0) continue;
      c(k, j) = (0.5 + rng.uniform()) * (rng.uniform() < 0.5 ? -1.0 : 1.0);
      ++placed;
    }
  return c;
}

// Rubinstein, Zibulevsky, Elad (2008), Algorithm 5, with explicit dense matrices: for each
// atom with users I, D_k = 0, g = C_{k,I}^T, E = X_I - D C_I, d = E g / ||E g||, g = E^T d.
// The support pattern is the one at the start of the sweep; unused atoms are skipped.
// Sweeps the atoms [0, last) (last < 0: all).
void reference_sweep(const Matrix& x, Matrix& D, Matrix& C, Index last = -1) {
  const Matrix pattern = C;
  for (Index k = 0; k < (last < 0 ? D.cols() : last); ++k) {
    std::vector<Index> users;
    for (Index j = 0; j < x.cols(); ++j)
      if (pattern(k, j) != 0.0) users.push_back(j);
    if (users.empty()) continue;
    const Index m = Index(users.size());
    Matrix xi(x.rows(), m), ci(C.rows(), m);
    for (Index i = 0; i < m; ++i) {
      xi.col(i) = x.col(users[size_t(i)]);
      ci.col(i) = C.col(users[size_t(i)]);
    }
    D.col(k).setZero();
    const Vector g = ci.row(k).transpose();
    const Matrix e = xi - D * ci;
    Vector atom = e * g;
    atom.normalize();
    const Vector g_new = e.transpose() * atom;
    D.col(k) = atom;
    for (Index i = 0; i < m; ++i) C(k, users[size_t(i)]) = g_new(i);
  }
}

struct Problem {
  Matrix x, D, C;
};

// Noisy samples of a hidden dictionary, coded on a perturbed dictionary.
Problem random_problem(Index d, Index K, Index n, std::uint64_t seed) {
  Rng rng(seed);
  const Matrix truth = random_dictionary(d, K, rng);
  Problem p;
  p.C = random_codes(K, n, 3, rng);
  p.x = truth * p.C;
  for (Index j = 0; j < n; ++j) p.x.col(j) += 0.05 * rng.gaussian_vector(d);
  p.D = truth;
  for (Index k = 0; k < K; ++k)
    p.D.col(k) = (truth.col(k) + 0.3 * rng.gaussian_vector(d)).normalized();
  return p;
}

double max_abs(const Matrix& m) { return m.size() == 0 ? 0.0 : m.cwiseAbs().maxCoeff(); }

SyntheticOptions recovery_data() {
  SyntheticOptions data;
  data.samples = 4000;
  data.dim = 20;
  data.atoms = 40;
  data.sparsity = 3;
  data.snr_db = 30;
  data.seed = 5;
  return data;
}

TrainOptions ksvd_training(Index atoms, Index epochs) {
  TrainOptions options;
  options.atoms = atoms;
  options.coder.kind = CoderKind::omp;
  options.coder.nonzeros = 3;
  options.epochs = epochs;
  options.seed = 7;
  options.threads = 1;
  options.chunk_rows = 1000;
  return options;
}

}  // namespace

TEST_CASE("atom codes convert between dense and by-atom forms", "[ksvd]") {
  Rng rng(1);
  const Matrix dense = random_codes(9, 30, 2, rng);
  const AtomCodes codes = atom_codes_from_dense(dense);
  CHECK(codes.atoms() == 9);
  CHECK(codes.nonzeros() == 60);
  for (Index k = 0; k < 9; ++k)
    for (Index p = codes.start[size_t(k)] + 1; p < codes.start[size_t(k) + 1]; ++p)
      CHECK(codes.samples[size_t(p) - 1] < codes.samples[size_t(p)]);
  CHECK(dense_codes(codes, 30) == dense);
}

TEST_CASE("K-SVD sweep equals the dense approximate K-SVD and keeps R = X - D C", "[ksvd]") {
  Communicator comm(MPI_COMM_SELF);
  for (std::uint64_t seed : {11u, 12u, 13u}) {
    Problem p = random_problem(12, 20, 300, seed);
    Matrix residual = p.x - p.D * p.C;
    const double before = residual.squaredNorm();
    AtomCodes codes = atom_codes_from_dense(p.C);
    Matrix D = p.D;
    KsvdOptions options;
    options.nonzeros = 3;
    const KsvdSweepResult sweep = ksvd_update_atoms(comm, p.x, residual, codes, D, options);
    CHECK(sweep.replaced == 0);

    Matrix D_ref = p.D, C_ref = p.C;
    reference_sweep(p.x, D_ref, C_ref);
    const Matrix C = dense_codes(codes, p.x.cols());
    INFO("seed " << seed);
    CHECK(max_abs(D - D_ref) < 1e-12);
    CHECK(max_abs(C - C_ref) < 1e-12);
    // The incrementally updated residual matches a recomputation.
    CHECK(max_abs(residual - (p.x - D * C)) < 1e-12);
    CHECK(max_abs(D.colwise().norm().array() - 1.0) < 1e-14);
    CHECK(residual.squaredNorm() < before);
  }
}

TEST_CASE("every K-SVD atom step does not increase the residual energy", "[ksvd]") {
  // One atom step at a time: a sweep over codes in which only atom k has users.
  Communicator comm(MPI_COMM_SELF);
  Problem p = random_problem(10, 16, 200, 21);
  Matrix D = p.D, C = p.C;
  KsvdOptions options;
  options.nonzeros = 3;
  options.replacement.enabled = false;
  double energy = (p.x - D * C).squaredNorm();
  for (Index k = 0; k < D.cols(); ++k) {
    Matrix only_k = Matrix::Zero(C.rows(), C.cols());
    only_k.row(k) = C.row(k);
    AtomCodes codes = atom_codes_from_dense(only_k);
    Matrix residual = p.x - D * C;
    ksvd_update_atoms(comm, p.x, residual, codes, D, options);
    C.row(k) = dense_codes(codes, C.cols()).row(k);
    const double next = (p.x - D * C).squaredNorm();
    CHECK(next <= energy * (1.0 + 1e-12));
    energy = next;
  }
}

TEST_CASE("K-SVD replaces unused atoms by the worst-represented samples", "[ksvd]") {
  Communicator comm(MPI_COMM_SELF);
  Problem p = random_problem(10, 12, 100, 31);
  p.C.row(4).setZero();  // atoms 4 and 9 are used by no sample
  p.C.row(9).setZero();
  const Matrix start_residual = p.x - p.D * p.C;
  KsvdOptions options;
  options.nonzeros = 3;

  SECTION("replaced") {
    Matrix D = p.D, residual = start_residual;
    AtomCodes codes = atom_codes_from_dense(p.C);
    const KsvdSweepResult sweep = ksvd_update_atoms(comm, p.x, residual, codes, D, options);
    CHECK(sweep.replaced == 2);
    // Reference: the residual when atom k's turn comes (the dense sweep of atoms < k),
    // its largest column; the sample taken for atom 4 is not taken again for atom 9.
    const auto worst_at = [&](Index k, Index excluded) {
      Matrix D_k = p.D, C_k = p.C;
      reference_sweep(p.x, D_k, C_k, k);
      Vector energies = (p.x - D_k * C_k).colwise().squaredNorm().transpose();
      if (excluded >= 0) energies(excluded) = -1.0;
      Index worst = 0;
      energies.maxCoeff(&worst);
      return worst;
    };
    const Index worst4 = worst_at(4, -1), worst9 = worst_at(9, worst4);
    CHECK(max_abs(D.col(4) - p.x.col(worst4).normalized()) < 1e-14);
    CHECK(max_abs(D.col(9) - p.x.col(worst9).normalized()) < 1e-14);
    CHECK(worst4 != worst9);
    Matrix D_ref = p.D, C_ref = p.C;
    reference_sweep(p.x, D_ref, C_ref);  // skips atoms 4 and 9
    // All other atoms as in the dense reference (replaced atoms have no codes).
    for (Index k = 0; k < 12; ++k)
      if (k != 4 && k != 9) CHECK(max_abs(D.col(k) - D_ref.col(k)) < 1e-12);
    CHECK(max_abs(residual - (p.x - D * dense_codes(codes, 100))) < 1e-12);
  }
  SECTION("kept when replacement is off") {
    options.replacement.enabled = false;
    Matrix D = p.D, residual = start_residual;
    AtomCodes codes = atom_codes_from_dense(p.C);
    CHECK(ksvd_update_atoms(comm, p.x, residual, codes, D, options).replaced == 0);
    CHECK(D.col(4) == p.D.col(4));
    CHECK(D.col(9) == p.D.col(9));
  }
}

TEST_CASE("K-SVD draws replacement candidates from a seeded pool", "[ksvd]") {
  Communicator comm(MPI_COMM_SELF);
  Problem p = random_problem(10, 12, 200, 41);
  p.C.row(6).setZero();  // atom 6 is used by no sample
  const Matrix start_residual = p.x - p.D * p.C;
  KsvdOptions options;
  options.nonzeros = 3;
  options.pool = 20;  // about 20 of the 200 samples per sweep
  const auto replacement = [&](Index index) {
    Matrix D = p.D, residual = start_residual;
    AtomCodes codes = atom_codes_from_dense(p.C);
    const KsvdSweep sweep{1000, index, 99};
    CHECK(ksvd_update_atoms(comm, p.x, residual, codes, D, options, sweep).replaced == 1);
    return Vector(D.col(6));
  };
  // The atom is one of the samples, the same for the same sweep, and the pools of other
  // sweeps pick other samples (the global worst would be picked every time).
  std::vector<Vector> picks;
  for (Index index = 0; index < 6; ++index) picks.push_back(replacement(index));
  CHECK(replacement(3) == picks[3]);
  Index distinct = 0;
  for (size_t i = 0; i < picks.size(); ++i) {
    bool is_sample = false;
    for (Index j = 0; j < p.x.cols(); ++j)
      is_sample = is_sample || max_abs(picks[i] - p.x.col(j).normalized()) < 1e-14;
    CHECK(is_sample);
    bool seen = false;
    for (size_t k = 0; k < i; ++k) seen = seen || picks[k] == picks[i];
    distinct += seen ? 0 : 1;
  }
  CHECK(distinct >= 3);
}

TEST_CASE("K-SVD recovers the atoms of synthetic data", "[ksvd][train]") {
  // Measured on this problem: 72.5% of the atoms after 10 epochs, 92.5% after 15, 97.5%
  // after 20, 100% from 25 on (0.1 s).
  Communicator comm(MPI_COMM_SELF);
  SyntheticSource source(recovery_data());
  const TrainOptions options = ksvd_training(40, 30);
  const auto begin = std::chrono::steady_clock::now();
  const TrainResult result = train_ksvd(comm, source, options);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  const double recovered = fraction_recovered(source.true_dictionary(), result.dictionary);
  std::printf(
      "K-SVD d=20 K=40 s=3 N=4000 30 dB: %.1f%% of atoms recovered after %zu epochs"
      " (%.2f s); objective %.4g -> %.4g\n",
      100.0 * recovered, result.history.size(), seconds, result.history.front().objective,
      result.history.back().objective);
  CHECK(recovered >= 0.95);
  REQUIRE(result.history.size() == 30);
  CHECK(result.state.epoch == 30);
  CHECK(result.dictionary.rows() == 20);
  CHECK(result.dictionary.cols() == 40);
  CHECK(max_abs(result.dictionary.colwise().norm().array() - 1.0) < 1e-12);
  // Each sweep cannot increase the energy (tested above), but OMP's greedy re-coding with
  // the new D can: on other data seeds the epoch objective rose by up to 3% now and then.
  // On this problem it never rises (measured: by at most 4e-16 relative in 60 epochs).
  for (size_t e = 1; e < result.history.size(); ++e) {
    INFO("epoch " << e + 1);
    CHECK(result.history[e].objective <= result.history[e - 1].objective * (1.0 + 1e-9));
  }
  CHECK(result.history.back().objective < 0.03 * result.history.front().objective);
  for (const EpochRecord& record : result.history) {
    CHECK(record.mean_nonzeros <= 3.0);
    CHECK(record.mean_nonzeros > 2.9);
    CHECK(record.samples_per_second > 0.0);
  }
}

TEST_CASE("K-SVD training is deterministic and thread-count independent", "[ksvd][train]") {
  Communicator comm(MPI_COMM_SELF);
  SyntheticOptions data = recovery_data();
  data.samples = 1500;
  SyntheticSource source(data);
  TrainOptions options = ksvd_training(40, 3);
  const TrainResult first = train_ksvd(comm, source, options);
  const TrainResult second = train_ksvd(comm, source, options);
  CHECK(first.dictionary == second.dictionary);
  options.threads = 2;
  const TrainResult threaded = train_ksvd(comm, source, options);
  CHECK(threaded.dictionary == first.dictionary);
  // Other read and coding blocks: the same arithmetic per sample in our code, but the BLAS
  // is free to sum a block's edge columns in another order. One Zen 3 build gave D
  // differing in the last bits here (not reproduced since, cause not pinned down), so
  // agreement to rounding; the thread count above stays bitwise.
  options.chunk_rows = 333;
  const TrainResult blocked = train_ksvd(comm, source, options);
  CHECK((blocked.dictionary - first.dictionary).cwiseAbs().maxCoeff() < 1e-10);
  // A given initial dictionary is used (after normalisation).
  const Matrix init = 3.0 * first.dictionary;
  options.epochs = 1;
  const TrainResult from_init = train_ksvd(comm, source, options, init);
  CHECK(from_init.history.size() == 1);
  CHECK(from_init.history[0].objective < first.history[0].objective);
}

TEST_CASE("K-SVD training stops on the callback and on tol", "[ksvd][train]") {
  Communicator comm(MPI_COMM_SELF);
  SyntheticOptions data = recovery_data();
  data.samples = 800;
  SyntheticSource source(data);
  TrainOptions options = ksvd_training(40, 10);
  Index calls = 0;
  const TrainResult stopped =
      train_ksvd(comm, source, options, Matrix(), [&](const EpochRecord& record) {
        ++calls;
        CHECK(record.epoch == calls);
        return record.epoch < 2;
      });
  CHECK(calls == 2);
  CHECK(stopped.history.size() == 2);
  CHECK(stopped.state.epoch == 10);
  options.tol = 0.5;  // a relative change of the objective below 50% ends the run
  CHECK(train_ksvd(comm, source, options).history.size() < 10);
}

TEST_CASE("K-SVD training refuses options it does not support", "[ksvd][train]") {
  Communicator comm(MPI_COMM_SELF);
  SyntheticOptions data = recovery_data();
  data.samples = 200;
  SyntheticSource source(data);
  const auto refuses = [&](TrainOptions options, const std::string& fragment) {
    try {
      train_ksvd(comm, source, options);
      FAIL("no error for " << fragment);
    } catch (const Error& error) {
      INFO(error.what());
      CHECK(std::string(error.what()).find(fragment) != std::string::npos);
    }
  };
  TrainOptions options = ksvd_training(10, 1);
  options.coder.kind = CoderKind::lars;
  refuses(options, "coder must be omp");
  options = ksvd_training(10, 1);
  options.coder.nonzeros = 0;
  refuses(options, "nonzeros");
  options = ksvd_training(10, 1);
  options.checkpoint.path = "ksvd.h5";
  refuses(options, "not checkpointed");
  options = ksvd_training(10, 1);
  options.positive_dict = true;
  refuses(options, "positive-dict");
  options = ksvd_training(10, 1);
  try {
    train_ksvd(comm, source, options, Matrix::Ones(20, 9));
    FAIL("no error for a wrong initial dictionary");
  } catch (const Error& error) {
    CHECK(std::string(error.what()).find("dictionary-init") != std::string::npos);
  }
}
