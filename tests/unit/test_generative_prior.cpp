// Dictionary learning under generative coefficient priors (prior/): the generator's
// backward pass against central finite differences for every layer type and the paper's
// two generators; the YAML/HDF5 builder and its error messages; the joint gradient against
// finite differences; decode recovering z on a noiseless problem (setting (1) of the paper:
// G(z) = [z; z^2; sin z], k = 3, n = 9, m = 10, A* uniform in [0, 1]) independently of how
// the samples are split; the least-squares dictionary step; a small altmin loop and a
// joint-Adam loop that drive the reconstruction error down from a perturbed dictionary.
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/gradient/optimizer.hpp"
#include "dictlearn/io/output_writer.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/prior/generative_prior.hpp"
#include "dictlearn/prior/generator_network.hpp"

using namespace dictlearn;

namespace {

using Kind = GeneratorLayer::Kind;

Matrix normal_matrix(Index rows, Index cols, Random& rng, double scale = 1.0) {
  Matrix out(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) out(i, j) = scale * rng.normal();
  return out;
}

Matrix uniform_matrix(Index rows, Index cols, Random& rng) {
  Matrix out(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) out(i, j) = rng.uniform();
  return out;
}

/// Checks backward against central differences of L(Z) = sum(V .* G(Z)), whose gradient
/// is backward(tape, V). Returns the largest relative error.
double backward_error(const GeneratorNetwork& net, const Matrix& z, Random& rng) {
  const Matrix v = normal_matrix(net.output_dim(), z.cols(), rng);
  GeneratorTape tape;
  const Matrix g = net.forward(z, tape);
  REQUIRE(g.rows() == net.output_dim());
  REQUIRE(g.cols() == z.cols());
  REQUIRE((g - net.forward(z)).norm() == 0.0);  // the taped pass computes the same G
  const Matrix grad = net.backward(tape, v);
  REQUIRE(grad.rows() == z.rows());
  REQUIRE(grad.cols() == z.cols());
  const double h = 1e-6;
  double worst = 0.0;
  for (Index j = 0; j < z.cols(); ++j)
    for (Index i = 0; i < z.rows(); ++i) {
      Matrix zp = z, zm = z;
      zp(i, j) += h;
      zm(i, j) -= h;
      const double fd =
          (v.cwiseProduct(net.forward(zp)).sum() - v.cwiseProduct(net.forward(zm)).sum()) / (2 * h);
      worst = std::max(worst, std::abs(fd - grad(i, j)) / (1.0 + std::abs(grad(i, j))));
    }
  return worst;
}

// The message of the Error thrown by `f`, or "" (and a failure) if none is thrown.
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& error) {
    return error.what();
  }
  FAIL("no Error thrown");
  return "";
}

