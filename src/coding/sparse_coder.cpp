#include "dictlearn/coding/sparse_coder.hpp"

#include <omp.h>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

CoderKind parse_coder(const std::string& name) {
  if (name == "lars") return CoderKind::lars;
  if (name == "omp") return CoderKind::omp;
  throw Error(cat("coder: unknown value '", name, "' (expected lars or omp)"));
}

std::string to_string(CoderKind kind) { return kind == CoderKind::lars ? "lars" : "omp"; }

BatchEncoder::BatchEncoder(const CoderOptions& options, Index n_atoms, int threads)
    : options_(options), threads_(threads > 0 ? threads : omp_get_max_threads()) {
  for (int t = 0; t < threads_; ++t) {
    if (options.kind == CoderKind::lars)
      lars_.emplace_back(n_atoms);
    else
      omp_.emplace_back(n_atoms);
  }
}

Index BatchEncoder::encode(const Matrix& gram, const Matrix& dtx, const Vector& x_sqnorms,
                           Matrix& codes) {
  const Index n = dtx.cols();
  DICTLEARN_ASSERT(gram.rows() == dtx.rows() && x_sqnorms.size() == n);
  codes.resize(dtx.rows(), n);
  Index nonzeros = 0;
  // Each code depends on its own sample only, so dynamic scheduling (LARS paths vary in
  // length) keeps results bitwise reproducible whatever thread computes them.
#pragma omp parallel for num_threads(threads_) schedule(dynamic, 8) reduction(+ : nonzeros)
  for (Index j = 0; j < n; ++j) {
    const int thread = omp_get_thread_num();
    if (options_.kind == CoderKind::lars)
      nonzeros += lars_[size_t(thread)].solve(gram, dtx.col(j), options_.lars, codes.col(j));
    else
      nonzeros +=
          omp_[size_t(thread)].solve(gram, dtx.col(j), x_sqnorms(j), options_.omp, codes.col(j));
  }
  return nonzeros;
}

void sample_objectives(const CoderOptions& options, const Matrix& residual, const Matrix& codes,
                       Vector& reconstruction, Vector& penalty) {
  DICTLEARN_ASSERT(residual.cols() == codes.cols());
  reconstruction = 0.5 * residual.colwise().squaredNorm().transpose();
  if (options.kind == CoderKind::lars)
    penalty = options.lars.lambda * codes.cwiseAbs().colwise().sum().transpose();
  else
    penalty = Vector::Zero(codes.cols());
}

}  // namespace dictlearn
