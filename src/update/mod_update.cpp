#include "dictlearn/update/mod_update.hpp"

#include <lapacke.h>

#include <algorithm>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options) {
  const Index K = a.rows(), d = b.rows();
  DICTLEARN_ASSERT(a.cols() == K && b.cols() == K);
  Matrix system = a;
  const double eps = options.ridge * std::max(system.trace() / double(K), 1e-300);
  system.diagonal().array() += eps;
  Matrix solution = b.transpose();  // K x d right-hand sides
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', int(K), system.data(), int(K));
  if (info != 0) throw Error(cat("MOD update: the statistics matrix A is not positive definite (potrf info ", info, ")"));
  info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', int(K), int(d), system.data(), int(K),
                        solution.data(), int(K));
  DICTLEARN_ASSERT(info == 0);
  dictionary = solution.transpose();
  if (options.positive) dictionary = dictionary.cwiseMax(0.0);
  for (Index k = 0; k < K; ++k) {
    const double norm = dictionary.col(k).norm();
    if (norm > 1e-12)
      dictionary.col(k) /= norm;
    else
      dictionary.col(k).setZero();
  }
}

}  // namespace dictlearn