/// A scratch directory removed at the end of the scope.
class TempDir {
 public:
  TempDir() {
    static int counter = 0;
    path_ =
        std::filesystem::temp_directory_path() /
        ("dictlearn_test_prior_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// The paper's setting (1): A* (m x n) uniform in [0, 1], Z* ~ N(0, I), Y = A* G(Z*).
struct Problem {
  GeneratorNetwork net = poly_sin_generator(3);
  Matrix a_true, z_true, y;
  Problem(Index m, Index samples, std::uint64_t seed) {
    Random rng(seed);
    a_true = uniform_matrix(m, net.output_dim(), rng);
    z_true = normal_matrix(net.input_dim(), samples, rng);
    y = a_true * net.forward(z_true);
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------
// The generator network

TEST_CASE("generator backward matches central finite differences for every layer type",
          "[prior][generator]") {
  Random rng(11);
  const Index k = 4, samples = 5;
  const Matrix z = normal_matrix(k, samples, rng);
  SECTION("elementwise layers") {
    for (Kind kind : {Kind::relu, Kind::sigmoid, Kind::tanh, Kind::square, Kind::sin}) {
      INFO(to_string(kind));
      const GeneratorNetwork net(k, {GeneratorLayer::elementwise(kind)});
      CHECK(net.output_dim() == k);
      CHECK(backward_error(net, z, rng) < 1e-7);
    }
  }
  SECTION("linear, with and without bias") {
    const Matrix w = normal_matrix(6, k, rng);
    const Vector b = normal_matrix(6, 1, rng);
    const GeneratorNetwork with_bias(k, {GeneratorLayer::linear(w, b)});
    const GeneratorNetwork without(k, {GeneratorLayer::linear(w)});
    CHECK(with_bias.output_dim() == 6);
    CHECK((with_bias.forward(z) - ((w * z).colwise() + b)).norm() < 1e-12);
    CHECK((without.forward(z) - w * z).norm() < 1e-12);
    CHECK(backward_error(with_bias, z, rng) < 1e-7);
    CHECK(backward_error(without, z, rng) < 1e-7);
  }
  SECTION("concat with nested branches, an identity branch and a multi-layer tail") {
    const Matrix w1 = normal_matrix(2, k, rng), w2 = normal_matrix(3, k, rng);
    const Matrix w3 = normal_matrix(4, 2 + k + 3 + k, rng);
    const Vector b2 = normal_matrix(3, 1, rng);
    const GeneratorNetwork net(
        k, {GeneratorLayer::concat(
                {{GeneratorLayer::linear(w1), GeneratorLayer::elementwise(Kind::tanh)},
                 {},
                 {GeneratorLayer::concat(
                     {{GeneratorLayer::elementwise(Kind::sigmoid), GeneratorLayer::linear(w2, b2)},
                      {GeneratorLayer::elementwise(Kind::sin)}})}}),
            GeneratorLayer::linear(w3), GeneratorLayer::elementwise(Kind::relu),
            GeneratorLayer::elementwise(Kind::square)});
    CHECK(net.output_dim() == 4);
    CHECK(backward_error(net, z, rng) < 1e-7);
  }
  SECTION("an empty network is the identity") {
    const GeneratorNetwork net(k, {});
    CHECK((net.forward(z) - z).norm() == 0.0);
    CHECK(backward_error(net, z, rng) < 1e-7);
  }
}

TEST_CASE("the paper's two generators: values and finite-difference gradients",
          "[prior][generator]") {
  Random rng(12);
  SECTION("setting (1): G(z) = [z; z^2; sin z]") {
    const GeneratorNetwork net = poly_sin_generator(3);
    CHECK(net.input_dim() == 3);
    CHECK(net.output_dim() == 9);
    const Matrix z = normal_matrix(3, 7, rng);
    Matrix expected(9, 7);
    expected << z, z.array().square().matrix(), z.array().sin().matrix();
    CHECK((net.forward(z) - expected).norm() < 1e-14);
    CHECK(backward_error(net, z, rng) < 1e-7);
    CHECK(net.describe() == "k=3 -> concat[{}, {square}, {sin}] -> n=9");
  }
  SECTION("setting (2): G(z) = ReLU(M z^2)") {
    const Matrix m = normal_matrix(8, 3, rng);
    const GeneratorNetwork net = relu_square_generator(m);
    CHECK(net.output_dim() == 8);
    const Matrix z = normal_matrix(3, 7, rng);
    const Matrix expected = (m * z.array().square().matrix()).cwiseMax(0.0);
    CHECK((net.forward(z) - expected).norm() < 1e-12);
    CHECK(backward_error(net, z, rng) < 1e-7);
  }
}

TEST_CASE("generator shape errors name the layer and the problem", "[prior][generator]") {
  Random rng(13);
  const Matrix w = normal_matrix(5, 3, rng);
  CHECK_THAT(
      error_of([&] {
        GeneratorNetwork(4, {GeneratorLayer::elementwise(Kind::square), GeneratorLayer::linear(w)});
      }),
      Catch::Contains("layer 1 (linear): weights are 5 x 3 (out x in) but the layer's "
                      "input has 4 rows"));
  CHECK_THAT(error_of([&] { GeneratorNetwork(3, {GeneratorLayer::linear(w, Vector::Zero(4))}); }),
             Catch::Contains("layer 0 (linear): bias has 4 entries; the weights have 5 rows"));
  CHECK_THAT(error_of([&] {
               GeneratorNetwork(4, {GeneratorLayer::concat({{}, {GeneratorLayer::linear(w)}})});
             }),
             Catch::Contains("layer 0 (concat), branch 1, layer 0 (linear): weights are 5 x 3"));
  CHECK_THAT(error_of([&] { GeneratorNetwork(3, {GeneratorLayer::concat({})}); }),
             Catch::Contains("layer 0 (concat): a concat needs at least one branch"));
  CHECK_THAT(error_of([&] { GeneratorLayer::elementwise(Kind::linear); }),
             Catch::Contains("'linear' is not an elementwise layer"));
  CHECK_THAT(error_of([&] { parse_layer_kind("softplus"); }),
             Catch::Contains("unknown layer type 'softplus'"));
  const GeneratorNetwork net = poly_sin_generator(3);
  CHECK_THAT(error_of([&] { net.forward(Matrix::Zero(2, 4)); }),
             Catch::Contains("the codes have 2 rows; the input dimension is 3"));
  GeneratorTape tape;
  net.forward(Matrix::Zero(3, 4), tape);
  CHECK_THAT(error_of([&] { net.backward(tape, Matrix::Zero(9, 5)); }),
             Catch::Contains("the gradient is 9 x 5; expected 9 x 4"));
}

TEST_CASE("generators from YAML: inline weights, HDF5 weights, and errors naming the layer",
          "[prior][generator][yaml]") {
  const Communicator comm(MPI_COMM_SELF);
  Random rng(14);
  const Matrix z = normal_matrix(3, 6, rng);

  SECTION("setting (1) as a concat of an identity, square and sin branch") {
    const GeneratorNetwork net = parse_generator(
        comm,
        "input_dim: 3\nlayers:\n  - {type: concat, branches: [[], [{type: square}], "
        "[{type: sin}]]}\n",
        "prior.yaml", "");
    CHECK((net.forward(z) - poly_sin_generator(3).forward(z)).norm() == 0.0);
  }
  SECTION("setting (2) with inline weights and bias") {
    const GeneratorNetwork net = parse_generator(comm,
                                                 "input_dim: 3\n"
                                                 "layers:\n"
                                                 "  - type: square\n"
                                                 "  - type: linear\n"
                                                 "    weights: [[1, 0, -2], [0.5, 1, 0]]\n"
                                                 "    bias: [0, -0.25]\n"
                                                 "  - {type: relu}\n",
                                                 "prior.yaml", "");
    Matrix m(2, 3);
    m << 1, 0, -2, 0.5, 1, 0;
    Vector b(2);
    b << 0, -0.25;
    const Matrix expected = ((m * z.array().square().matrix()).colwise() + b).cwiseMax(0.0);
    CHECK((net.forward(z) - expected).norm() < 1e-14);
  }
  SECTION("weights and bias from an HDF5 file next to the YAML file") {
    TempDir dir;
    const Matrix w = normal_matrix(5, 9, rng);
    const Vector b = normal_matrix(5, 1, rng);
    {
      OutputWriter writer(dir.file("weights.h5"));
      writer.write_columns_as_rows("/M", w.transpose());   // dataset (5, 9) = W, row-major
      writer.write_columns_as_rows("/b", b);               // dataset (1, 5)
      writer.write_columns_as_rows("/bt", b.transpose());  // dataset (5, 1)
      writer.commit();
    }
    std::ofstream(dir.file("prior.yaml"))
        << "input_dim: 3\n"
           "layers:\n"
           "  - {type: concat, branches: [[], [{type: square}], [{type: sin}]]}\n"
           "  - {type: linear, weights: weights.h5:/M, bias: weights.h5:/b}\n"
           "  - {type: linear, weights: [[1, 2, 3, 4, 5]], bias: [1]}\n";
    const GeneratorNetwork net = load_generator(comm, dir.file("prior.yaml"));
    Vector ones(5);
    ones << 1, 2, 3, 4, 5;
    const Matrix expected =
        ((ones.transpose() * ((w * poly_sin_generator(3).forward(z)).colwise() + b)).array() + 1)
            .matrix();
    CHECK(net.output_dim() == 1);
    CHECK((net.forward(z) - expected).norm() < 1e-12);

    std::ofstream(dir.file("transposed.yaml"))
        << "input_dim: 9\nlayers:\n  - {type: linear, weights: weights.h5:/M, bias: "
           "weights.h5:/bt}\n";
    const GeneratorNetwork same = load_generator(comm, dir.file("transposed.yaml"));
    const Matrix x = normal_matrix(9, 4, rng);
    CHECK((same.forward(x) - ((w * x).colwise() + b)).norm() < 1e-12);

    std::ofstream(dir.file("missing.yaml"))
        << "input_dim: 3\nlayers:\n  - {type: square}\n  - {type: linear, weights: "
           "weights.h5:/nope}\n";
    CHECK_THAT(error_of([&] { load_generator(comm, dir.file("missing.yaml")); }),
               Catch::Contains("missing.yaml:4: layer 1 (linear): weights: dataset '/nope' not "
                               "found"));
    std::ofstream(dir.file("shape.yaml"))
        << "input_dim: 3\nlayers:\n  - {type: linear, weights: weights.h5:/M}\n";
    CHECK_THAT(error_of([&] { load_generator(comm, dir.file("shape.yaml")); }),
               Catch::Contains("shape.yaml: layer 0 (linear): weights are 5 x 9 (out x in) but "
                               "the layer's input has 3 rows"));
    std::ofstream(dir.file("nofile.yaml"))
        << "input_dim: 3\nlayers:\n  - {type: linear, weights: absent.h5:/M}\n";
    CHECK_THAT(error_of([&] { load_generator(comm, dir.file("nofile.yaml")); }),
               Catch::Contains("layer 0 (linear): weights: input file") &&
                   Catch::Contains("absent.h5' does not exist"));
  }
  SECTION("errors name the line, the layer and the problem") {
    const auto parse = [&](const std::string& text) {
      return error_of([&] { parse_generator(comm, text, "prior.yaml", ""); });
    };
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: square}\n  - {type: softplus}\n"),
               Catch::Contains("prior.yaml:4: layer 1: unknown layer type 'softplus'"));
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: square, weights: [[1]]}\n"),
               Catch::Contains("prior.yaml:3: layer 0 (square): unknown key 'weights'"));
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: concat, branches: [[], [{kind: sin}]]}\n"),
               Catch::Contains("layer 0 (concat), branch 1, layer 0: missing 'type'"));
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: linear}\n"),
               Catch::Contains("prior.yaml:3: layer 0 (linear): a linear layer needs 'weights'"));
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: linear, weights: [[1, 2], [3]]}\n"),
               Catch::Contains("layer 0 (linear): weights: row 1 has 1 entries; row 0 has 2"));
    CHECK_THAT(parse("input_dim: 3\nlayers:\n  - {type: linear, weights: [[1, x, 3]]}\n"),
               Catch::Contains("weights[0][1]: 'x' is not a finite number"));
    CHECK_THAT(parse("input_dim: 2\nlayers:\n  - {type: linear, weights: [[1, 2, 3]]}\n"),
               Catch::Contains("layer 0 (linear): weights are 1 x 3 (out x in) but the layer's "
                               "input has 2 rows"));
    CHECK_THAT(parse("input_dim: 0\nlayers: []\n"),
               Catch::Contains("prior.yaml:1: input_dim: expected an integer >= 1"));
    CHECK_THAT(parse("layers: []\n"), Catch::Contains("prior.yaml: missing input_dim"));
    CHECK_THAT(parse("input_dim: 3\nlayer: []\n"),
               Catch::Contains("prior.yaml:2: layer: unknown key (expected input_dim, layers)"));
    CHECK_THAT(parse("input_dim: 3\nlayers: [\n"), Catch::Contains("YAML syntax error"));
    CHECK_THAT(error_of([&] { load_generator(comm, "/nonexistent/prior.yaml"); }),
               Catch::Contains("generator file '/nonexistent/prior.yaml' does not exist"));
  }
}

