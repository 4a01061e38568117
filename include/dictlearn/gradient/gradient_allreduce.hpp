#pragma once
// Data-parallel gradients: every rank computes the gradient of the SUM of the losses of its
// shard of the global minibatch; one allreduce turns them into the global sum, and `scale`
// (typically 1 / global batch size) into the gradient of the mean loss.
#include <utility>
#include <vector>

#include "dictlearn/core/types.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// For every block (pointer, element count >= 0): block <- scale * sum over ranks of block.
/// All blocks are packed into one buffer (in the given order) and summed by ONE
/// comm.allreduce_sum, so the cost is one collective whatever the number of blocks. Every
/// rank must pass the same block sizes. Collective on `comm`.
void allreduce_gradients(const Communicator& comm,
                         const std::vector<std::pair<double*, Index>>& blocks, double scale);

}  // namespace dictlearn
