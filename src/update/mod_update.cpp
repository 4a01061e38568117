#include "dictlearn/update/mod_update.hpp"

#include <lapacke.h>

#include <algorithm>
#include <vector>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options) {
  const Index K = a.rows(), d = b.rows();
  DICTLEARN_ASSERT(a.cols() == K && b.cols() == K && dictionary.rows() == d && dictionary.cols() == K);
  // Atoms without statistics (A_kk = 0, so their row of the PSD matrix A is zero too) are
  // decoupled from the others: keep them as they are and solve for the rest.
  const double scale = std::max(a.trace() / double(K), 1e-300);
  std::vector<Index> used;
  for (Index k = 0; k < K; ++k)
    if (a(k, k) > options.min_curvature * scale) used.push_back(k);
  const Index n = Index(used.size());
  if (n == 0) return;
  Matrix system(n, n);
  Matrix solution(n, d);  // right-hand sides B_S^T
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < n; ++i) system(i, j) = a(used[size_t(i)], used[size_t(j)]);
    solution.row(j) = b.col(used[size_t(j)]).transpose();
  }
  system.diagonal().array() += options.ridge * scale;
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', int(n), system.data(), int(n));
  if (info != 0)
    throw Error(cat("MOD update: A + eps I is not positive definite (LAPACK potrf info ", info,
                    "); increase mod-ridge"));
  info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', int(n), int(d), system.data(), int(n),
                        solution.data(), int(n));
  DICTLEARN_ASSERT(info == 0);
  for (Index j = 0; j < n; ++j) {
    auto atom = dictionary.col(used[size_t(j)]);
    atom = solution.row(j).transpose();
    if (options.positive) atom = atom.cwiseMax(0.0);
    const double norm = atom.norm();
    if (norm > 1e-12)
      atom /= norm;
    else
      atom.setZero();  // left to the atom replacement policy
  }
}

}  // namespace dictlearn