// ---------------------------------------------------------------------------------------
// Gradients, statistics and projections

TEST_CASE("joint loss gradient matches central finite differences in A and Z", "[prior][joint]") {
  Random rng(21);
  const Matrix m = normal_matrix(6, 3, rng);
  for (const GeneratorNetwork& net : {poly_sin_generator(3), relu_square_generator(m)}) {
    INFO(net.describe());
    const Matrix a = normal_matrix(5, net.output_dim(), rng);
    const Matrix y = normal_matrix(5, 4, rng);
    const Matrix z = normal_matrix(3, 4, rng);
    Matrix grad_a, grad_z;
    const double loss = joint_loss_gradient(a, net, y, z, &grad_a, &grad_z);
    CHECK(loss == Approx(reconstruction_error(a, net, y, z).sum()).epsilon(1e-13));
    CHECK(loss == joint_loss_gradient(a, net, y, z, nullptr, nullptr));
    const double h = 1e-6;
    double worst = 0.0;
    for (Index i = 0; i < a.size(); ++i) {
      Matrix ap = a, am = a;
      ap(i) += h;
      am(i) -= h;
      const double fd = (joint_loss_gradient(ap, net, y, z, nullptr, nullptr) -
                         joint_loss_gradient(am, net, y, z, nullptr, nullptr)) /
                        (2 * h);
      worst = std::max(worst, std::abs(fd - grad_a(i)) / (1.0 + std::abs(grad_a(i))));
    }
    for (Index i = 0; i < z.size(); ++i) {
      Matrix zp = z, zm = z;
      zp(i) += h;
      zm(i) -= h;
      const double fd = (joint_loss_gradient(a, net, y, zp, nullptr, nullptr) -
                         joint_loss_gradient(a, net, y, zm, nullptr, nullptr)) /
                        (2 * h);
      worst = std::max(worst, std::abs(fd - grad_z(i)) / (1.0 + std::abs(grad_z(i))));
    }
    CHECK(worst < 1e-6);
    // altmin_gradient from the statistics is the same dL/dA.
    AltminStatistics stats(5, net.output_dim());
    accumulate_altmin_statistics(net, y, z, stats);
    CHECK((altmin_gradient(a, stats.b, stats.c) - grad_a).norm() < 1e-10 * (1 + grad_a.norm()));
  }
}

