#pragma once
// The softmax attributor (the "PyTorch seed" of gradient-trained dictionaries): a linear
// encoder followed by a softmax attributes each sample to the K atoms, and the sample is
// reconstructed as the attribution-weighted mix of the atoms. For a sample x (d):
//   z = (W x + b) / T                    W : K x d (encoder), b : K (bias), T > 0
//   a = softmax(z),  a_k = exp(z_k) / sum_i exp(z_i)              a : K, on the simplex
//   x_hat = D^T a                        D : K x d (atoms are the ROWS of D)
// and the loss of samples X (d x n, a sample is a column) is the SUM
//   L = sum_j ||x_j - D^T a_j||^2 = ||X - D^T A||_F^2,           A : K x n.
// Note D is stored K x d (one atom per row, as nn.Linear(K, d).weight^T and as on disk),
// unlike the d x K dictionaries of the sparse coders.
//
// Gradients of that sum, by hand (R = D^T A - X : d x n):
//   dL/dD   = 2 A R^T                                         K x d
//   dL/dA   = G = 2 D R                                       K x n
//   dL/dZ_kj = (a_kj / T) (G_kj - sum_i a_ij G_ij)            softmax with temperature
//   dL/dW   = (dL/dZ) X^T,   dL/db = (dL/dZ) 1_n
// Every product is one BLAS-3 call on the whole batch. With data-parallel training each rank
// calls attributor_loss_gradient on its shard and allreduce_gradients sums the results;
// the caller divides by the global batch size.
#include <cstdint>

#include "dictlearn/core/types.hpp"

namespace dictlearn {

struct SoftmaxAttributor {
  Matrix encoder;            ///< W, K x d
  Vector bias;               ///< b, K
  Matrix atoms;              ///< D, K x d: reconstruction x_hat = D^T a
  double temperature = 1.0;  ///< T > 0 (not trained)
};

/// A fresh model, deterministic in `seed` on every platform (dictlearn's Random, one
/// independent stream per tensor, entries drawn in row-major (k, j) order):
///   W_kj, b_k ~ uniform(-1/sqrt(d), 1/sqrt(d))  (torch.nn.Linear's default: fan_in = d)
///   D_kj      ~ atom_scale * N(0, 1)            (small random atoms; 0.01 by default)
/// Throws Error unless d >= 1, K >= 1, temperature > 0 and atom_scale >= 0 (all finite).
SoftmaxAttributor init_attributor(Index d, Index K, std::uint64_t seed, double temperature = 1.0,
                                  double atom_scale = 0.01);

/// codes (K x n, resized) = softmax((W x + b) / T) of every column of x (d x n): one GEMM,
/// then a softmax per column made stable by subtracting the column's largest logit.
/// Throws Error if the shapes of the model and x disagree or T is not > 0.
void attributor_codes(const SoftmaxAttributor& model, const Matrix& x, Matrix& codes);

/// Returns L = sum over the n columns of x of ||x_j - D^T a_j||^2 (NOT divided by n). If
/// `gradient` is not null, its encoder, bias and atoms are resized and set to dL/dW, dL/db
/// and dL/dD of that sum, and its temperature to 0 (T is not a parameter). n = 0 gives
/// L = 0 and zero gradients. Throws Error as attributor_codes.
double attributor_loss_gradient(const SoftmaxAttributor& model, const Matrix& x,
                                SoftmaxAttributor* gradient);

/// The optional constraint: every row of `atoms` (K x d) onto the unit ball,
/// d_k <- d_k / max(||d_k||_2, 1). Rows inside the ball are unchanged bitwise.
void project_atom_rows(Matrix& atoms);

}  // namespace dictlearn
