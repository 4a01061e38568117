// Gradient-trained dictionaries: the optimizers against hand-computed steps, checkpoint
// round trips, parameter validation; the softmax attributor's gradient against central
// finite differences; and the seed check (two Gaussian clusters, K = 2, Adam) that the
// attributor learns the two cluster centres as its atoms.
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <numeric>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"
#include "dictlearn/gradient/optimizer.hpp"
#include "dictlearn/gradient/softmax_attributor.hpp"

using namespace dictlearn;

namespace {

using Kind = OptimizerOptions::Kind;

/// The three tensors of a model as optimizer blocks, in a fixed order (W, b, D).
std::vector<double*> blocks_of(SoftmaxAttributor& m) {
  return {m.encoder.data(), m.bias.data(), m.atoms.data()};
}
std::vector<const double*> const_blocks_of(const SoftmaxAttributor& m) {
  return {m.encoder.data(), m.bias.data(), m.atoms.data()};
}
std::vector<Index> sizes_of(const SoftmaxAttributor& m) {
  return {m.encoder.size(), m.bias.size(), m.atoms.size()};
}

Matrix random_matrix(Index rows, Index cols, Random& rng, double scale = 1.0) {
  Matrix out(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) out(i, j) = scale * rng.normal();
  return out;
}

/// ||a - b|| / ||b|| over a tensor (b assumed non-zero).
template <typename A, typename B>
double relative_error(const A& a, const B& b) {
  return (a - b).norm() / b.norm();
}

}  // namespace

TEST_CASE("optimizer kinds parse, print and validate with a message naming the parameter",
          "[gradient][optimizer]") {
  CHECK(parse_optimizer("gradient") == Kind::gradient);
  CHECK(parse_optimizer("adam") == Kind::adam);
  CHECK(to_string(Kind::gradient) == "gradient");
  CHECK(to_string(Kind::adam) == "adam");
  CHECK_THROWS_WITH(parse_optimizer("sgd"), Catch::Contains("'sgd'"));

  CHECK_NOTHROW(validate(OptimizerOptions{}));
  auto bad = [](auto edit) {
    OptimizerOptions o;
    edit(o);
    return o;
  };
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.learning_rate = 0; })),
                    Catch::Contains("learning-rate"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.learning_rate = NAN; })),
                    Catch::Contains("learning-rate"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.beta1 = 1.0; })), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.beta1 = -0.1; })), Catch::Contains("beta1"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.beta2 = 1.5; })), Catch::Contains("beta2"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.epsilon = 0; })), Catch::Contains("epsilon"));
  CHECK_THROWS_WITH(validate(bad([](auto& o) { o.weight_decay = -1e-3; })),
                    Catch::Contains("weight-decay"));
  CHECK_NOTHROW(validate(bad([](auto& o) { o.beta1 = 0.0; })));  // beta = 0 is allowed
  // The constructor validates too, and refuses negative block sizes.
  CHECK_THROWS_WITH(Optimizer(bad([](auto& o) { o.epsilon = -1; }), {2}),
                    Catch::Contains("epsilon"));
  CHECK_THROWS_AS(Optimizer(OptimizerOptions{}, {2, -1}), Error);
}