TEST_CASE("altmin statistics add up over batches and the solve is the least-squares A",
          "[prior][altmin]") {
  const Problem problem(10, 60, 31);
  const GeneratorNetwork& net = problem.net;
  AltminStatistics whole(10, 9), parts(10, 9);
  accumulate_altmin_statistics(net, problem.y, problem.z_true, whole);
  accumulate_altmin_statistics(net, problem.y.leftCols(25), problem.z_true.leftCols(25), parts);
  accumulate_altmin_statistics(net, problem.y.rightCols(35), problem.z_true.rightCols(35), parts);
  CHECK((whole.b - parts.b).norm() < 1e-12 * whole.b.norm());
  CHECK((whole.c - parts.c).norm() < 1e-12 * whole.c.norm());
  CHECK((whole.c - whole.c.transpose()).norm() == 0.0);
  // With the true codes and noiseless data, the least-squares dictionary is A*.
  const Matrix a = solve_altmin(whole.b, whole.c, 1e-12);
  CHECK((a - problem.a_true).norm() < 1e-8);
  CHECK(altmin_gradient(a, whole.b, whole.c).norm() < 1e-7);
  // Optimality of the ridge solution: A (C + eps I) = B.
  const Matrix ridge = solve_altmin(whole.b, whole.c, 0.5);
  CHECK((ridge * (whole.c + 0.5 * Matrix::Identity(9, 9)) - whole.b).norm() <
        1e-10 * whole.b.norm());
  AltminStatistics few(10, 9);
  accumulate_altmin_statistics(net, problem.y.leftCols(4), problem.z_true.leftCols(4), few);
  CHECK_THAT(error_of([&] { solve_altmin(few.b, few.c, 0.0); }),
             Catch::Contains("C + eps I is not positive definite"));
  AltminStatistics wrong(9, 9);
  CHECK_THAT(error_of([&] { accumulate_altmin_statistics(net, problem.y, problem.z_true, wrong); }),
             Catch::Contains("B is 9 x 9 and C 9 x 9; expected 10 x 9 and 9 x 9"));
}

