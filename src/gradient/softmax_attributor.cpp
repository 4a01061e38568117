#include "dictlearn/gradient/softmax_attributor.hpp"

#include <cmath>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {
namespace {

// Stream keys of init_attributor (derive_seed({seed, purpose})).
constexpr std::uint64_t kEncoderStream = 0x5741;  // "WA"
constexpr std::uint64_t kBiasStream = 0x6241;     // "bA"
constexpr std::uint64_t kAtomStream = 0x4441;     // "DA"

/// Throws Error unless the model is consistent and fits samples of dimension x_rows.
void check_model(const SoftmaxAttributor& model, Index x_rows) {
  const Index k = model.encoder.rows(), d = model.encoder.cols();
  if (model.bias.size() != k)
    throw Error(
        cat("softmax attributor: bias has ", model.bias.size(), " entries, encoder ", k, " rows"));
  if (model.atoms.rows() != k || model.atoms.cols() != d)
    throw Error(cat("softmax attributor: atoms are ", model.atoms.rows(), " x ", model.atoms.cols(),
                    ", expected ", k, " x ", d, " like the encoder"));
  if (x_rows != d)
    throw Error(cat("softmax attributor: samples have dimension ", x_rows, ", the model ", d));
  if (!(model.temperature > 0) || !std::isfinite(model.temperature))
    throw Error(
        cat("softmax attributor: temperature must be finite and > 0, got ", model.temperature));
}

}  // namespace

SoftmaxAttributor init_attributor(Index d, Index K, std::uint64_t seed, double temperature,
                                  double atom_scale) {
  if (d < 1) throw Error(cat("softmax attributor: dimension d must be >= 1, got ", d));
  if (K < 1) throw Error(cat("softmax attributor: atoms K must be >= 1, got ", K));
  if (!(temperature > 0) || !std::isfinite(temperature))
    throw Error(cat("softmax attributor: temperature must be finite and > 0, got ", temperature));
  if (!(atom_scale >= 0) || !std::isfinite(atom_scale))
    throw Error(cat("softmax attributor: atom_scale must be finite and >= 0, got ", atom_scale));

  SoftmaxAttributor model;
  model.temperature = temperature;
  const double bound = 1.0 / std::sqrt(double(d));  // nn.Linear: 1 / sqrt(fan_in)
  Random encoder_rng(derive_seed({seed, kEncoderStream}));
  model.encoder.resize(K, d);
  for (Index k = 0; k < K; ++k)
    for (Index j = 0; j < d; ++j) model.encoder(k, j) = bound * (2.0 * encoder_rng.uniform() - 1.0);
  Random bias_rng(derive_seed({seed, kBiasStream}));
  model.bias.resize(K);
  for (Index k = 0; k < K; ++k) model.bias(k) = bound * (2.0 * bias_rng.uniform() - 1.0);
  Random atom_rng(derive_seed({seed, kAtomStream}));
  model.atoms.resize(K, d);
  for (Index k = 0; k < K; ++k)
    for (Index j = 0; j < d; ++j) model.atoms(k, j) = atom_scale * atom_rng.normal();
  return model;
}

void attributor_codes(const SoftmaxAttributor& model, const Matrix& x, Matrix& codes) {
  check_model(model, x.rows());
  const Index k = model.encoder.rows(), n = x.cols();
  codes.resize(k, n);
  blas::gemm(false, false, 1.0, model.encoder, x, 0.0, codes);  // Z = W X
  const double inverse_t = 1.0 / model.temperature;
  for (Index j = 0; j < n; ++j) {
    auto z = codes.col(j);
    z = (z + model.bias) * inverse_t;  // z = (W x + b) / T
    const double largest = z.maxCoeff();
    z = (z.array() - largest).exp();  // exp(z - max z): every term in (0, 1], one equals 1
    z /= z.sum();                     // a = softmax(z)
  }
}

double attributor_loss_gradient(const SoftmaxAttributor& model, const Matrix& x,
                                SoftmaxAttributor* gradient) {
  Matrix a;
  attributor_codes(model, x, a);  // A : K x n
  const Index k = model.encoder.rows(), d = model.encoder.cols(), n = x.cols();

  Matrix residual = x;                                           // d x n
  blas::gemm(true, false, 1.0, model.atoms, a, -1.0, residual);  // R = D^T A - X
  const double loss = residual.squaredNorm();                    // L = ||R||_F^2
  if (gradient == nullptr) return loss;

  gradient->temperature = 0.0;
  gradient->atoms.resize(k, d);
  blas::gemm(false, true, 2.0, a, residual, 0.0, gradient->atoms);  // dL/dD = 2 A R^T
  Matrix g(k, n);
  blas::gemm(false, false, 2.0, model.atoms, residual, 0.0, g);  // G = dL/dA = 2 D R
  const double inverse_t = 1.0 / model.temperature;
  for (Index j = 0; j < n; ++j) {
    const double mean = a.col(j).dot(g.col(j));  // sum_i a_ij G_ij
    // dL/dZ_kj = (a_kj / T) (G_kj - sum_i a_ij G_ij), stored over G.
    g.col(j) = (a.col(j).array() * (g.col(j).array() - mean) * inverse_t).matrix();
  }
  gradient->encoder.resize(k, d);
  blas::gemm(false, true, 1.0, g, x, 0.0, gradient->encoder);  // dL/dW = (dL/dZ) X^T
  gradient->bias = g.rowwise().sum();                          // dL/db = (dL/dZ) 1
  return loss;
}

void project_atom_rows(Matrix& atoms) {
  for (Index k = 0; k < atoms.rows(); ++k) {
    const double norm = atoms.row(k).norm();
    if (norm > 1.0) atoms.row(k) /= norm;  // d_k <- d_k / max(||d_k||, 1)
  }
}

}  // namespace dictlearn
