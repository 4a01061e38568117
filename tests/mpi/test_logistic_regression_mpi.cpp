// Logistic regression on 1, 2 and 3 ranks: each rank holds a contiguous share of one data
// set (generated identically everywhere); the model equals the single-process model to
// solver accuracy (the biases up to a common shift) and is bitwise identical on every
// rank, for dense and sparse features, also when a rank holds no samples. Errors found on
// one rank are thrown on all. The label and CSR readers hand every rank its own rows.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "../unit/test_support.hpp"
#include "dictlearn/classify/logistic_regression.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/io/label_reader.hpp"
#include "dictlearn/io/output_writer.hpp"
#include "dictlearn/parallel/communicator.hpp"

using namespace dictlearn;

namespace {

struct Data {
  Matrix x;  // d x n
  std::vector<int> y;
};

/// 4 overlapping Gaussian classes in 10 dimensions; about half the entries are zeroed so
/// the same data serve as sparse codes.
Data make_data(Index n) {
  const Index d = 10;
  const int classes = 4;
  Random random(21);
  Matrix means = 1.5 * testing::gaussian(d, classes, random);
  Data data{testing::gaussian(d, n, random), std::vector<int>(size_t(n))};
  for (Index j = 0; j < n; ++j) {
    const int c = int(random.below(classes));
    data.y[size_t(j)] = c;
    data.x.col(j) += means.col(c);
    for (Index i = 0; i < d; ++i)
      if (std::abs(data.x(i, j)) < 0.7) data.x(i, j) = 0.0;
  }
  return data;
}

/// Columns [first, last) and their labels.
Data share(const Data& all, Index first, Index last) {
  return {all.x.middleCols(first, last - first),
          std::vector<int>(all.y.begin() + first, all.y.begin() + last)};
}

std::pair<Index, Index> rows_of(Index n, int rank, int ranks) {
  return {n * rank / ranks, n * (rank + 1) / ranks};
}

/// True on every rank iff `values` is bitwise equal on all ranks of `comm`.
bool identical_on_all_ranks(const Communicator& comm, const Matrix& values) {
  Matrix root = values;
  comm.broadcast(root.data(), int(root.size()), 0);
  long long differs = root == values ? 0 : 1;
  comm.allreduce_max(&differs, 1);
  return differs == 0;
}

Matrix stacked(const LogisticModel& model) {
  Matrix all(model.weights.rows(), model.weights.cols() + 1);
  all << model.weights, model.bias;
  return all;
}

// The model as the softmax sees it: the biases are not penalised, and moving every class's
// bias by the same amount changes no probability, so the fits may drift along that shift
// (a build without FMA, -DDICTLEARN_NATIVE=OFF, moved them by 1.4e-8 between 1 and 2 ranks).
// Compared with their mean over the classes removed.
Matrix identifiable(const LogisticModel& model) {
  Matrix all = stacked(model);
  all.col(all.cols() - 1).array() -= model.bias.mean();
  return all;
}

// Each fit stops at ||grad||_inf <= 1e-10 (tight()); with the l2 weight 1e-2 that leaves
// it up to sqrt(44 parameters) x 1e-10 / 1e-2 ~ 7e-8 from the optimum, so two fits whose sums
// are ordered differently agree to ~1e-7 at worst (1.1e-8 measured without FMA; with FMA
// the same runs agree to 1e-8).
constexpr double kModelTolerance = 1e-7;

LogisticRegressionOptions tight() {
  LogisticRegressionOptions options;
  options.l2 = 1e-2;
  options.tolerance = 1e-10;
  return options;
}

/// The message of the Error thrown by `f`, or "".
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const AgreedError& error) {
    return std::string("agreed: ") + error.what();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

}  // namespace

TEST_CASE("distributed logistic regression equals the single-process model", "[mpi][classify]") {
  const Communicator world(MPI_COMM_WORLD);
  const Communicator self(MPI_COMM_SELF);
  const Data all = make_data(600);
  const auto [first, last] = rows_of(600, world.rank(), world.size());
  const Data mine = share(all, first, last);
  const LogisticFit reference = fit_logistic_regression(self, all.x, all.y, tight());
  REQUIRE(reference.converged());

  SECTION("dense features") {
    const LogisticFit fit = fit_logistic_regression(world, mine.x, mine.y, tight());
    CHECK(fit.converged());
    CHECK(fit.samples == 600);
    CHECK((identifiable(fit.model) - identifiable(reference.model)).lpNorm<Eigen::Infinity>() <
          kModelTolerance);
    CHECK(fit.loss == Approx(reference.loss).epsilon(1e-12));
    CHECK(identical_on_all_ranks(world, stacked(fit.model)));
    // Accuracy summed over ranks = the single-process accuracy.
    const ClassificationReport report =
        evaluate_predictions(world, predict(fit.model, mine.x), mine.y, 4);
    const ClassificationReport whole =
        evaluate_predictions(self, predict(reference.model, all.x), all.y, 4);
    CHECK(report.samples == 600);
    CHECK(report.confusion == whole.confusion);
    CHECK(report.accuracy > 0.5);
  }
  SECTION("sparse features") {
    const SparseMatrix codes = mine.x.sparseView();
    const LogisticFit fit = fit_logistic_regression(world, codes, mine.y, tight());
    CHECK(fit.converged());
    CHECK((identifiable(fit.model) - identifiable(reference.model)).lpNorm<Eigen::Infinity>() <
          kModelTolerance);
    CHECK(identical_on_all_ranks(world, stacked(fit.model)));
  }
  SECTION("the same number of iterations and the same loss on every rank") {
    std::vector<double> losses;
    const LogisticFit fit =
        fit_logistic_regression(world, mine.x, mine.y, tight(),
                                [&](const LogisticProgress& p) { losses.push_back(p.loss); });
    Matrix trace = Eigen::Map<Matrix>(losses.data(), Index(losses.size()), 1);
    double count = double(losses.size()), most = count;
    world.allreduce_sum(&count, 1);
    CHECK(count == most * world.size());
    CHECK(identical_on_all_ranks(world, trace));
    CHECK(Index(losses.size()) == fit.iterations + 1);
  }
}

