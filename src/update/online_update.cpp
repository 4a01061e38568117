#include "dictlearn/update/online_update.hpp"

#include "dictlearn/core/error.hpp"

namespace dictlearn {

void online_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary,
                              const OnlineUpdateOptions& options) {
  const Index K = dictionary.cols();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == dictionary.rows() && b.cols() == K);
  // DA = D A is kept current so that each atom step costs O(dK) (rank-one refresh)
  // instead of recomputing D a_k from scratch.
  Matrix da = dictionary * a;
  Vector step(dictionary.rows()), change(dictionary.rows());
  for (Index pass = 0; pass < options.passes; ++pass) {
    for (Index k = 0; k < K; ++k) {
      const double curvature = a(k, k);
      if (!(curvature > options.min_curvature)) continue;
      // u_k = d_k + (b_k - D a_k) / A_kk
      step = dictionary.col(k) + (b.col(k) - da.col(k)) / curvature;
      if (options.positive) step = step.cwiseMax(0.0);
      const double norm = step.norm();
      if (norm > 1.0) step /= norm;  // projection onto the unit ball
      // D A changes by (d_k_new - d_k_old) a_k^T
      change = step - dictionary.col(k);
      dictionary.col(k) = step;
      da.noalias() += change * a.row(k);
    }
  }
}

double surrogate_objective(const Matrix& a, const Matrix& b, const Matrix& dictionary) {
  return 0.5 * (dictionary.transpose() * dictionary).cwiseProduct(a).sum() -
         dictionary.cwiseProduct(b).sum();
}

}  // namespace dictlearn