TEST_CASE("project_to_ball keeps A within a Frobenius ball around A0", "[prior]") {
  Random rng(41);
  const Matrix a0 = normal_matrix(4, 5, rng);
  Matrix a = a0 + normal_matrix(4, 5, rng);
  const Matrix inside = a;
  CHECK_FALSE(project_to_ball(a, a0, (a - a0).norm() + 1e-9));
  CHECK(a == inside);
  CHECK(project_to_ball(a, a0, 0.5));
  CHECK((a - a0).norm() == Approx(0.5).epsilon(1e-14));
  CHECK(((a - a0) / 0.5 - (inside - a0) / (inside - a0).norm()).norm() < 1e-14);  // same direction
  CHECK_THAT(error_of([&] { project_to_ball(a, a0, -1.0); }), Catch::Contains("radius"));
}

// ---------------------------------------------------------------------------------------
// Decoding and learning

TEST_CASE("decode recovers z on a noiseless problem with the true dictionary (setting 1)",
          "[prior][decode]") {
  const Problem problem(10, 40, 51);
  // The landscape has local minima and Adam's late steps are small: 10 starts of 3000 steps
  // at lr 3e-2 recover every sample (1 start of 1000 steps at lr 1e-2, the defaults, leaves
  // about a third of them further than 1e-3 away).
  DecodeOptions options;
  options.optimizer.learning_rate = 3e-2;
  options.steps = 3000;
  options.restarts = 10;
  options.seed = 7;
  const DecodeResult result = decode(problem.a_true, problem.net, problem.y, 0, options);
  REQUIRE(result.codes.rows() == 3);
  REQUIRE(result.codes.cols() == 40);
  const double worst_z = (result.codes - problem.z_true).colwise().norm().maxCoeff();
  const double worst_loss = result.loss.maxCoeff();
  INFO("max ||z - z*|| = " << worst_z << ", max loss = " << worst_loss);
  CHECK(worst_z < 1e-6);
  CHECK(worst_loss < 1e-12);
  CHECK((reconstruction_error(problem.a_true, problem.net, problem.y, result.codes) - result.loss)
            .norm() == 0.0);
  CHECK(*std::min_element(result.start.begin(), result.start.end()) >= 0);
  CHECK(*std::max_element(result.start.begin(), result.start.end()) < 10);
}

TEST_CASE("decoded codes do not depend on how the samples are split (ranks, batches)",
          "[prior][decode]") {
  const Problem problem(10, 40, 52);
  DecodeOptions options;
  options.steps = 300;
  options.restarts = 2;
  options.seed = 3;
  const DecodeResult whole = decode(problem.a_true, problem.net, problem.y, 0, options);
  // Samples 0..14 and 15..39 decoded separately, then the odd samples by row number.
  const DecodeResult first =
      decode(problem.a_true, problem.net, problem.y.leftCols(15), 0, options);
  const DecodeResult second =
      decode(problem.a_true, problem.net, problem.y.rightCols(25), 15, options);
  Matrix joined(3, 40);
  joined << first.codes, second.codes;
  CHECK((joined - whole.codes).cwiseAbs().maxCoeff() < 1e-12);
  std::vector<Index> odd;
  Matrix y_odd(10, 20);
  for (Index j = 1; j < 40; j += 2) {
    y_odd.col(Index(odd.size())) = problem.y.col(j);
    odd.push_back(j);
  }
  const DecodeResult picked = decode(problem.a_true, problem.net, y_odd, odd, options);
  double worst = 0.0;
  for (size_t i = 0; i < odd.size(); ++i)
    worst = std::max(worst,
                     (picked.codes.col(Index(i)) - whole.codes.col(odd[i])).cwiseAbs().maxCoeff());
  CHECK(worst < 1e-12);
  // Starts are keyed by (seed, row, restart) alone.
  const Matrix z0 = initial_codes(3, {5, 9}, 1, options);
  CHECK(z0.col(1) == initial_codes(3, {9}, 1, options).col(0));
  CHECK(z0.col(0) != initial_codes(3, {5}, 0, options).col(0));
  DecodeOptions other = options;
  other.seed = 8;
  CHECK(z0.col(0) != initial_codes(3, {5}, 1, other).col(0));
}

