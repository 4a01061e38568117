#include "dictlearn/parallel/node_gram.hpp"

#include <omp.h>

#include <algorithm>

#include "dictlearn/core/error.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {
namespace {
// Segment layout: every rank's step counter on its own cache line; rank 0's segment then
// holds two K x K arrays, used alternately: a rank writes the next call's tiles into the
// other one while a slower rank may still copy from this one. A rank reuses an array two
// calls later, after the call in between has needed every rank's counter, i.e. after every
// rank has finished copying from it.
constexpr std::size_t kCounter = 0;
constexpr std::size_t kBuffers = 64;

std::size_t array_bytes(Index atoms) { return std::size_t(atoms * atoms) * sizeof(double); }
}  // namespace

NodeGram::NodeGram(const Communicator& node, Index atoms)
    : atoms_(atoms),
      tiles_(atoms),
      memory_(node, kBuffers + (node.rank() == 0 ? 2 * array_bytes(atoms) : 0)) {}

double* NodeGram::buffer(std::uint64_t step) const {
  return reinterpret_cast<double*>(static_cast<char*>(memory_.segment(0)) + kBuffers +
                                   (step & 1) * array_bytes(atoms_));
}

void NodeGram::compute(const Matrix& dictionary, Matrix& gram, int threads) {
  TransposedDictionary transposed;
  compute(dictionary, transposed.assign_where_it_pays(dictionary), gram, threads);
}

void NodeGram::compute(const Matrix& dictionary, const TransposedDictionary* transposed,
                       Matrix& gram, int threads) {
  const Index K = atoms_;
  DICTLEARN_ASSERT(dictionary.cols() == K);
  gram.resize(K, K);
  const std::uint64_t step = ++steps_;
  double* shared = buffer(step);
  const int ranks = memory_.ranks(), rank = memory_.rank();
  // Named variables, not a structured binding: OpenMP regions cannot capture bindings
  // under Clang.
  const std::pair<Index, Index> mine = tiles_.part(rank, ranks);
  const Index first = mine.first, last = mine.second;
  const int team = int(std::clamp<Index>(threads, 1, std::max<Index>(1, tiles_.count())));
  // My tiles: computed into my G (where they stay in cache for the copy) and published,
  // each by its upper block only: the readers mirror it themselves from their own copy.
  // Writing lines another core has read is the dear part of the exchange (at K = 256,
  // d = 64 it took about two thirds as long as forming the tiles); this halves the bytes
  // of the off-diagonal tiles.
#pragma omp parallel num_threads(team) if (team > 1)
  {
    const auto [begin, end] = tiles_.part(omp_get_thread_num(), omp_get_num_threads(), first, last);
    for (Index tile = begin; tile < end; ++tile) {
      tiles_.compute(dictionary, transposed, tile, gram.data(), K);
      tiles_.copy_upper(tile, gram.data(), K, shared, K);
    }
  }
  publish_and_wait(memory_, kCounter, step);
  // The other ranks' tiles: upper blocks copied, lower blocks mirrored from them.
  const Index others = tiles_.count() - (last - first);
#pragma omp parallel for num_threads(team) schedule(static) if (team > 1 && others > 1)
  for (Index i = 0; i < others; ++i) {
    const Index tile = i < first ? i : i + (last - first);
    tiles_.copy_upper_and_mirror(tile, shared, K, gram.data(), K);
  }
}

}  // namespace dictlearn