TEST_CASE("Adam matches a hand-computed two-step reference", "[gradient][optimizer]") {
  // Two blocks {0.5, -1} and {2}; lr = 0.01, beta1 = 0.9, beta2 = 0.999, eps = 1e-8.
  //   g1 = (0.2, -0.4, 0.001), g2 = (0.1, 0.3, -0.002)
  // Step t: m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2;
  //         p -= lr * (m / (1 - beta1^t)) / (sqrt(v / (1 - beta2^t)) + eps)
  // t = 1: m = 0.1 g1, v = 0.001 g1^2, so m_hat = g1, v_hat = g1^2 and
  //        p1 = p0 - lr g1 / (|g1| + eps)  (a step of ~lr against the sign of g1):
  //        p1 = (0.4900000005, -0.99000000025, 1.990000099999)
  // t = 2: m = (0.028, -0.006, -0.00011), v = (4.996e-5, 2.4984e-4, 4.999e-9),
  //        m_hat = m / 0.19, v_hat = v / 0.001999; e.g. for the first entry
  //        0.01 * (0.028 / 0.19) / (sqrt(4.996e-5 / 0.001999) + 1e-8) = 0.00932179529846...
  // Values to 20 digits by the same formulas in 40-digit arithmetic (mpmath):
  OptimizerOptions options;
  options.kind = Kind::adam;
  options.learning_rate = 0.01;
  Optimizer adam(options, {2, 1});
  std::vector<double> a = {0.5, -1.0}, b = {2.0};
  const std::vector<double> g1a = {0.2, -0.4}, g1b = {0.001};
  const std::vector<double> g2a = {0.1, 0.3}, g2b = {-0.002};

  adam.step({a.data(), b.data()}, {g1a.data(), g1b.data()});
  CHECK(adam.steps() == 1);
  CHECK(a[0] == Approx(0.490000000499999975).epsilon(1e-14));
  CHECK(a[1] == Approx(-0.99000000024999999375).epsilon(1e-14));
  CHECK(b[0] == Approx(1.99000009999900001).epsilon(1e-14));

  adam.step({a.data(), b.data()}, {g2a.data(), g2b.data()});
  CHECK(adam.steps() == 2);
  CHECK(a[0] == Approx(0.48067820470153651531).epsilon(1e-14));
  CHECK(a[1] == Approx(-0.98910675020121356357).epsilon(1e-14));
  CHECK(b[0] == Approx(1.9936611121185588835).epsilon(1e-14));

  // The state is [t, m..., v...] in block order.
  const std::vector<double> state = adam.state();
  REQUIRE(state.size() == 7);
  CHECK(state[0] == 2.0);
  CHECK(state[1] == Approx(0.028).epsilon(1e-14));
  CHECK(state[2] == Approx(-0.006).epsilon(1e-13));
  CHECK(state[3] == Approx(-0.00011).epsilon(1e-13));
  CHECK(state[4] == Approx(4.996e-5).epsilon(1e-14));
  CHECK(state[5] == Approx(2.4984e-4).epsilon(1e-14));
  CHECK(state[6] == Approx(4.999e-9).epsilon(1e-14));

  // A wrong number of blocks is a caller mistake.
  CHECK_THROWS_AS(adam.step({a.data()}, {g1a.data()}), Error);
}

TEST_CASE("projected gradient steps p -= lr g, with decoupled weight decay",
          "[gradient][optimizer]") {
  OptimizerOptions options;
  options.kind = Kind::gradient;
  options.learning_rate = 0.25;  // powers of two: the expected values are exact
  Optimizer sgd(options, {3});
  std::vector<double> p = {1.0, -2.0, 0.5};
  const std::vector<double> g = {0.5, 1.0, -4.0};
  sgd.step({p.data()}, {g.data()});
  CHECK(p == std::vector<double>{0.875, -2.25, 1.5});
  CHECK(sgd.steps() == 1);
  CHECK(sgd.state() == std::vector<double>{1.0});  // no moments: [t]

  // Decoupled decay: p <- p - lr wd p - lr g  (lr wd = 0.125).
  options.weight_decay = 0.5;
  Optimizer decayed(options, {3});
  p = {1.0, -2.0, 0.5};
  decayed.step({p.data()}, {g.data()});
  CHECK(p == std::vector<double>{0.75, -2.0, 1.4375});

  // AdamW: the decay never enters the moments; the first step is p (1 - lr wd) - lr sign(g).
  options.kind = Kind::adam;
  options.learning_rate = 0.01;
  options.weight_decay = 0.1;
  Optimizer adamw(options, {1});
  std::vector<double> q = {2.0};
  const std::vector<double> h = {0.3};
  adamw.step({q.data()}, {h.data()});
  CHECK(q[0] == Approx(2.0 * (1 - 0.001) - 0.01 * 0.3 / (0.3 + 1e-8)).epsilon(1e-14));
  CHECK(adamw.state()[1] == Approx(0.03).epsilon(1e-14));  // m = (1 - beta1) g, no decay term
}

