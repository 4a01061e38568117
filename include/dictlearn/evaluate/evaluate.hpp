#pragma once
// `dictlearn evaluate`: how well a dictionary compresses a test set under a fixed
// description budget (Dictionary Learning Under Generative Coefficient Priors, ICLR 2022
// submission, section 5): each sample is described by k numbers, the k nonzero
// coefficients of k-sparse OMP (sparsity models), rounded to a number of significant
// digits; the reconstruction D a is compared with the noiseless data when given, else
// with the input itself.
//
//   read shard   rank r owns rows encode_rows(N, r, P) of the input (and of the clean set)
//   code         Batch-OMP with `nonzeros` atoms (D^T X per chunk, G = D^T D once)
//   round        every kept coefficient to `digits` significant digits
//   compare      sum ||x_ref - D a||^2 and sum ||x_ref||^2, allreduced
#include "dictlearn/data/preprocess.hpp"
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/prior/generative_prior.hpp"

namespace dictlearn {

/// `value` rounded to `digits` significant decimal digits (0 stays 0; digits <= 0: as is).
double round_significant(double value, int digits);

struct EvaluateOptions {
  Index nonzeros = 5;  ///< k: coefficients per sample
  int digits = 4;      ///< significant digits kept of each coefficient (0: no rounding)
  double peak = 0.0;   ///< > 0: also PSNR = 10 log10(peak^2 / mean squared error per value)
  Normalization normalize = Normalization::none;  ///< applied to the input and the reference
  int threads = 0;
  Index chunk_rows = 4096;
};

struct EvaluationResult {
  Index samples = 0;
  Index features = 0;
  double squared_error = 0.0;       ///< sum over samples of ||x_ref - D a||^2
  double reference_energy = 0.0;    ///< sum over samples of ||x_ref||^2
  double mean_squared_error = 0.0;  ///< per value: squared_error / (samples * features)
  double mean_sample_error = 0.0;   ///< per sample: squared_error / samples
  double relative_error = 0.0;      ///< squared_error / reference_energy
  double psnr = 0.0;                ///< dB, when options.peak > 0
};

/// Collective. `clean` (may be null) must match `input` in shape.
EvaluationResult evaluate_sparse(const Communicator& comm, SampleSource& input, SampleSource* clean,
                                 const Matrix& dictionary, const EvaluateOptions& options);

/// Collective. The generative-prior model y = A G(z): each sample is described by its
/// decoded z (k = G's input dimension numbers, rounded like the sparse coefficients);
/// `dictionary` is A (m x n). Decoding is deterministic per (seed, global row).
EvaluationResult evaluate_generative(const Communicator& comm, SampleSource& input,
                                     SampleSource* clean, const Matrix& dictionary,
                                     const GeneratorNetwork& generator, const DecodeOptions& decode,
                                     const EvaluateOptions& options);

}  // namespace dictlearn
