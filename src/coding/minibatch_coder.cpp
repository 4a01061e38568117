#include "dictlearn/coding/minibatch_coder.hpp"

#include <omp.h>

#include <algorithm>
#include <limits>
#include <type_traits>

#include "dictlearn/coding/node_coding_team.hpp"
#include "dictlearn/core/blas.hpp"
#include "dictlearn/core/error.hpp"
#include "dictlearn/core/gram_tiles.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_gram.hpp"

namespace dictlearn {

template <typename Scalar>
struct MinibatchCoder::Workspace {
  Workspace(const CoderOptions& options, Index atoms, Index dim, int threads)
      : encoder(options, atoms, dim, threads),
        threads(threads > 0 ? threads : omp_get_max_threads()),
        encoder_dim(dim) {}
  BatchEncoderT<Scalar> encoder;
  int threads;
  Index encoder_dim;
  std::unique_ptr<NodeCodingTeam<Scalar>> team;  // shares the coding with the node's ranks
  MatrixT<Scalar> dictionary, gram;              // float only: the rounded copies
  MatrixT<Scalar> x, dtx, codes, warm;
  VectorT<Scalar> x_sqnorms;

  // D^T X in fixed blocks of kColumnBlock samples spread over the OpenMP threads (BLAS
  // itself runs single-threaded, see train/trainer.cpp); fixed blocks keep every column's
  // arithmetic, and so the result, independent of the thread count. From the transposed
  // dictionary when there is one (double, where it pays: core/transposed_dictionary.hpp),
  // whose arithmetic per column is the same whatever block the column falls in.
  template <class Samples, class Products>
  void correlate(const MatrixT<Scalar>& dictionary, const TransposedDictionary* transposed,
                 const Samples& samples, Products& products) {
    constexpr Index kColumnBlock = 64;
    const Index n = samples.cols(), blocks = (n + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for num_threads(threads) schedule(static) if (threads > 1 && blocks > 1)
    for (Index block = 0; block < blocks; ++block) {
      const Index begin = block * kColumnBlock, width = std::min(kColumnBlock, n - begin);
      if (transposed != nullptr)
        correlate_columns(*transposed, samples, begin, begin + width, products);
      else
        products.middleCols(begin, width).noalias() =
            dictionary.transpose() * samples.middleCols(begin, width);
    }
  }

  // Columns [begin, end) of D^T X from the transposed dictionary (double only).
  template <class Samples, class Products>
  static void correlate_columns(const TransposedDictionary& transposed, const Samples& samples,
                                Index begin, Index end, Products& products) {
    if constexpr (std::is_same_v<Scalar, double>)
      transposed.multiply(0, transposed.atoms(), samples.data() + begin * samples.outerStride(),
                          samples.outerStride(), end - begin,
                          products.data() + begin * products.outerStride(), products.outerStride());
  }

  // `transposed`: the transposed dictionary, or null (Eigen on D; always so in float).
  Index encode(const MatrixT<Scalar>& dictionary, const TransposedDictionary* transposed,
               const MatrixT<Scalar>& gram, const MatrixT<Scalar>& samples,
               const MatrixT<Scalar>* warm_codes, MatrixT<Scalar>& out, Vector* residual_sqnorms,
               const std::function<void()>& beside) {
    const Index n = samples.cols();
    if (team && warm_codes == nullptr) {
      // The same D^T X and norms, computed by their owner into node shared memory; the
      // codes come back from whichever rank solved them.
      auto shared = team->mine(n);
      if (encoder.reads_samples()) shared.x = samples;
      correlate(dictionary, transposed, samples, shared.dtx);
      shared.x_sqnorms = samples.colwise().squaredNorm().transpose();
      team->publish(n);
      const Index nonzeros = encoder.encode_shared(*team, dictionary, gram, beside);
      out = shared.codes;
      if (residual_sqnorms != nullptr) *residual_sqnorms = shared.residual_sqnorms;
      return nonzeros;
    }
    dtx.resize(dictionary.cols(), n);
    x_sqnorms = samples.colwise().squaredNorm().transpose();
    if (transposed != nullptr) {
      // Each thread forms the D^T X columns of the samples it is about to code: they are
      // then read from its own cache (at K = 256, n = 256 the whole D^T X is 512 KiB).
      const auto prepare = [&](Index begin, Index end) {
        correlate_columns(*transposed, samples, begin, end, dtx);
      };
      return encoder.encode(dictionary, gram, samples, dtx, x_sqnorms, out, warm_codes,
                            residual_sqnorms, beside, prepare);
    }
    correlate(dictionary, nullptr, samples, dtx);
    return encoder.encode(dictionary, gram, samples, dtx, x_sqnorms, out, warm_codes,
                          residual_sqnorms, beside);
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

void MinibatchCoder::share_coding(const Communicator& node, Index max_samples) {
  const Index atoms = gram_.cols();
  if (double_) {
    const Index dim = double_->encoder_dim;
    double_->team = std::make_unique<NodeCodingTeam<double>>(node, dim, atoms, max_samples);
  } else {
    const Index dim = float_->encoder_dim;
    float_->team = std::make_unique<NodeCodingTeam<float>>(node, dim, atoms, max_samples);
  }
}

Index MinibatchCoder::coded_for_others() const {
  if (double_ && double_->team) return double_->team->coded_for_others();
  if (float_ && float_->team) return float_->team->coded_for_others();
  return 0;
}

GramSharing parse_gram_sharing(const std::string& name) {
  if (name == "auto") return GramSharing::automatic;
  if (name == "on") return GramSharing::on;
  if (name == "off") return GramSharing::off;
  throw Error(cat("share-gram: unknown value '", name, "' (expected auto, on or off)"));
}

std::string to_string(GramSharing sharing) {
  return sharing == GramSharing::automatic ? "auto" : sharing == GramSharing::on ? "on" : "off";
}

void MinibatchCoder::share_gram(const Communicator& node, bool timed) {
  node_gram_ = std::make_unique<NodeGram>(node, gram_.cols());
  gram_node_ = &node;
  gram_timed_calls_ = timed ? 0 : -1;
  fastest_gram_[0] = fastest_gram_[1] = std::numeric_limits<double>::infinity();
}

void MinibatchCoder::set_dictionary(const Matrix& dictionary) {
  DICTLEARN_ASSERT(dictionary.cols() == gram_.cols());
  // By tiles (core/gram_tiles.hpp) over the threads, or the node's ranks and their threads:
  // the same G bitwise either way.
  const int threads = double_ ? double_->threads : float_->threads;
  // A transposed copy of D where it pays (core/transposed_dictionary.hpp), for G and D^T X.
  const TransposedDictionary* from = transposed_.assign_where_it_pays(dictionary);
  transposed_in_use_ = from != nullptr;
  const bool timing = node_gram_ && gram_timed_calls_ >= 0 && !gram_sharing_timed();
  const bool together = node_gram_ && (!timing || gram_timed_calls_ % 2 == 0);
  const double start = timing ? MPI_Wtime() : 0.0;
  if (together)
    node_gram_->compute(dictionary, from, gram_, threads);
  else
    gram_matrix(dictionary, from, gram_, threads);
  if (timing) {
    double& fastest = fastest_gram_[together ? 0 : 1];
    fastest = std::min(fastest, MPI_Wtime() - start);
    if (++gram_timed_calls_ == 2 * kGramTimedCalls) {
      // The slowest rank's times, so that every rank of the node decides the same.
      check_mpi(
          MPI_Allreduce(MPI_IN_PLACE, fastest_gram_, 2, MPI_DOUBLE, MPI_MAX, gram_node_->get()),
          "MPI_Allreduce (Gram sharing decision)");
      // Collective (the shared window is freed): every rank is at this call.
      if (fastest_gram_[1] < fastest_gram_[0]) node_gram_.reset();
    }
  }
  dictionary_ = dictionary;
  if (float_) {
    float_->dictionary = dictionary.cast<float>();
    float_->gram = gram_.cast<float>();  // rounded once from the double product
  }
}

Index MinibatchCoder::encode(const Matrix& x, Matrix& codes, const Matrix* warm_codes,
                             Vector* residual_sqnorms, const std::function<void()>& beside) {
  DICTLEARN_ASSERT(dictionary_.cols() == gram_.cols());  // set_dictionary was called
  if (double_)  // with the copy set_dictionary() made, where it pays
    return double_->encode(dictionary_, transposed_in_use_ ? &transposed_ : nullptr, gram_, x,
                           warm_codes, codes, residual_sqnorms, beside);
  Workspace<float>& w = *float_;
  w.x = x.cast<float>();
  if (warm_codes != nullptr) w.warm = warm_codes->cast<float>();
  const Index nonzeros =
      w.encode(w.dictionary, nullptr, w.gram, w.x, warm_codes != nullptr ? &w.warm : nullptr,
               w.codes, residual_sqnorms, beside);
  codes = w.codes.cast<double>();
  return nonzeros;
}

}  // namespace dictlearn
