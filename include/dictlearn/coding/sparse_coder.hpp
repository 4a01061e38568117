#pragma once
// Codes a whole minibatch at once. The caller provides the two BLAS-3 products every
// coder here needs, G = D^T D (once per dictionary update) and D^T X (once per
// minibatch); the per-sample solvers then run on K-sized data only, in parallel over the
// samples with one preallocated solver per OpenMP thread.
#include <string>
#include <vector>

#include "dictlearn/coding/lars.hpp"
#include "dictlearn/coding/omp.hpp"

namespace dictlearn {

enum class CoderKind { lars, omp };

CoderKind parse_coder(const std::string& name);  ///< throws Error naming the value
std::string to_string(CoderKind kind);

struct CoderOptions {
  CoderKind kind = CoderKind::lars;
  LarsOptions lars;  ///< used by CoderKind::lars (lambda, positive)
  OmpOptions omp;    ///< used by CoderKind::omp (nonzeros, tolerance)
};

class BatchEncoder {
 public:
  /// `threads` <= 0 means the OpenMP default.
  BatchEncoder(const CoderOptions& options, Index n_atoms, int threads);

  /// codes (K x n) from gram (K x K), dtx = D^T X (K x n) and x_sqnorms(j) = ||x_j||^2.
  /// Returns the total number of nonzeros.
  Index encode(const Matrix& gram, const Matrix& dtx, const Vector& x_sqnorms, Matrix& codes);

  const CoderOptions& options() const { return options_; }

 private:
  CoderOptions options_;
  int threads_;
  std::vector<LarsLasso<double>> lars_;
  std::vector<BatchOmp<double>> omp_;
};

/// Per-sample terms of the coder's own objective, from the residuals R = X - D C (d x n)
/// and the codes (K x n): lars: 0.5||r||^2 and lambda||a||_1; omp: 0.5||r||^2 and 0.
void sample_objectives(const CoderOptions& options, const Matrix& residual, const Matrix& codes,
                       Vector& reconstruction, Vector& penalty);

}  // namespace dictlearn
