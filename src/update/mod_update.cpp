#include "dictlearn/update/mod_update.hpp"

#include <lapacke.h>

#include <algorithm>
#include <vector>

namespace dictlearn {
namespace mod_detail {

ModSubsystem mod_subsystem(const Matrix& a, const Matrix& b, const Matrix& dictionary,
                           const ModUpdateOptions& options) {
  const Index K = a.rows(), d = b.rows();
  DICTLEARN_ASSERT(a.cols() == K && b.cols() == K && dictionary.rows() == d &&
                   dictionary.cols() == K);
  // Atoms without statistics (A_kk = 0, so their row of the PSD matrix A is zero too) are
  // decoupled from the others: keep them as they are and solve for the rest.
  const double scale = std::max(a.trace() / double(K), 1e-300);
  ModSubsystem system;
  for (Index k = 0; k < K; ++k)
    if (a(k, k) > options.min_curvature * scale) system.used.push_back(k);
  system.eps = options.ridge * scale;  // eps = ridge * trace(A) / K
  return system;
}

void mod_store_solution(const Matrix& solution, const std::vector<Index>& used, Matrix& dictionary,
                        const ModUpdateOptions& options) {
  DICTLEARN_ASSERT(solution.rows() == Index(used.size()) && solution.cols() == dictionary.rows());
  for (Index j = 0; j < solution.rows(); ++j) {
    auto atom = dictionary.col(used[size_t(j)]);
    atom = solution.row(j).transpose();
    if (options.positive) atom = atom.cwiseMax(0.0);
    if (options.constraint != nullptr && !options.constraint->plain()) {
      options.constraint->normalize(used[size_t(j)], atom.data(), atom.size());
      continue;
    }
    const double norm = atom.norm();
    if (norm > 1e-12)
      atom /= norm;
    else
      atom.setZero();  // left to the atom replacement policy
  }
}

Error mod_not_positive_definite(const char* routine, int info) {
  return Error(cat("MOD update: A + eps I is not positive definite (", routine, " info ", info,
                   "); increase mod-ridge"));
}

}  // namespace mod_detail

void mod_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                           const ModUpdateOptions& options) {
  const mod_detail::ModSubsystem sub = mod_detail::mod_subsystem(a, b, dictionary, options);
  const std::vector<Index>& used = sub.used;
  const Index n = Index(used.size()), d = b.rows();
  if (n == 0) return;
  Matrix system(n, n);
  Matrix solution(n, d);  // right-hand sides B_S^T
  for (Index j = 0; j < n; ++j) {
    for (Index i = 0; i < n; ++i) system(i, j) = a(used[size_t(i)], used[size_t(j)]);
    solution.row(j) = b.col(used[size_t(j)]).transpose();
  }
  system.diagonal().array() += sub.eps;
  // A_SS + eps I = U^T U, then U^T U D_S^T = B_S^T.
  int info = LAPACKE_dpotrf(LAPACK_COL_MAJOR, 'U', int(n), system.data(), int(n));
  if (info != 0) throw mod_detail::mod_not_positive_definite("LAPACK potrf", info);
  info = LAPACKE_dpotrs(LAPACK_COL_MAJOR, 'U', int(n), int(d), system.data(), int(n),
                        solution.data(), int(n));
  DICTLEARN_ASSERT(info == 0);
  mod_detail::mod_store_solution(solution, used, dictionary, options);
}

}  // namespace dictlearn
