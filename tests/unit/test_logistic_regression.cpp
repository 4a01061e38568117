// Multinomial logistic regression (classify/logistic_regression.hpp) on one process: the
// gradient against finite differences, optimality of the fit (gradient ~ 0, every
// perturbation costs), agreement with an independent Newton solve of the equivalent
// binary problem, accuracy on separable and overlapping blobs, sparse = dense, the
// confusion matrix, agreed errors; and the label and CSR readers (io/label_reader.hpp).
#include <unistd.h>

#include <Eigen/Cholesky>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "dictlearn/classify/logistic_regression.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/io/label_reader.hpp"
#include "dictlearn/io/output_writer.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "test_support.hpp"

using namespace dictlearn;

namespace {

/// n samples of C Gaussian blobs in d dimensions: class c has mean `spread` * m_c with
/// m_c a fixed random unit vector and unit noise; labels cycle through the classes.
struct Blobs {
  Matrix x;  // d x n
  std::vector<int> y;
};

Blobs make_blobs(Index n, Index d, int classes, double spread, std::uint64_t seed) {
  Random random(seed);
  Matrix means = testing::gaussian(d, classes, random);
  for (int c = 0; c < classes; ++c) means.col(c).normalize();
  Blobs blobs{testing::gaussian(d, n, random), std::vector<int>(size_t(n))};
  for (Index j = 0; j < n; ++j) {
    const int c = int(j % classes);
    blobs.y[size_t(j)] = c;
    blobs.x.col(j) += spread * means.col(c);
  }
  return blobs;
}

/// A sparse copy of `x` keeping the entries with |value| > threshold (zeros elsewhere in the
/// returned dense twin, so both describe the same data).
SparseMatrix sparsify(Matrix& x, double threshold) {
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i)
      if (std::abs(x(i, j)) <= threshold) x(i, j) = 0.0;
  return x.sparseView();
}

LogisticModel random_model(Index classes, Index d, std::uint64_t seed) {
  Random random(seed);
  return {0.5 * testing::gaussian(classes, d, random), 0.5 * testing::gaussian(classes, 1, random)};
}

template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  return "";
}

