#pragma once
// The Gram matrix G = D^T D formed once per node instead of once per rank: the ranks of a
// node (all holding the same D) each compute a share of G's tiles (core/gram_tiles.hpp),
// publish their upper blocks in node shared memory and copy (and mirror) the others'.
// Every tile is formed by the same product as on one rank, so G is bitwise the same as
// gram_matrix()'s.
//
// Every rank of the node must call compute() the same number of times with the same
// dictionary, as with any collective.
#include <cstdint>

#include "dictlearn/core/gram_tiles.hpp"
#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"

namespace dictlearn {

class NodeGram {
 public:
  /// Collective over `node` (node_communicator()), for dictionaries of `atoms` columns.
  NodeGram(const Communicator& node, Index atoms);

  /// gram = D^T D (K x K); this rank's tiles are spread over `threads` OpenMP threads.
  /// `transposed` as in GramTiles::compute (the same choice on every rank).
  void compute(const Matrix& dictionary, const TransposedDictionary* transposed, Matrix& gram,
               int threads);
  /// The same, with a transposed copy made here if it pays (as gram_matrix()).
  void compute(const Matrix& dictionary, Matrix& gram, int threads);

 private:
  double* buffer(std::uint64_t step) const;

  Index atoms_;
  GramTiles tiles_;
  NodeSharedMemory memory_;
  std::uint64_t steps_ = 0;  // calls so far (the same on every rank)
};

}  // namespace dictlearn