TEST_CASE("an optimizer restored from state() continues the same trajectory bitwise",
          "[gradient][optimizer]") {
  for (Kind kind : {Kind::adam, Kind::gradient}) {
    OptimizerOptions options;
    options.kind = kind;
    options.learning_rate = 0.05;
    options.weight_decay = 0.01;
    const std::vector<Index> sizes = {4, 3};
    Random rng(7);
    std::vector<std::vector<double>> gradients;  // 10 steps x 7 values
    for (int s = 0; s < 10; ++s) {
      std::vector<double> g(7);
      for (double& value : g) value = rng.normal();
      gradients.push_back(g);
    }
    auto run = [&](Optimizer& opt, std::vector<double>& p, int from, int to) {
      for (int s = from; s < to; ++s)
        opt.step({p.data(), p.data() + 4}, {gradients[s].data(), gradients[s].data() + 4});
    };
    const std::vector<double> start = {1, -1, 0.5, 2, 0, 3, -0.25};

    Optimizer straight(options, sizes);
    std::vector<double> p_straight = start;
    run(straight, p_straight, 0, 10);

    Optimizer first(options, sizes);
    std::vector<double> p_resumed = start;
    run(first, p_resumed, 0, 4);
    const std::vector<double> checkpoint = first.state();
    CHECK(checkpoint.size() == (kind == Kind::adam ? 15u : 1u));
    Optimizer second(options, sizes);  // a fresh process reading the checkpoint
    second.set_state(checkpoint);
    CHECK(second.steps() == 4);
    CHECK(second.state() == checkpoint);
    run(second, p_resumed, 4, 10);

    CHECK(p_resumed == p_straight);  // bitwise
    CHECK(second.state() == straight.state());

    // Wrong sizes and non-integer step counts are refused.
    std::vector<double> wrong = checkpoint;
    wrong.push_back(0.0);
    CHECK_THROWS_WITH(second.set_state(wrong), Catch::Contains("size"));
    wrong = checkpoint;
    wrong[0] = 2.5;
    CHECK_THROWS_AS(second.set_state(wrong), Error);
  }
}

TEST_CASE("softmax attributor codes are column-wise softmaxes, stable for large logits",
          "[gradient][attributor]") {
  SoftmaxAttributor model = init_attributor(3, 4, 1, 0.5);
  CHECK(model.encoder.rows() == 4);
  CHECK(model.encoder.cols() == 3);
  CHECK(model.bias.size() == 4);
  CHECK(model.atoms.rows() == 4);
  CHECK(model.atoms.cols() == 3);
  const double bound = 1 / std::sqrt(3.0);
  CHECK(model.encoder.cwiseAbs().maxCoeff() <= bound);
  CHECK(model.bias.cwiseAbs().maxCoeff() <= bound);
  CHECK(model.atoms.cwiseAbs().maxCoeff() < 0.1);  // 0.01 N(0, 1)
  // Deterministic in the seed, different across seeds.
  CHECK(init_attributor(3, 4, 1, 0.5).encoder == model.encoder);
  CHECK(init_attributor(3, 4, 2, 0.5).encoder != model.encoder);
  CHECK_THROWS_AS(init_attributor(3, 4, 1, 0.0), Error);

  Random rng(3);
  Matrix x = random_matrix(3, 5, rng);
  x.col(4) *= 1e4;  // logits of ~1e4 / T: exp would overflow without the max shift
  Matrix codes;
  attributor_codes(model, x, codes);
  REQUIRE(codes.rows() == 4);
  REQUIRE(codes.cols() == 5);
  CHECK(codes.allFinite());
  for (Index j = 0; j < 5; ++j) {
    CHECK(codes.col(j).sum() == Approx(1.0).epsilon(1e-14));
    CHECK(codes.col(j).minCoeff() >= 0);
    const Vector z = (model.encoder * x.col(j) + model.bias) / model.temperature;
    if (j < 4) {
      const Vector expected = z.array().exp() / z.array().exp().sum();
      CHECK(relative_error(codes.col(j), expected) < 1e-14);
    }
  }
  CHECK_THROWS_AS(attributor_codes(model, random_matrix(2, 5, rng), codes), Error);
}