TEST_CASE("decode: warm start, ball constraint and validation", "[prior][decode]") {
  const Problem problem(10, 30, 53);
  DecodeOptions options;
  options.steps = 200;
  SECTION("a warm start is never made worse and wins ties as start -1") {
    const Matrix perturbed = problem.z_true.array() + 0.3;
    const Vector before = reconstruction_error(problem.a_true, problem.net, problem.y, perturbed);
    const DecodeResult warm =
        decode(problem.a_true, problem.net, problem.y, 0, options, &perturbed);
    CHECK((warm.loss.array() <= before.array()).all());
    options.restarts = 0;  // the warm start alone: exactly refine_codes
    const DecodeResult only = decode(problem.a_true, problem.net, problem.y, 0, options,
                                     &problem.z_true);  // already optimal: kept as it is
    CHECK(only.codes == problem.z_true);
    CHECK(std::all_of(only.start.begin(), only.start.end(), [](Index s) { return s == -1; }));
    CHECK_THAT(error_of([&] { decode(problem.a_true, problem.net, problem.y, 0, options); }),
               Catch::Contains("restarts must be >= 1 without a warm start"));
  }
  SECTION("the ball constraint holds at every sample") {
    options.radius = 0.5;
    const DecodeResult constrained = decode(problem.a_true, problem.net, problem.y, 0, options);
    CHECK(constrained.codes.colwise().norm().maxCoeff() <= 0.5 + 1e-12);
    CHECK(initial_codes(3, {0, 1, 2}, 0, options).colwise().norm().maxCoeff() <= 0.5 + 1e-12);
    Matrix far = 10 * problem.z_true;
    refine_codes(problem.a_true, problem.net, problem.y, far, options);
    CHECK(far.colwise().norm().maxCoeff() <= 0.5 + 1e-12);
  }
  SECTION("options and shapes are validated") {
    DecodeOptions bad = options;
    bad.steps = 0;
    CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("steps must be >= 1"));
    bad = options;
    bad.restarts = -1;
    CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("restarts must be >= 0"));
    bad = options;
    bad.radius = -1;
    CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("radius must be >= 0"));
    bad = options;
    bad.init_scale = 0;
    CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("init_scale must be > 0"));
    bad = options;
    bad.optimizer.learning_rate = 0;
    CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("learning-rate"));
    bad = options;
    bad.screen_steps = options.steps;
    CHECK_THAT(error_of([&] { validate(bad); }),
               Catch::Contains("screen steps must be in [0, steps - 1] = [0, 199], got 200"));
    CHECK_THAT(
        error_of([&] { decode(problem.a_true.leftCols(8), problem.net, problem.y, 0, options); }),
        Catch::Contains("the dictionary is 10 x 8; the generator's output dimension is 9"));
    CHECK_THAT(error_of([&] {
                 decode(problem.a_true, problem.net, problem.y, std::vector<Index>{1, 2}, options);
               }),
               Catch::Contains("2 row numbers for 30 samples"));
    const Matrix wrong = Matrix::Zero(3, 29);
    CHECK_THAT(
        error_of([&] { decode(problem.a_true, problem.net, problem.y, 0, options, &wrong); }),
        Catch::Contains("the warm start is 3 x 29; expected 3 x 30"));
  }
}

TEST_CASE("decode: the Gram form (n < 2m) and the residual form find the same codes",
          "[prior][decode]") {
  // m = 4 < n / 2 decodes with residuals; the same problem padded with 6 zero rows (m = 10)
  // has the same objective and decodes with the Gram matrix.
  const Problem problem(4, 25, 57);
  Matrix a_padded = Matrix::Zero(10, 9), y_padded = Matrix::Zero(10, 25);
  a_padded.topRows(4) = problem.a_true;
  y_padded.topRows(4) = problem.y + 0.05 * problem.y.cwiseAbs();  // not exactly reachable
  Matrix z_direct = Matrix::Constant(3, 25, 0.3), z_gram = z_direct;
  DecodeOptions options;
  options.steps = 300;
  const Vector direct =
      refine_codes(problem.a_true, problem.net, y_padded.topRows(4), z_direct, options);
  const Vector gram = refine_codes(a_padded, problem.net, y_padded, z_gram, options);
  CHECK((z_direct - z_gram).cwiseAbs().maxCoeff() < 1e-8);
  CHECK((direct - gram).cwiseAbs().maxCoeff() < 1e-10);
  // The losses returned are exact (computed from residuals), whichever form ran the steps.
  CHECK((reconstruction_error(a_padded, problem.net, y_padded, z_gram) - gram).norm() == 0.0);
}