/// A file name in the temporary directory, removed at the end of the scope.
class TempFile {
 public:
  explicit TempFile(const std::string& stem) {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("dictlearn_test_" + stem + "_" + std::to_string(::getpid()) + "_" +
              std::to_string(counter++) + ".h5"))
                .string();
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

TEST_CASE("the gradient matches central finite differences", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  Blobs blobs = make_blobs(60, 7, 4, 1.5, 1);
  const SparseMatrix sparse = sparsify(blobs.x, 0.5);
  const LogisticModel model = random_model(4, 7, 2);
  const double l2 = 0.3;
  for (bool use_sparse : {false, true}) {
    LogisticModel gradient;
    const auto f = [&](const LogisticModel& m) {
      return use_sparse ? logistic_objective(comm, m, sparse, blobs.y, l2)
                        : logistic_objective(comm, m, blobs.x, blobs.y, l2);
    };
    if (use_sparse)
      logistic_objective(comm, model, sparse, blobs.y, l2, &gradient);
    else
      logistic_objective(comm, model, blobs.x, blobs.y, l2, &gradient);
    const double h = 1e-6;
    for (Index c = 0; c < 4; ++c) {
      for (Index k = 0; k < 7; ++k) {
        LogisticModel plus = model, minus = model;
        plus.weights(c, k) += h;
        minus.weights(c, k) -= h;
        const double numeric = (f(plus) - f(minus)) / (2 * h);
        CHECK(gradient.weights(c, k) == Approx(numeric).margin(1e-8));
      }
      LogisticModel plus = model, minus = model;
      plus.bias(c) += h;
      minus.bias(c) -= h;
      CHECK(gradient.bias(c) == Approx((f(plus) - f(minus)) / (2 * h)).margin(1e-8));
    }
    // The bias gradient sums to zero (softmax is invariant under b -> b + t 1).
    CHECK(std::abs(gradient.bias.sum()) < 1e-14);
  }
}

TEST_CASE("the loss is the mean cross-entropy plus the l2 term", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  // Two samples, two features, three classes, computed by hand.
  Matrix x(2, 2);
  x << 1.0, -2.0, 0.5, 3.0;
  const std::vector<int> y = {2, 0};
  LogisticModel model{Matrix(3, 2), Vector(3)};
  model.weights << 1, 2, -1, 0, 0.5, -0.5;
  model.bias << 0.1, -0.2, 0.3;
  double expected = 0.0;
  for (int j = 0; j < 2; ++j) {
    const Vector z = model.weights * x.col(j) + model.bias;
    expected += std::log(z.array().exp().sum()) - z(y[size_t(j)]);
  }
  expected = expected / 2 + 0.5 * 0.25 * model.weights.squaredNorm();
  CHECK(logistic_objective(comm, model, x, y, 0.25) == Approx(expected).epsilon(1e-14));
  // Huge scores: log-sum-exp must not overflow.
  LogisticModel big = model;
  big.weights *= 1e3;
  CHECK(std::isfinite(logistic_objective(comm, big, x, y, 0.0)));
}

TEST_CASE("the fit is optimal: zero gradient and every perturbation costs", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  const Blobs blobs = make_blobs(300, 5, 3, 1.0, 3);
  LogisticRegressionOptions options;
  options.l2 = 1e-2;
  options.tolerance = 1e-9;
  const LogisticFit fit = fit_logistic_regression(comm, blobs.x, blobs.y, options);
  REQUIRE(fit.converged());
  CHECK(fit.samples == 300);
  CHECK(fit.model.classes() == 3);
  CHECK(fit.model.features() == 5);
  LogisticModel gradient;
  const double f = logistic_objective(comm, fit.model, blobs.x, blobs.y, options.l2, &gradient);
  CHECK(f == Approx(fit.loss).epsilon(1e-14));
  CHECK(gradient.weights.lpNorm<Eigen::Infinity>() <= 1e-9);
  CHECK(gradient.bias.lpNorm<Eigen::Infinity>() <= 1e-9);
  // Stationarity of W: l2 W = -(1/N) (P - Y) X^T, so the class weights sum to zero; the
  // bias started at zero stays on sum_c b_c = 0.
  CHECK(fit.model.weights.colwise().sum().lpNorm<Eigen::Infinity>() < 1e-8);
  CHECK(std::abs(fit.model.bias.sum()) < 1e-10);
  Random random(4);
  for (int trial = 0; trial < 20; ++trial) {
    LogisticModel moved = fit.model;
    const double size = trial < 10 ? 1e-3 : 1e-1;
    moved.weights += size * testing::gaussian(3, 5, random);
    moved.bias += size * testing::gaussian(3, 1, random);
    CHECK(logistic_objective(comm, moved, blobs.x, blobs.y, options.l2) > f);
  }
}

TEST_CASE("two classes agree with an independent Newton solve of binary logistic regression",
          "[classify]") {
  // With W = [w0; w1] at the optimum w0 = -w1 (the class weights sum to zero), the softmax
  // problem is binary logistic regression in w = w1 - w0, beta = b1 - b0 with penalty
  //   (l2/2)(|w0|^2 + |w1|^2) = (l2/4) |w|^2.
  const Communicator comm(MPI_COMM_SELF);
  const Blobs blobs = make_blobs(200, 4, 2, 1.2, 5);
  const double l2 = 0.05;
  const Index d = 4, n = 200;
  // Newton on theta = [w; beta]: f = (1/n) sum log(1 + exp(-s_i (w'x_i + beta))) + (l2/4)|w|^2.
  Vector theta = Vector::Zero(d + 1);
  Matrix xa(d + 1, n);
  xa.topRows(d) = blobs.x;
  xa.row(d).setOnes();
  for (int iteration = 0; iteration < 50; ++iteration) {
    Vector g = Vector::Zero(d + 1);
    Matrix h = Matrix::Zero(d + 1, d + 1);
    for (Index i = 0; i < n; ++i) {
      const double p = 1.0 / (1.0 + std::exp(-theta.dot(xa.col(i))));  // P(class 1)
      g += (p - double(blobs.y[size_t(i)])) * xa.col(i) / double(n);
      h += p * (1 - p) * xa.col(i) * xa.col(i).transpose() / double(n);
    }
    g.head(d) += 0.5 * l2 * theta.head(d);
    h.topLeftCorner(d, d).diagonal().array() += 0.5 * l2;
    theta -= h.ldlt().solve(g);
    if (g.lpNorm<Eigen::Infinity>() < 1e-15) break;
  }
  LogisticRegressionOptions options;
  options.l2 = l2;
  options.tolerance = 1e-11;
  const LogisticFit fit = fit_logistic_regression(comm, blobs.x, blobs.y, options);
  REQUIRE(fit.converged());
  const Vector w = fit.model.weights.row(1) - fit.model.weights.row(0);
  const double beta = fit.model.bias(1) - fit.model.bias(0);
  CHECK((w - theta.head(d)).lpNorm<Eigen::Infinity>() < 1e-8);
  CHECK(std::abs(beta - theta(d)) < 1e-8);
}

TEST_CASE("separable blobs are learnt exactly, overlapping ones partly", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  LogisticRegressionOptions options;
  options.l2 = 1e-3;
  options.classes = 3;
  const Blobs far = make_blobs(300, 6, 3, 12.0, 7);
  const LogisticFit separable = fit_logistic_regression(comm, far.x, far.y, options);
  CHECK(separable.converged());
  const ClassificationReport train =
      evaluate_predictions(comm, predict(separable.model, far.x), far.y, 3);
  CHECK(train.accuracy == 1.0);
  const Blobs near = make_blobs(600, 6, 3, 1.0, 8);
  const LogisticFit overlapping = fit_logistic_regression(comm, near.x, near.y, options);
  CHECK(overlapping.converged());
  const ClassificationReport report =
      evaluate_predictions(comm, predict(overlapping.model, near.x), near.y, 3);
  CHECK(report.accuracy > 0.45);  // better than chance (1/3)
  CHECK(report.accuracy < 0.95);  // but the blobs overlap
  CHECK(report.samples == 600);
  CHECK(report.confusion.sum() == 600);
  CHECK(report.correct == report.confusion.trace());
  // Held-out samples of the same distribution: the first 300 train, the rest test.
  const Matrix x_train = near.x.leftCols(300), x_test = near.x.rightCols(300);
  const std::vector<int> y_train(near.y.begin(), near.y.begin() + 300),
      y_test(near.y.begin() + 300, near.y.end());
  const LogisticFit half = fit_logistic_regression(comm, x_train, y_train, options);
  const double test_accuracy =
      evaluate_predictions(comm, predict(half.model, x_test), y_test, 3).accuracy;
  CHECK(test_accuracy > 0.45);
}

TEST_CASE("sparse and dense features give the same model", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  Blobs blobs = make_blobs(250, 12, 4, 2.0, 9);
  const SparseMatrix sparse = sparsify(blobs.x, 0.8);  // about 40% nonzero
  LogisticRegressionOptions options;
  options.l2 = 1e-2;
  options.tolerance = 1e-11;
  const LogisticFit dense_fit = fit_logistic_regression(comm, blobs.x, blobs.y, options);
  const LogisticFit sparse_fit = fit_logistic_regression(comm, sparse, blobs.y, options);
  REQUIRE(dense_fit.converged());
  REQUIRE(sparse_fit.converged());
  CHECK((dense_fit.model.weights - sparse_fit.model.weights).lpNorm<Eigen::Infinity>() < 1e-9);
  CHECK((dense_fit.model.bias - sparse_fit.model.bias).lpNorm<Eigen::Infinity>() < 1e-9);
  CHECK(dense_fit.loss == Approx(sparse_fit.loss).epsilon(1e-12));
  CHECK(predict(dense_fit.model, blobs.x) == predict(sparse_fit.model, sparse));
  CHECK((decision_scores(dense_fit.model, blobs.x) - decision_scores(dense_fit.model, sparse))
            .lpNorm<Eigen::Infinity>() < 1e-12);
}

TEST_CASE("max-iter stops the solver; progress is reported; warm starts continue", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  const Blobs far = make_blobs(100, 3, 2, 3.0, 10);
  LogisticRegressionOptions options;
  options.l2 = 0.0;
  options.tolerance = 0.0;  // never met
  options.max_iterations = 15;
  std::vector<Index> seen;
  std::vector<double> losses;
  const LogisticFit fit =
      fit_logistic_regression(comm, far.x, far.y, options, [&](const LogisticProgress& p) {
        seen.push_back(p.iteration);
        losses.push_back(p.loss);
      });
  CHECK(fit.stop == LogisticStop::max_iterations);
  CHECK(fit.iterations == 15);
  CHECK(fit.evaluations >= 16);
  REQUIRE(!seen.empty());
  CHECK(seen.front() == 0);
  CHECK(seen.back() == fit.iterations);
  for (size_t i = 1; i < losses.size(); ++i) CHECK(losses[i] <= losses[i - 1] + 1e-15);
  // A warm start from the result continues from its loss.
  LogisticRegressionOptions more = options;
  more.max_iterations = 1;
  const LogisticFit next = fit_logistic_regression(comm, far.x, far.y, more, {}, &fit.model);
  CHECK(next.loss <= fit.loss);
}

TEST_CASE("the confusion matrix counts true class by predicted class", "[classify]") {
  const Communicator comm(MPI_COMM_SELF);
  const std::vector<int> truth = {0, 0, 1, 1, 1, 2}, predicted = {0, 1, 1, 1, 2, 2};
  const ClassificationReport report = evaluate_predictions(comm, predicted, truth, 3);
  CHECK(report.samples == 6);
  CHECK(report.correct == 4);
  CHECK(report.accuracy == Approx(4.0 / 6.0));
  Eigen::Matrix<long long, Eigen::Dynamic, Eigen::Dynamic> expected(3, 3);
  expected << 1, 1, 0, 0, 2, 1, 0, 0, 1;
  CHECK(report.confusion == expected);
  CHECK_THAT(error_of([&] {
               evaluate_predictions(comm, {0, 3}, {0, 1}, 3);
             }),
             Catch::Contains("outside [0, 3)"));
  // Ties go to the lowest class.
  LogisticModel tie{Matrix::Zero(3, 2), Vector::Zero(3)};
  CHECK(predict(tie, Matrix::Ones(2, 2)) == std::vector<int>{0, 0});
}

TEST_CASE("bad options and data are errors that name the problem", "[classify][errors]") {
  const Communicator comm(MPI_COMM_SELF);
  Blobs blobs = make_blobs(20, 3, 2, 1.0, 11);
  LogisticRegressionOptions options;
  options.l2 = -1;
  CHECK_THAT(error_of([&] { fit_logistic_regression(comm, blobs.x, blobs.y, options); }),
             Catch::Contains("l2 must be"));
  options = {};
  options.classes = 2;
  std::vector<int> labels = blobs.y;
  labels[3] = 2;
  CHECK_THAT(error_of([&] { fit_logistic_regression(comm, blobs.x, labels, options); }),
             Catch::Contains("label 2 of local sample 3 is outside [0, 2)"));
  labels.pop_back();
  CHECK_THAT(error_of([&] { fit_logistic_regression(comm, blobs.x, labels, options); }),
             Catch::Contains("19 labels for 20 samples"));
  std::vector<int> one_class(20, 0);
  options.classes = 0;
  CHECK_THAT(error_of([&] { fit_logistic_regression(comm, blobs.x, one_class, options); }),
             Catch::Contains("at least 2 classes"));
  blobs.x(1, 5) = std::nan("");
  CHECK_THAT(error_of([&] { fit_logistic_regression(comm, blobs.x, blobs.y, options); }),
             Catch::Contains("non-finite"));
  CHECK_THAT(
      error_of([&] { fit_logistic_regression(comm, Matrix(3, 0), std::vector<int>{}, options); }),
      Catch::Contains("no samples"));
}

TEST_CASE("labels are read from integer or whole-number float datasets", "[classify][io]") {
  const Communicator comm(MPI_COMM_SELF);
  TempFile file("labels");
  write_integer_vector(file.path(), "/y", {2, 0, 1, 1, 5}, false);
  write_real_vector(file.path(), "/group/yf", {1.0, 0.0, 3.0}, true);
  write_real_vector(file.path(), "/half", {1.0, 0.5}, true);
  write_integer_vector(file.path(), "/negative", {1, -1}, true);
  write_integer_vector(file.path(), "/empty", {}, true);
  {
    LabelReader reader(comm, DatasetLocation::parse(file.path() + ":/y", "/labels"));
    CHECK(reader.rows() == 5);
    CHECK(reader.read_all() == std::vector<int>{2, 0, 1, 1, 5});
    CHECK(reader.read_rows(1, 3) == std::vector<int>{0, 1, 1});
    CHECK(reader.read_rows(4, 0).empty());
  }
  CHECK(LabelReader(comm, DatasetLocation::parse(file.path() + ":/group/yf")).read_all() ==
        std::vector<int>{1, 0, 3});
  const auto error = [&](const std::string& dataset) {
    return error_of([&] {
      LabelReader reader(comm, DatasetLocation{file.path(), dataset});
      reader.read_all();
    });
  };
  CHECK_THAT(error("/half"), Catch::Contains("non-integer value (0.5) at row 1"));
  CHECK_THAT(error("/negative"), Catch::Contains("negative label (-1) at row 1"));
  CHECK_THAT(error("/empty"), Catch::Contains("are empty"));
  CHECK_THAT(error("/missing"),
             Catch::Contains("dataset '/missing' not found in '" + file.path() + "'"));
  CHECK_THAT(error("/nothere/y"), Catch::Contains("not found"));
  CHECK_THAT(error("/group"), Catch::Contains("is not a dataset"));
  CHECK_THAT(error_of([&] {
               LabelReader(comm, DatasetLocation{"/nonexistent/y.h5", "/y"});
             }),
             Catch::Contains("'/nonexistent/y.h5' does not exist"));
  // N x 1 is accepted, N x 2 is not.
  TempFile matrices("label_matrices");
  write_matrix_file(matrices.path(), "/column", Matrix::Constant(1, 4, 3.0));  // 4 x 1
  CHECK(LabelReader(comm, DatasetLocation{matrices.path(), "/column"}).read_all() ==
        std::vector<int>{3, 3, 3, 3});
  TempFile wide("label_wide");
  write_matrix_file(wide.path(), "/wide", Matrix::Zero(2, 4));  // 4 x 2
  CHECK_THAT(error_of([&] {
               LabelReader(comm, DatasetLocation{wide.path(), "/wide"});
             }),
             Catch::Contains("4 x 2 values; expected one label per sample"));
}

namespace {
/// Writes a CSR group /codes (data, indices, indptr, optionally shape) to `path`.
void write_csr(const std::string& path, const std::vector<double>& data,
               const std::vector<long long>& indices, const std::vector<long long>& indptr,
               long long columns) {
  const std::string temporary = path + ".tmp.csr";
  write_real_vector(temporary, "/codes/data", data, false);
  write_integer_vector(temporary, "/codes/indices", indices, true);
  write_integer_vector(temporary, "/codes/indptr", indptr, true);
  write_real_vector(temporary, "/dense", {1.0, 2.0}, true);
  OutputWriter writer = OutputWriter::reopen(temporary, path);
  if (columns > 0)
    writer.set_attribute("/codes", "shape",
                         std::vector<long long>{(long long)indptr.size() - 1, columns});
  writer.commit();
}
}  // namespace

TEST_CASE("CSR codes are read as sparse columns", "[classify][io]") {
  const Communicator comm(MPI_COMM_SELF);
  TempFile file("csr");
  // 4 x 5: row 0 = {1: 1.5, 3: -2}, row 1 empty, row 2 = {4: 3, 0: 0.5} (unsorted), row 3 = {2: 1}
  write_csr(file.path(), {1.5, -2.0, 3.0, 0.5, 1.0}, {1, 3, 4, 0, 2}, {0, 2, 2, 4, 5}, 5);
  const DatasetLocation location = DatasetLocation::parse(file.path(), "/codes");
  CHECK(CsrReader::is_csr(comm, location));
  CHECK_FALSE(CsrReader::is_csr(comm, DatasetLocation{file.path(), "/dense"}));
  CHECK_THAT(error_of([&] {
               CsrReader::is_csr(comm, DatasetLocation{file.path(), "/nope"});
             }),
             Catch::Contains("'/nope' not found in '" + file.path() + "'"));
  CsrReader reader(comm, location);
  CHECK(reader.rows() == 4);
  CHECK(reader.cols() == 5);
  CHECK(reader.nonzeros() == 5);
  Matrix expected = Matrix::Zero(5, 4);
  expected(1, 0) = 1.5;
  expected(3, 0) = -2.0;
  expected(4, 2) = 3.0;
  expected(0, 2) = 0.5;
  expected(2, 3) = 1.0;
  const SparseMatrix all = reader.read_rows(0, 4);
  CHECK(Matrix(all) == expected);
  const SparseMatrix middle = reader.read_rows(1, 2);
  CHECK(Matrix(middle) == expected.middleCols(1, 2));
  CHECK(middle.innerIndexPtr()[0] == 0);  // sorted within the column
  CHECK(reader.read_rows(2, 0).cols() == 0);

  // Without the shape attribute, K = 1 + the largest index.
  TempFile no_shape("csr_no_shape");
  write_csr(no_shape.path(), {1.0, 2.0}, {0, 2}, {0, 1, 2}, 0);
  CHECK(CsrReader(comm, DatasetLocation{no_shape.path(), "/codes"}).cols() == 3);
  // An index outside [0, K) names the row.
  TempFile bad("csr_bad");
  write_csr(bad.path(), {1.0, 2.0}, {0, 7}, {0, 1, 2}, 3);
  CHECK_THAT(error_of([&] {
               CsrReader(comm, DatasetLocation{bad.path(), "/codes"}).read_rows(0, 2);
             }),
             Catch::Contains("column index 7 at row 1; expected 0 <= index < 3"));
  // The shape attribute must match indptr.
  TempFile mismatch("csr_mismatch");
  write_csr(mismatch.path(), {1.0}, {0}, {0, 1}, 3);
  {
    const std::string temporary = mismatch.path() + ".tmp.again";
    std::filesystem::copy_file(mismatch.path(), temporary);
    OutputWriter writer = OutputWriter::reopen(temporary, mismatch.path());
    writer.set_attribute("/codes", "shape", std::vector<long long>{5, 3});
    writer.commit();
  }
  CHECK_THAT(error_of([&] {
               CsrReader(comm, DatasetLocation{mismatch.path(), "/codes"});
             }),
             Catch::Contains("has shape (5, 3) but indptr has 2 entries"));
}