TEST_CASE("softmax attributor gradient matches central finite differences",
          "[gradient][attributor]") {
  // Central differences: (L(p + h e) - L(p - h e)) / 2h has truncation error O(h^2 L''')
  // and rounding error O(eps L / h); h = 1e-5 balances them to ~1e-10 relative.
  struct Case {
    Index d, k, n;
    double temperature;
  };
  for (const Case& c :
       {Case{3, 2, 7, 1.0}, Case{5, 4, 9, 0.5}, Case{4, 3, 6, 2.5}, Case{2, 5, 11, 0.3}}) {
    SoftmaxAttributor model = init_attributor(c.d, c.k, 100 + c.k, c.temperature, 0.7);
    Random rng(derive_seed({17, std::uint64_t(c.d)}));
    model.encoder = random_matrix(c.k, c.d, rng);  // sharper codes than the default init
    const Matrix x = random_matrix(c.d, c.n, rng);

    SoftmaxAttributor gradient;
    const double loss = attributor_loss_gradient(model, x, &gradient);
    CHECK(loss == Approx(attributor_loss_gradient(model, x, nullptr)));
    Matrix codes;
    attributor_codes(model, x, codes);
    CHECK(loss == Approx((x - model.atoms.transpose() * codes).squaredNorm()).epsilon(1e-13));

    const double h = 1e-5;
    SoftmaxAttributor numeric = gradient;
    std::vector<double*> parameters = blocks_of(model);
    std::vector<double*> numeric_blocks = blocks_of(numeric);
    const std::vector<Index> sizes = sizes_of(model);
    for (std::size_t b = 0; b < parameters.size(); ++b)
      for (Index i = 0; i < sizes[b]; ++i) {
        const double saved = parameters[b][i];
        parameters[b][i] = saved + h;
        const double plus = attributor_loss_gradient(model, x, nullptr);
        parameters[b][i] = saved - h;
        const double minus = attributor_loss_gradient(model, x, nullptr);
        parameters[b][i] = saved;
        numeric_blocks[b][i] = (plus - minus) / (2 * h);
      }
    INFO("d=" << c.d << " K=" << c.k << " n=" << c.n << " T=" << c.temperature);
    CHECK(relative_error(gradient.encoder, numeric.encoder) < 1e-6);
    CHECK(relative_error(gradient.bias, numeric.bias) < 1e-6);
    CHECK(relative_error(gradient.atoms, numeric.atoms) < 1e-6);
  }

  // No samples: zero loss, zero gradients of the right shapes.
  SoftmaxAttributor model = init_attributor(3, 2, 9);
  SoftmaxAttributor gradient;
  CHECK(attributor_loss_gradient(model, Matrix(3, 0), &gradient) == 0.0);
  CHECK(gradient.encoder == Matrix::Zero(2, 3));
  CHECK(gradient.bias == Vector::Zero(2));
  CHECK(gradient.atoms == Matrix::Zero(2, 3));
}

TEST_CASE("project_atom_rows puts rows onto the unit ball", "[gradient][attributor]") {
  Matrix atoms(3, 2);
  atoms << 3, 4,  //
      0.3, 0.4,   //
      0, 0;
  project_atom_rows(atoms);
  CHECK(atoms(0, 0) == Approx(0.6));
  CHECK(atoms(0, 1) == Approx(0.8));
  CHECK(atoms(1, 0) == 0.3);  // inside the ball: unchanged bitwise
  CHECK(atoms(1, 1) == 0.4);
  CHECK(atoms.row(2).norm() == 0.0);
}

