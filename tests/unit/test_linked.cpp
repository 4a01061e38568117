// Linked dictionaries: the per-modality constraint, the stacked source, and training on
// two modalities that share one code (cross-modal reconstruction from one modality).
#include <catch2/catch.hpp>
#include <cmath>

#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/data/linked_source.hpp"
#include "dictlearn/encode/encode.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/trainer.hpp"
#include "dictlearn/update/atom_constraint.hpp"
#include "dictlearn/update/online_update.hpp"
#include "test_support.hpp"

using namespace dictlearn;
using dictlearn::testing::random_dictionary;
using dictlearn::testing::Rng;

namespace {

// Samples held in memory (d x N), for tests.
class MatrixSource : public SampleSource {
 public:
  explicit MatrixSource(Matrix data, std::string name = "matrix")
      : data_(std::move(data)), name_(std::move(name)) {}
  Index samples() const override { return data_.cols(); }
  Index dim() const override { return data_.rows(); }
  std::string describe() const override { return name_; }
  void read_rows(Index begin, Index count, double* out) override {
    Eigen::Map<Matrix>(out, data_.rows(), count) = data_.middleCols(begin, count);
  }

 private:
  Matrix data_;
  std::string name_;
};

// N samples of two modalities x1 = Phi1 c, x2 = Phi2 c sharing sparse codes c (s nonzeros).
struct TwoModalities {
  Matrix phi1, phi2, codes, x1, x2;
};

TwoModalities make_two_modalities(Index N, Index d1, Index d2, Index K, Index s, Rng& rng) {
  TwoModalities m;
  m.phi1 = random_dictionary(d1, K, rng);
  m.phi2 = random_dictionary(d2, K, rng);
  m.codes = Matrix::Zero(K, N);
  for (Index j = 0; j < N; ++j)
    for (Index t = 0; t < s; ++t) m.codes(rng.below(K), j) = 1.0 + rng.uniform();
  m.x1 = m.phi1 * m.codes;
  m.x2 = m.phi2 * m.codes;
  return m;
}

std::vector<Modality> two_sources(const TwoModalities& m, double w1, double w2) {
  std::vector<Modality> modalities(2);
  modalities[0].name = "first";
  modalities[0].source = std::make_unique<MatrixSource>(m.x1, "first");
  modalities[0].weight = w1;
  modalities[1].name = "second";
  modalities[1].source = std::make_unique<MatrixSource>(m.x2, "second");
  modalities[1].weight = w2;
  return modalities;
}

}  // namespace

TEST_CASE("atom constraint: each block projected onto its own ball, fixed rows kept", "[linked]") {
  AtomBlock a{"a", 0, 2, 1.0};
  AtomBlock b{"b", 2, 2, std::sqrt(2.0)};
  AtomBlock c{"c", 4, 2, 0.5, true, Matrix::Identity(2, 2) * 0.5};
  const AtomConstraint constraint({a, b, c});
  CHECK(constraint.rows() == 6);
  double atom[6] = {3.0, 4.0, 0.3, 0.4, 7.0, 7.0};
  constraint.project(1, atom, 6);
  CHECK(atom[0] == Approx(0.6));  // (3, 4) / 5
  CHECK(atom[1] == Approx(0.8));
  CHECK(atom[2] == 0.3);  // inside its ball: unchanged
  CHECK(atom[3] == 0.4);
  CHECK(atom[4] == 0.0);  // fixed: column 1 of 0.5 I
  CHECK(atom[5] == 0.5);
  double other[6] = {0.0, 0.0, 0.3, 0.4, 1.0, 1.0};
  constraint.normalize(0, other, 6);
  CHECK(other[0] == 0.0);  // a zero block stays zero
  CHECK(other[2] == Approx(0.3 / 0.5 * std::sqrt(2.0)));
  CHECK(other[3] == Approx(0.4 / 0.5 * std::sqrt(2.0)));
  CHECK(other[4] == 0.5);
  CHECK(other[5] == 0.0);
  CHECK_THROWS_WITH(AtomConstraint({a, c}), Catch::Contains("'c'"));  // a gap at row 2
}

TEST_CASE("online update with one block equals the plain unit-ball update", "[linked]") {
  Rng rng(3);
  const Index d = 12, K = 9;
  Matrix D = random_dictionary(d, K, rng);
  const Matrix codes = Matrix::Random(K, 50);
  const Matrix x = Matrix::Random(d, 50);
  const Matrix A = codes * codes.transpose(), B = x * codes.transpose();
  Matrix plain = D, blocked = D;
  OnlineUpdateOptions options;
  online_dictionary_update(A, B, plain, options);
  const AtomConstraint one({AtomBlock{"all", 0, d, 1.0}});
  options.constraint = &one;
  online_dictionary_update(A, B, blocked, options);
  CHECK((plain - blocked).cwiseAbs().maxCoeff() < 1e-14);
}