TEST_CASE("decode: screened restarts keep each sample's best quarter, then refine it",
          "[prior][decode]") {
  Problem problem(10, 60, 59);
  Random noise(3);
  problem.y += normal_matrix(10, 60, noise, 0.05);
  DecodeOptions options;
  options.optimizer.learning_rate = 3e-2;
  options.steps = 300;
  options.restarts = 12;
  options.seed = 5;
  const DecodeResult plain = decode(problem.a_true, problem.net, problem.y, 0, options);
  options.screen_steps = 40;
  const DecodeResult screened = decode(problem.a_true, problem.net, problem.y, 0, options);
  // Every start's first 40 steps are the same in both; 3 of the 12 per sample go on.
  CHECK(screened.loss.size() == 60);
  CHECK(*std::min_element(screened.start.begin(), screened.start.end()) >= 0);
  CHECK(*std::max_element(screened.start.begin(), screened.start.end()) < 12);
  CHECK(
      (reconstruction_error(problem.a_true, problem.net, problem.y, screened.codes) - screened.loss)
          .norm() == 0.0);
  // Screening is a trade: a 40-step ranking misjudges some basins (here a mean loss ~8x that
  // of 12 full starts), at a third of their cost, still far below a single start's.
  options.screen_steps = 0;
  options.restarts = 1;
  const DecodeResult single = decode(problem.a_true, problem.net, problem.y, 0, options);
  INFO("mean loss: all starts " << plain.loss.mean() << ", screened " << screened.loss.mean()
                                << ", one start " << single.loss.mean());
  CHECK(plain.loss.mean() < screened.loss.mean());
  CHECK(screened.loss.mean() < 0.2 * single.loss.mean());
  // With a warm start it competes like any start (ranked -1 when it wins).
  options.restarts = 3;
  options.screen_steps = 40;
  const DecodeResult warm =
      decode(problem.a_true, problem.net, problem.y, 0, options, &plain.codes);
  CHECK((warm.loss.array() <= plain.loss.array() * (1 + 1e-9) + 1e-12).all());
}

TEST_CASE("polish: Gauss-Newton finishes what Adam started, on an ill-conditioned A",
          "[prior][decode]") {
  // Setting 2's generator G(z) = M z^2 (M >= 0) with A >= 0: A M has strongly correlated
  // columns, where Adam's diagonal scaling crawls.
  Random rng(71);
  const Index k = 4, n = 30, m = 40, samples = 50;
  Matrix mask(n, k);
  for (Index j = 0; j < k; ++j)
    for (Index i = 0; i < n; ++i) mask(i, j) = rng.uniform() < 0.6 ? 1.0 : 0.0;
  const GeneratorNetwork net(
      k, {GeneratorLayer::elementwise(Kind::square), GeneratorLayer::linear(mask, Vector())});
  const Matrix a = uniform_matrix(m, n, rng), z_true = normal_matrix(k, samples, rng);
  const Matrix y = a * net.forward(z_true);  // noiseless: the minimum is 0
  DecodeOptions options;
  options.optimizer.learning_rate = 3e-2;
  options.steps = 200;
  options.restarts = 2;
  const DecodeResult adam = decode(a, net, y, 0, options);
  options.polish = 20;
  const DecodeResult polished = decode(a, net, y, 0, options);
  const double scale = y.colwise().squaredNorm().mean();
  INFO("mean loss / mean ||y||^2: Adam " << adam.loss.mean() / scale << ", polished "
                                         << polished.loss.mean() / scale);
  CHECK(adam.loss.mean() > 1e-6 * scale);  // Adam alone is far from the minimum
  CHECK(polished.loss.mean() < 0.01 * adam.loss.mean());
  CHECK((polished.loss.array() <= adam.loss.array() * (1 + 1e-12)).all());
  CHECK((reconstruction_error(a, net, y, polished.codes) - polished.loss).norm() == 0.0);
  // Most samples reach the minimum, where z is recovered up to the sign of each coordinate
  // (G depends on z^2 only). A few sit near the saddle z_i = 0 (u_i = z_i^2 at its bound),
  // which no local method leaves quickly.
  Index reached = 0;
  double worst_z = 0.0;
  for (Index j = 0; j < samples; ++j)
    if (polished.loss(j) < 1e-12 * scale) {
      ++reached;
      worst_z = std::max(
          worst_z,
          (polished.codes.col(j).cwiseAbs() - z_true.col(j).cwiseAbs()).cwiseAbs().maxCoeff());
    }
  INFO(reached << " of " << samples << " at the minimum; max ||z| - |z*|| there " << worst_z);
  CHECK(reached >= 42);
  CHECK(worst_z < 1e-4);
  // Never worse than its start, and validated.
  Matrix z = adam.codes;
  const Vector after = polish_codes(a, net, y, z, 3);
  CHECK((after.array() <= adam.loss.array()).all());
  CHECK_THAT(error_of([&] { polish_codes(a, net, y, z, -1); }),
             Catch::Contains("iterations must be >= 0"));
  options.polish = -1;
  CHECK_THAT(error_of([&] { validate(options); }),
             Catch::Contains("polish iterations must be >= 0"));
}