TEST_CASE("seed check: the softmax attributor learns two cluster centres with Adam",
          "[gradient][attributor][seed]") {
  // 1000 samples from N([1, 0], 0.01 I) and 1000 from N([0, 1], 0.01 I); K = 2; Adam,
  // lr 1e-3, on the mean loss of shuffled minibatches of 100 (gradient of the minibatch sum
  // scaled by 1 / 100, as the distributed loop does with the global batch), each step
  // followed by the projection of the atoms onto the unit ball.
  // The projection is needed: unconstrained, the loss has a degenerate valley in which the
  // codes soften (a -> 1/2) while the atoms move outward along (1, -1) and (-1, 1), fitting
  // the within-cluster noise slightly better. Measured with this data and seed: 200
  // epochs end with atoms (1.14, -0.14), (-0.06, 1.06); 5000 epochs with (2.18, -1.18),
  // (-1.18, 2.18) and a lower mean loss (0.0108) than the centres give (0.0182).
  const auto started = std::chrono::steady_clock::now();
  const Index n = 2000, half = 1000, batch = 100, epochs = 200;
  Random data_rng(derive_seed({2024, 1}));
  Matrix x(2, n);
  for (Index j = 0; j < n; ++j) {
    x(0, j) = (j < half ? 1.0 : 0.0) + 0.1 * data_rng.normal();
    x(1, j) = (j < half ? 0.0 : 1.0) + 0.1 * data_rng.normal();
  }

  SoftmaxAttributor model = init_attributor(2, 2, 42);
  OptimizerOptions options;  // adam, lr 1e-3
  Optimizer adam(options, sizes_of(model));
  SoftmaxAttributor gradient;
  std::vector<Index> order(n);
  std::iota(order.begin(), order.end(), Index(0));
  std::vector<double> epoch_loss;
  Matrix xb(2, batch);
  for (Index epoch = 0; epoch < epochs; ++epoch) {
    Random shuffle_rng(derive_seed({2024, 2, std::uint64_t(epoch)}));
    shuffle_rng.shuffle(order.data(), std::uint64_t(n));
    double total = 0;
    for (Index start = 0; start < n; start += batch) {
      for (Index j = 0; j < batch; ++j) xb.col(j) = x.col(order[start + j]);
      total += attributor_loss_gradient(model, xb, &gradient);  // sum over the minibatch
      const double scale = 1.0 / double(batch);                 // -> gradient of the mean
      gradient.encoder *= scale;
      gradient.bias *= scale;
      gradient.atoms *= scale;
      adam.step(blocks_of(model), const_blocks_of(gradient));
      project_atom_rows(model.atoms);  // ||d_k|| <= 1
    }
    epoch_loss.push_back(total / double(n));
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const Vector e0 = Vector::Unit(2, 0), e1 = Vector::Unit(2, 1);
  const Vector d0 = model.atoms.row(0).transpose(), d1 = model.atoms.row(1).transpose();
  const double straight = std::max((d0 - e0).norm(), (d1 - e1).norm());
  const double swapped = std::max((d0 - e1).norm(), (d1 - e0).norm());
  std::printf(
      "seed check: %lld epochs in %.2f s, mean loss %.5f (epoch 1) -> %.5f (epoch %lld); "
      "atoms (%.4f, %.4f) (%.4f, %.4f); max distance to the centres %.4f\n",
      static_cast<long long>(epochs), seconds, epoch_loss.front(), epoch_loss.back(),
      static_cast<long long>(epochs), d0(0), d0(1), d1(0), d1(1), std::min(straight, swapped));
  CHECK(std::min(straight, swapped) < 0.1);
  CHECK(epoch_loss.back() < epoch_loss.front());
  CHECK(adam.steps() == epochs * (n / batch));
}
