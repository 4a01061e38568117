#pragma once
// The embedded default dataset: synthetic sparse-coded signals
//   x_i = D_true a_i + noise,
// D_true (d x K) with unit-norm Gaussian atoms, a_i with `sparsity` nonzeros on a uniformly
// random support and N(0, 1) values, Gaussian noise at the requested SNR (relative to the
// expected signal power sparsity / d per entry). Row i is generated from (seed, i) alone,
// so any rank can produce any row and the data never depend on the number of ranks.
#include <cstdint>

#include "dictlearn/data/sample_source.hpp"

namespace dictlearn {

struct SyntheticOptions {
  Index samples = 200000;  ///< N
  Index dim = 64;          ///< d
  Index atoms = 256;       ///< K of the ground-truth dictionary
  Index sparsity = 5;      ///< nonzeros per sample
  double snr_db = 30.0;    ///< signal-to-noise ratio in dB
  std::uint64_t seed = 1;  ///< data seed (independent of the training seed)
};

class SyntheticSource : public SampleSource {
 public:
  explicit SyntheticSource(const SyntheticOptions& options);
  Index samples() const override { return options_.samples; }
  Index dim() const override { return options_.dim; }
  std::string describe() const override { return "synthetic"; }
  void read_rows(Index begin, Index count, double* out) override;

  const Matrix& true_dictionary() const { return true_dictionary_; }  ///< d x K
  double noise_std() const { return noise_std_; }

 private:
  SyntheticOptions options_;
  Matrix true_dictionary_;
  double noise_std_ = 0.0;
};

/// Fraction of the columns of `truth` matched by some column of `learned` with
/// |cosine| > threshold (both d x K, any norms).
double fraction_recovered(const Matrix& truth, const Matrix& learned, double threshold = 0.99);

}  // namespace dictlearn
