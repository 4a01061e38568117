#pragma once
// Thin, explicit BLAS-3 entry points for the large dense products (D^T X per minibatch,
// the Gram matrix D^T D, the statistics X C^T and C C^T). They go straight to OpenBLAS so
// that Eigen's own kernels, used for the small per-sample work inside OpenMP regions,
// never spawn BLAS threads there.
#include "dictlearn/core/types.hpp"

namespace dictlearn::blas {

/// C = alpha * op(A) * op(B) + beta * C, op(M) = M or M^T.
template <typename Scalar>
void gemm(bool transpose_a, bool transpose_b, Scalar alpha, const MatrixT<Scalar>& a,
          const MatrixT<Scalar>& b, Scalar beta, MatrixT<Scalar>& c);

/// Upper triangle of C = alpha * A * A^T + beta * C (the lower triangle is left untouched).
template <typename Scalar>
void syrk_upper(Scalar alpha, const MatrixT<Scalar>& a, Scalar beta, MatrixT<Scalar>& c);

/// Copies the upper triangle of a square matrix onto its lower triangle.
template <typename Scalar>
void symmetrize_from_upper(MatrixT<Scalar>& c);

/// Number of threads OpenBLAS may use for calls made outside OpenMP regions.
void set_num_threads(int threads);

}  // namespace dictlearn::blas