TEST_CASE("ranks without samples take part", "[mpi][classify]") {
  const Communicator world(MPI_COMM_WORLD);
  const Communicator self(MPI_COMM_SELF);
  const Data all = make_data(90);
  // Everything on the last rank; the others hold d x 0 blocks.
  const bool last_rank = world.rank() == world.size() - 1;
  const Data mine = last_rank ? all : share(all, 0, 0);
  const LogisticFit reference = fit_logistic_regression(self, all.x, all.y, tight());
  const LogisticFit dense = fit_logistic_regression(world, mine.x, mine.y, tight());
  const SparseMatrix codes = mine.x.sparseView();
  const LogisticFit sparse = fit_logistic_regression(world, codes, mine.y, tight());
  CHECK(dense.samples == 90);
  CHECK((identifiable(dense.model) - identifiable(reference.model)).lpNorm<Eigen::Infinity>() <
        kModelTolerance);
  CHECK((identifiable(sparse.model) - identifiable(reference.model)).lpNorm<Eigen::Infinity>() <
        kModelTolerance);
  CHECK(identical_on_all_ranks(world, stacked(dense.model)));
  CHECK(predict(dense.model, mine.x).size() == mine.y.size());
}

TEST_CASE("a bad label or value on one rank fails on every rank", "[mpi][classify][errors]") {
  const Communicator world(MPI_COMM_WORLD);
  const Data all = make_data(60);
  const auto [first, last] = rows_of(60, world.rank(), world.size());
  Data mine = share(all, first, last);
  LogisticRegressionOptions options;
  options.classes = 4;
  const bool culprit = world.rank() == world.size() - 1;
  Data bad_label = mine;
  if (culprit) bad_label.y[0] = 9;
  CHECK_THAT(error_of([&] { fit_logistic_regression(world, bad_label.x, bad_label.y, options); }),
             Catch::StartsWith("agreed: ") && Catch::Contains("label 9"));
  Data bad_value = mine;
  if (culprit) bad_value.x(2, 1) = INFINITY;
  CHECK_THAT(error_of([&] { fit_logistic_regression(world, bad_value.x, bad_value.y, options); }),
             Catch::StartsWith("agreed: ") && Catch::Contains("non-finite"));
  // The ranks still work together afterwards.
  CHECK(fit_logistic_regression(world, mine.x, mine.y, options).samples == 60);
}

TEST_CASE("labels and CSR codes are read row block by row block", "[mpi][classify][io]") {
  const Communicator world(MPI_COMM_WORLD);
  double pid = world.is_root() ? double(getpid()) : 0.0;
  world.broadcast(&pid, 1, 0);
  const std::string path = "classify_mpi_" + std::to_string((long long)pid) + ".h5";
  const Data all = make_data(50);
  if (world.is_root()) {
    // Labels (int64) and the codes as CSR rows of the N x d matrix, written serially.
    const std::string temporary = path + ".tmp.test";
    write_integer_vector(temporary, "/y", std::vector<long long>(all.y.begin(), all.y.end()),
                         false);
    std::vector<double> data;
    std::vector<long long> indices, indptr = {0};
    for (Index j = 0; j < all.x.cols(); ++j) {
      for (Index i = 0; i < all.x.rows(); ++i)
        if (all.x(i, j) != 0.0) data.push_back(all.x(i, j)), indices.push_back(i);
      indptr.push_back((long long)data.size());
    }
    write_real_vector(temporary, "/codes/data", data, true);
    write_integer_vector(temporary, "/codes/indices", indices, true);
    write_integer_vector(temporary, "/codes/indptr", indptr, true);
    OutputWriter writer = OutputWriter::reopen(temporary, path);
    writer.set_attribute("/codes", "shape", std::vector<long long>{50, all.x.rows()});
    writer.commit();
  }
  world.barrier();
  const auto [first, last] = rows_of(50, world.rank(), world.size());
  LabelReader labels(world, DatasetLocation::parse(path, "/y"));
  CHECK(labels.rows() == 50);
  CHECK(labels.read_rows(first, last - first) ==
        std::vector<int>(all.y.begin() + first, all.y.begin() + last));
  CHECK(labels.read_all() == all.y);
  const DatasetLocation codes_location = DatasetLocation::parse(path, "/codes");
  CHECK(CsrReader::is_csr(world, codes_location));
  CsrReader codes(world, codes_location);
  CHECK(codes.rows() == 50);
  CHECK(codes.cols() == all.x.rows());
  const SparseMatrix block = codes.read_rows(first, last - first);
  CHECK(Matrix(block) == all.x.middleCols(first, last - first));
  // A missing dataset is the same error on every rank.
  CHECK_THAT(error_of([&] { LabelReader(world, DatasetLocation::parse(path + ":/labels")); }),
             Catch::StartsWith("agreed: ") && Catch::Contains("'/labels' not found"));
  world.barrier();
  if (world.is_root()) std::remove(path.c_str());
}
