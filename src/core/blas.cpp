#include "dictlearn/core/blas.hpp"

#include <cblas.h>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/transpose_block.hpp"

namespace dictlearn::blas {
namespace {
CBLAS_TRANSPOSE op(bool transpose) { return transpose ? CblasTrans : CblasNoTrans; }

void check_gemm_shapes(Index m, Index k, Index k2, Index n, Index rows_c, Index cols_c) {
  DICTLEARN_ASSERT(k == k2);
  DICTLEARN_ASSERT(rows_c == m && cols_c == n);
}
}  // namespace

template <>
void gemm<double>(bool ta, bool tb, double alpha, const Matrix& a, const Matrix& b, double beta,
                  Matrix& c) {
  const Index m = ta ? a.cols() : a.rows(), k = ta ? a.rows() : a.cols();
  const Index k2 = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  check_gemm_shapes(m, k, k2, n, c.rows(), c.cols());
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS convention: beta = 0 overwrites C, even NaN
    if (beta == 0)
      c.setZero();
    else
      c *= beta;
    return;
  }
  cblas_dgemm(CblasColMajor, op(ta), op(tb), int(m), int(n), int(k), alpha, a.data(), int(a.rows()),
              b.data(), int(b.rows()), beta, c.data(), int(c.rows()));
}

template <>
void gemm<float>(bool ta, bool tb, float alpha, const MatrixT<float>& a, const MatrixT<float>& b,
                 float beta, MatrixT<float>& c) {
  const Index m = ta ? a.cols() : a.rows(), k = ta ? a.rows() : a.cols();
  const Index k2 = tb ? b.cols() : b.rows(), n = tb ? b.rows() : b.cols();
  check_gemm_shapes(m, k, k2, n, c.rows(), c.cols());
  if (m == 0 || n == 0) return;
  if (k == 0) {  // BLAS convention: beta = 0 overwrites C, even NaN
    if (beta == 0)
      c.setZero();
    else
      c *= beta;
    return;
  }
  cblas_sgemm(CblasColMajor, op(ta), op(tb), int(m), int(n), int(k), alpha, a.data(), int(a.rows()),
              b.data(), int(b.rows()), beta, c.data(), int(c.rows()));
}

template <>
void syrk_upper<double>(double alpha, const Matrix& a, double beta, Matrix& c) {
  DICTLEARN_ASSERT(c.rows() == a.rows() && c.cols() == a.rows());
  if (a.rows() == 0) return;
  if (a.cols() == 0) {  // BLAS convention: beta = 0 overwrites C, even NaN
    if (beta == 0)
      c.setZero();
    else
      c *= beta;
    return;
  }
  cblas_dsyrk(CblasColMajor, CblasUpper, CblasNoTrans, int(a.rows()), int(a.cols()), alpha,
              a.data(), int(a.rows()), beta, c.data(), int(c.rows()));
}

template <>
void syrk_upper<float>(float alpha, const MatrixT<float>& a, float beta, MatrixT<float>& c) {
  DICTLEARN_ASSERT(c.rows() == a.rows() && c.cols() == a.rows());
  if (a.rows() == 0) return;
  if (a.cols() == 0) {  // BLAS convention: beta = 0 overwrites C, even NaN
    if (beta == 0)
      c.setZero();
    else
      c *= beta;
    return;
  }
  cblas_ssyrk(CblasColMajor, CblasUpper, CblasNoTrans, int(a.rows()), int(a.cols()), alpha,
              a.data(), int(a.rows()), beta, c.data(), int(c.rows()));
}

template <typename Scalar>
void symmetrize_from_upper(MatrixT<Scalar>& c) {
  mirror_upper_to_lower(c.data(), c.rows(), c.rows());
}
template void symmetrize_from_upper<double>(Matrix&);
template void symmetrize_from_upper<float>(MatrixT<float>&);

void set_num_threads(int threads) { openblas_set_num_threads(threads); }

}  // namespace dictlearn::blas
