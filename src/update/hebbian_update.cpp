#include "dictlearn/update/hebbian_update.hpp"

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn {

double hebbian_rate(const HebbianUpdateOptions& options, Index step) {
  return options.rate / (1.0 + options.decay * double(step));
}

void hebbian_dictionary_update(const Matrix& a, const Matrix& b, Matrix& dictionary, double eta,
                               const HebbianUpdateOptions& options) {
  const Index K = dictionary.cols(), d = dictionary.rows();
  DICTLEARN_ASSERT(a.rows() == K && a.cols() == K && b.rows() == d && b.cols() == K);
  // D + eta (B - D A) = eta B + D (I - eta A): one GEMM.
  Matrix step = b;
  blas::gemm(false, false, -1.0, dictionary, a, 1.0, step);  // B - D A
  dictionary += eta * step;
  for (Index k = 0; k < K; ++k) {
    auto atom = dictionary.col(k);
    if (options.positive) atom = atom.cwiseMax(0.0);
    if (options.constraint != nullptr && !options.constraint->plain()) {
      options.constraint->normalize(k, atom.data(), d);
      continue;
    }
    const double norm = atom.norm();
    if (norm > 0.0) atom /= norm;
  }
}

}  // namespace dictlearn
