#include "dictlearn/data/synthetic.hpp"

#include <cmath>
#include <vector>

#include "dictlearn/core/error.hpp"
#include "dictlearn/core/random.hpp"

namespace dictlearn {
namespace {
constexpr std::uint64_t kDictionaryStream = 0xD1C7;
constexpr std::uint64_t kSampleStream = 0x5A3B;
}  // namespace

SyntheticSource::SyntheticSource(const SyntheticOptions& options) : options_(options) {
  if (options.samples < 1) throw Error("synthetic-samples must be >= 1");
  if (options.dim < 1) throw Error("synthetic-dim must be >= 1");
  if (options.atoms < 1) throw Error("synthetic-atoms must be >= 1");
  if (options.sparsity < 1 || options.sparsity > options.atoms)
    throw Error(cat("synthetic-sparsity must be in [1, synthetic-atoms=", options.atoms, "]"));
  if (!std::isfinite(options.snr_db)) throw Error("synthetic-snr-db must be finite");
  Random random(derive_seed({options.seed, kDictionaryStream}));
  true_dictionary_.resize(options.dim, options.atoms);
  for (Index k = 0; k < options.atoms; ++k) {
    for (Index i = 0; i < options.dim; ++i) true_dictionary_(i, k) = random.normal();
    true_dictionary_.col(k).normalize();
  }
  const double signal_power = double(options.sparsity) / double(options.dim);
  noise_std_ = std::sqrt(signal_power / std::pow(10.0, options.snr_db / 10.0));
}

void SyntheticSource::read_rows(Index begin, Index count, double* out) {
  DICTLEARN_ASSERT(begin >= 0 && begin + count <= options_.samples);
  const Index d = options_.dim, K = options_.atoms, s = options_.sparsity;
  std::vector<Index> support(static_cast<size_t>(s));
  for (Index j = 0; j < count; ++j) {
    Random random(derive_seed({options_.seed, kSampleStream, std::uint64_t(begin + j)}));
    Eigen::Map<Vector> x(out + j * d, d);
    for (Index i = 0; i < d; ++i) x(i) = noise_std_ * random.normal();
    // A uniformly random support of s distinct atoms (rejection is cheap for s << K).
    for (Index n = 0; n < s; ++n) {
      Index atom;
      bool fresh;
      do {
        atom = Index(random.below(std::uint64_t(K)));
        fresh = true;
        for (Index m = 0; m < n; ++m) fresh = fresh && support[size_t(m)] != atom;
      } while (!fresh);
      support[size_t(n)] = atom;
      x += random.normal() * true_dictionary_.col(atom);
    }
  }
}

double fraction_recovered(const Matrix& truth, const Matrix& learned, double threshold) {
  DICTLEARN_ASSERT(truth.rows() == learned.rows());
  const Matrix a = truth.colwise().normalized();
  const Matrix b = learned.colwise().normalized();
  const Matrix cosines = (a.transpose() * b).cwiseAbs();  // K_true x K_learned
  Index found = 0;
  for (Index k = 0; k < cosines.rows(); ++k) found += cosines.row(k).maxCoeff() > threshold;
  return truth.cols() == 0 ? 0.0 : double(found) / double(truth.cols());
}

}  // namespace dictlearn