TEST_CASE("altmin (decode, then least squares) drives the error down from a perturbed A",
          "[prior][altmin]") {
  const Problem problem(10, 100, 61);
  Random rng(62);
  Matrix a = problem.a_true + normal_matrix(10, 9, rng, 0.1);
  DecodeOptions options;  // Adam at lr 1e-2
  options.steps = 500;
  options.restarts = 3;
  std::vector<double> errors;  // mean ||y - A G(z)||^2 after decoding with the current A
  Matrix codes;
  for (int iteration = 0; iteration <= 6; ++iteration) {
    options.seed = std::uint64_t(iteration);
    // The previous codes are a warm start, so the objective never increases.
    const DecodeResult decoded =
        decode(a, problem.net, problem.y, 0, options, iteration > 0 ? &codes : nullptr);
    codes = decoded.codes;
    errors.push_back(decoded.loss.mean());
    if (iteration == 6) break;
    AltminStatistics stats(10, 9);  // a trainer allreduces these sums
    accumulate_altmin_statistics(problem.net, problem.y, codes, stats);
    a = solve_altmin(stats.b, stats.c, 1e-8);  // A = B (C + eps I)^-1
  }
  INFO("errors " << errors[0] << " -> " << errors[1] << " -> " << errors[2] << " -> "
                 << errors.back());
  for (size_t t = 1; t < errors.size(); ++t) CHECK(errors[t] <= errors[t - 1] * (1 + 1e-9));
  CHECK(errors.back() < errors.front() / 100);
}

TEST_CASE("altmin with an Adam step on A (gradient 2 (A C - B)) decreases the error",
          "[prior][altmin]") {
  const Problem problem(10, 100, 63);
  Random rng(64);
  Matrix a = problem.a_true + normal_matrix(10, 9, rng, 0.1);
  DecodeOptions options;
  options.steps = 300;
  options.restarts = 2;
  AltminOptions altmin;
  altmin.update = AltminOptions::Update::optimizer_step;
  validate(altmin);
  Optimizer optimizer(altmin.optimizer, {a.size()});
  Matrix codes = decode(a, problem.net, problem.y, 0, options).codes;
  const double initial = reconstruction_error(a, problem.net, problem.y, codes).mean();
  for (int iteration = 0; iteration < 10; ++iteration) {
    AltminStatistics stats(10, 9);
    accumulate_altmin_statistics(problem.net, problem.y, codes, stats);
    for (int step = 0; step < 20; ++step) {
      const Matrix grad = altmin_gradient(a, stats.b, stats.c);
      optimizer.step({a.data()}, {grad.data()});
    }
    codes = decode(a, problem.net, problem.y, 0, options, &codes).codes;
  }
  const double final_error = reconstruction_error(a, problem.net, problem.y, codes).mean();
  INFO("error " << initial << " -> " << final_error);
  CHECK(final_error < initial / 5);  // about 3.7 -> 0.37 (least squares: 100x, above)
  AltminOptions bad;
  bad.eps = -1;
  CHECK_THAT(error_of([&] { validate(bad); }), Catch::Contains("eps must be >= 0"));
}

TEST_CASE("joint Adam over A and Z decreases the loss", "[prior][joint]") {
  const Problem problem(10, 100, 71);
  Random rng(72);
  const Matrix a0 = problem.a_true + normal_matrix(10, 9, rng, 0.1);
  Matrix a = a0;
  DecodeOptions options;
  std::vector<Index> rows(100);
  std::iota(rows.begin(), rows.end(), Index(0));
  Matrix z = initial_codes(3, rows, 0, options);
  OptimizerOptions adam{OptimizerOptions::Kind::adam, 1e-2};
  Optimizer optimizer(adam, {a.size(), z.size()});
  Matrix grad_a, grad_z;
  const double initial = joint_loss_gradient(a, problem.net, problem.y, z, nullptr, nullptr);
  for (int step = 0; step < 1500; ++step) {
    joint_loss_gradient(a, problem.net, problem.y, z, &grad_a, &grad_z);
    // (a trainer allreduces grad_a here; grad_z stays local)
    optimizer.step({a.data(), z.data()}, {grad_a.data(), grad_z.data()});
    project_to_ball(a, a0, 1.0);
  }
  const double final_loss = joint_loss_gradient(a, problem.net, problem.y, z, nullptr, nullptr);
  INFO("joint loss " << initial << " -> " << final_loss);
  CHECK(final_loss < initial / 10);
  CHECK((a - a0).norm() <= 1.0 + 1e-12);
}
