#include "dictlearn/coding/minibatch_coder.hpp"

#include <omp.h>

#include <algorithm>

#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"

namespace dictlearn {

template <typename Scalar>
struct MinibatchCoder::Workspace {
  Workspace(const CoderOptions& options, Index atoms, Index dim, int threads)
      : encoder(options, atoms, dim, threads),
        threads(threads > 0 ? threads : omp_get_max_threads()) {}
  BatchEncoderT<Scalar> encoder;
  int threads;
  MatrixT<Scalar> dictionary, gram;  // float only: the rounded copies
  MatrixT<Scalar> x, dtx, codes, warm;
  VectorT<Scalar> x_sqnorms;

  Index encode(const MatrixT<Scalar>& dictionary, const MatrixT<Scalar>& gram,
               const MatrixT<Scalar>& samples, const MatrixT<Scalar>* warm_codes,
               MatrixT<Scalar>& out) {
    // D^T X in fixed blocks of kColumnBlock samples spread over the OpenMP threads (BLAS
    // itself runs single-threaded, see train/trainer.cpp); fixed blocks keep every column's
    // arithmetic, and so the result, independent of the thread count.
    constexpr Index kColumnBlock = 64;
    const Index n = samples.cols(), blocks = (n + kColumnBlock - 1) / kColumnBlock;
    dtx.resize(dictionary.cols(), n);
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (Index block = 0; block < blocks; ++block) {
      const Index begin = block * kColumnBlock, width = std::min(kColumnBlock, n - begin);
      dtx.middleCols(begin, width).noalias() =
          dictionary.transpose() * samples.middleCols(begin, width);
    }
    x_sqnorms = samples.colwise().squaredNorm().transpose();
    return encoder.encode(dictionary, gram, samples, dtx, x_sqnorms, out, warm_codes);
  }
};

MinibatchCoder::MinibatchCoder(const CoderOptions& options, Precision precision, Index atoms,
                               Index dim, int threads)
    : precision_(precision), gram_(atoms, atoms) {
  if (precision == Precision::float64)
    double_ = std::make_unique<Workspace<double>>(options, atoms, dim, threads);
  else
    float_ = std::make_unique<Workspace<float>>(options, atoms, dim, threads);
}

MinibatchCoder::~MinibatchCoder() = default;

void MinibatchCoder::set_dictionary(const Matrix& dictionary) {
  DICTLEARN_ASSERT(dictionary.cols() == gram_.cols());
  // SYRK computes D^T D's upper triangle, half the work of the GEMM; then mirrored.
  blas::syrk_upper_transposed(1.0, dictionary, 0.0, gram_);
  blas::symmetrize_from_upper(gram_);
  dictionary_ = dictionary;
  if (float_) {
    float_->dictionary = dictionary.cast<float>();
    float_->gram = gram_.cast<float>();  // rounded once from the double product
  }
}

Index MinibatchCoder::encode(const Matrix& x, Matrix& codes, const Matrix* warm_codes) {
  DICTLEARN_ASSERT(dictionary_.cols() == gram_.cols());  // set_dictionary was called
  if (double_) return double_->encode(dictionary_, gram_, x, warm_codes, codes);
  Workspace<float>& w = *float_;
  w.x = x.cast<float>();
  if (warm_codes != nullptr) w.warm = warm_codes->cast<float>();
  const Index nonzeros =
      w.encode(w.dictionary, w.gram, w.x, warm_codes != nullptr ? &w.warm : nullptr, w.codes);
  codes = w.codes.cast<double>();
  return nonzeros;
}

}  // namespace dictlearn