TEST_CASE("linked source stacks the weighted, per-modality normalised samples", "[linked]") {
  Rng rng(5);
  const TwoModalities m = make_two_modalities(40, 6, 4, 5, 2, rng);
  LinkedSampleSource source(two_sources(m, 1.0, 0.25), Normalization::unit);
  REQUIRE(source.samples() == 40);
  REQUIRE(source.dim() == 10);
  Matrix stacked(10, 7);
  source.read_rows(30, 7, stacked.data());
  for (Index j = 0; j < 7; ++j) {
    CHECK(stacked.col(j).head(6).norm() == Approx(1.0));
    CHECK(stacked.col(j).tail(4).norm() == Approx(0.5));  // sqrt(0.25) x unit
    CHECK((stacked.col(j).head(6) - m.x1.col(30 + j).normalized()).norm() < 1e-14);
  }
  const AtomConstraint constraint = source.constraint(5);
  REQUIRE(constraint.blocks().size() == 2);
  CHECK(constraint.blocks()[1].begin == 6);
  CHECK(constraint.blocks()[1].radius == Approx(0.5));

  std::vector<Modality> mismatched = two_sources(m, 1.0, 1.0);
  mismatched[1].source = std::make_unique<MatrixSource>(m.x2.leftCols(39), "short");
  CHECK_THROWS_WITH(LinkedSampleSource(std::move(mismatched), Normalization::none),
                    Catch::Contains("'second' has 39"));
}

TEST_CASE("a linked dictionary learned from both modalities reconstructs one from the other",
          "[linked]") {
  Rng rng(7);
  const Index N = 3000, d1 = 20, d2 = 12, K = 16;
  const TwoModalities m = make_two_modalities(N, d1, d2, K, 2, rng);
  LinkedSampleSource source(two_sources(m, 1.0, 0.5), Normalization::none);
  TrainOptions options;
  options.atoms = K;
  options.coder.kind = CoderKind::lars;
  options.coder.lambda = 0.01;
  options.batch_size = 128;
  options.epochs = 8;
  options.threads = 1;
  options.seed = 1;
  options.constraint = source.constraint(K);
  const Communicator comm(MPI_COMM_SELF);
  const TrainResult result = train(comm, source, options);
  const Matrix& D = result.dictionary;
  for (Index k = 0; k < K; ++k) {
    CHECK(D.col(k).head(d1).norm() <= 1.0 + 1e-12);
    CHECK(D.col(k).tail(d2).norm() <= std::sqrt(0.5) + 1e-12);
  }
  // Code held-out samples from the first modality alone, rebuild the second.
  const TwoModalities test = make_two_modalities(200, d1, d2, K, 2, rng);
  const Matrix truth_codes = test.codes;
  const Matrix x1 = m.phi1 * truth_codes, x2 = m.phi2 * truth_codes;
  const Matrix phi1 = D.topRows(d1), phi2 = D.bottomRows(d2) / std::sqrt(0.5);
  Matrix codes = Matrix::Zero(K, x1.cols());
  CoderOptions coder;
  coder.kind = CoderKind::lars;
  coder.lambda = 0.001;
  const Matrix gram = phi1.transpose() * phi1;
  const Matrix correlations = phi1.transpose() * x1;
  const Vector sqnorms = x1.colwise().squaredNorm().transpose();
  BatchEncoder encoder(coder, K, d1, 1);
  encoder.encode(phi1, gram, x1, correlations, sqnorms, codes);
  const double error = (phi2 * codes - x2).norm() / x2.norm();
  INFO("relative cross-modal error " << error);
  CHECK(error < 0.1);
}

TEST_CASE("a fixed driver block stays the scaled identity through training", "[linked]") {
  Rng rng(9);
  const Index N = 600, K = 8;
  const TwoModalities m = make_two_modalities(N, 10, 4, K, 2, rng);
  Matrix drivers = Matrix::Zero(K, N);
  for (Index j = 0; j < N; ++j) drivers((j % 4) * 2, j) = drivers((j % 4) * 2 + 1, j) = 1.0;
  std::vector<Modality> modalities = two_sources(m, 1.0, 1.0);
  modalities.resize(1);
  Modality driver;
  driver.name = "drivers";
  driver.source = std::make_unique<MatrixSource>(drivers, "drivers");
  driver.weight = 0.3;
  driver.driver = driver.fixed = true;
  modalities.push_back(std::move(driver));
  LinkedSampleSource source(std::move(modalities), Normalization::none);
  for (const UpdateKind update : {UpdateKind::online, UpdateKind::mod, UpdateKind::hebbian}) {
    TrainOptions options;
    options.atoms = K;
    options.coder.kind = CoderKind::lars;
    options.coder.lambda = 0.05;
    options.batch_size = 60;
    options.epochs = 2;
    options.threads = 1;
    options.update = update;
    options.constraint = source.constraint(K);
    const Communicator comm(MPI_COMM_SELF);
    const TrainResult result = train(comm, source, options);
    const Matrix block = result.dictionary.bottomRows(K);
    INFO("update " << to_string(update));
    CHECK((block - std::sqrt(0.3) * Matrix::Identity(K, K)).cwiseAbs().maxCoeff() == 0.0);
    for (Index k = 0; k < K; ++k) CHECK(result.dictionary.col(k).head(10).norm() <= 1.0 + 1e-12);
  }
}
