#pragma once
// Everything a minibatch's codes need, in one place: the Gram matrix G = D^T D (refreshed
// once per dictionary update), D^T X (one GEMM per minibatch) and the per-sample coder.
// With Precision::float32 the dictionary, G, the samples and D^T X are kept in float and
// the coders run in float; the codes come back in double, so the statistics, the
// objective and the dictionary update accumulate in double whatever the precision.
#include <memory>
#include <string>

#include "dictlearn/coding/sparse_coder.hpp"
#include "dictlearn/core/transposed_dictionary.hpp"

namespace dictlearn {

class Communicator;
class NodeGram;

/// How the ranks of a node form G = D^T D (MinibatchCoder::share_gram): each a share of
/// the tiles (on), each all of G (off), or the faster of the two, timed over the first
/// dictionaries (automatic; sharing saves arithmetic but moves half of G between cores,
/// which at d = 64, K = 256 cost more than it saved). The same G bitwise in every case.
enum class GramSharing { automatic, on, off };
GramSharing parse_gram_sharing(const std::string& name);  ///< "auto", "on" or "off"
std::string to_string(GramSharing sharing);

class MinibatchCoder {
 public:
  /// `threads` <= 0 means the OpenMP default.
  MinibatchCoder(const CoderOptions& options, Precision precision, Index atoms, Index dim,
                 int threads);
  ~MinibatchCoder();
  MinibatchCoder(const MinibatchCoder&) = delete;
  MinibatchCoder& operator=(const MinibatchCoder&) = delete;

  /// Takes a new dictionary (d x K): recomputes G (by tiles over the threads, see
  /// core/gram_tiles.hpp) and the float copies.
  void set_dictionary(const Matrix& dictionary);
  /// G = D^T D of the current dictionary, in double.
  const Matrix& gram() const { return gram_; }

  /// Codes x (d x n) into codes (K x n); `warm_codes` (K x n) may start iterative coders.
  /// `residual_sqnorms`, if given, receives ||x_j - D c_j||^2 per sample, from G and D^T X
  /// (BatchEncoderT::encode; with float precision, of the float D^T X and G). Returns
  /// the number of nonzeros. `beside`, if given, runs on the calling thread while the
  /// team's other threads start coding (BatchEncoderT::encode).
  Index encode(const Matrix& x, Matrix& codes, const Matrix* warm_codes = nullptr,
               Vector* residual_sqnorms = nullptr, const std::function<void()>& beside = {});

  /// From now on the ranks of `node` code each other's samples (coding/node_coding_team.hpp)
  /// when encode() is called without warm codes; collective over `node`. Every rank of the
  /// node must then make the same sequence of set_dictionary() and encode() calls with the
  /// same dictionaries (as the trainer's ranks do), and pass at most `max_samples` samples.
  /// The codes are bitwise the same as without.
  void share_coding(const Communicator& node, Index max_samples);
  /// From now on the ranks of `node` form G together (parallel/node_gram.hpp), each a share
  /// of its tiles; collective over `node`. Every rank of the node must then make the same
  /// sequence of set_dictionary() calls with the same dictionaries. G is bitwise the same.
  /// `timed`: the next set_dictionary() calls alternate between forming G together and
  /// alone, and the faster way (on the slowest rank) is kept from then on.
  void share_gram(const Communicator& node, bool timed = false);
  /// Whether the node's ranks form G together (now).
  bool gram_shared() const { return node_gram_ != nullptr; }
  /// Whether share_gram's timing has chosen (gram_shared() tells what).
  bool gram_sharing_timed() const { return gram_timed_calls_ == 2 * kGramTimedCalls; }
  /// Samples of other ranks this rank has coded (0 without share_coding).
  Index coded_for_others() const;

 private:
  template <typename Scalar>
  struct Workspace;

  Precision precision_;
  Matrix dictionary_, gram_;         // the current D and G = D^T D, in double
  TransposedDictionary transposed_;  // D^T where it pays, for G and (in double) D^T X
  bool transposed_in_use_ = false;   // set_dictionary() made the copy (it pays there)
  std::unique_ptr<Workspace<double>> double_;
  std::unique_ptr<Workspace<float>> float_;
  std::unique_ptr<NodeGram> node_gram_;
  // share_gram(timed): calls of each way timed, the calls so far (-1: not timing) and the
  // fastest time of each way (shared, alone).
  static constexpr int kGramTimedCalls = 4;
  const Communicator* gram_node_ = nullptr;
  int gram_timed_calls_ = -1;
  double fastest_gram_[2] = {0.0, 0.0};
};

}  // namespace dictlearn
