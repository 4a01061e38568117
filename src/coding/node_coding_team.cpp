#include "dictlearn/coding/node_coding_team.hpp"

#include <cstddef>

#include "dictlearn/core/error.hpp"
#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/parallel/node_shared_memory.hpp"

namespace dictlearn {
namespace {

// A segment: four control words, each on its own cache line (the claim word is hammered
// by CAS; keeping the others off its line avoids false sharing), then the arrays.
constexpr std::size_t kLine = 64;
constexpr std::size_t kClaimWord = 0, kDoneWord = kLine, kNonzerosWord = 2 * kLine,
                      kCapacityWord = 3 * kLine, kArrays = 4 * kLine;

constexpr int kSideBits = 20;
constexpr std::uint64_t kSideMask = (std::uint64_t(1) << kSideBits) - 1;
constexpr std::uint64_t kGenerationMask = (std::uint64_t(1) << (64 - 2 * kSideBits)) - 1;

std::uint64_t pack(std::uint64_t generation, Index front, Index back) {
  return ((generation & kGenerationMask) << (2 * kSideBits)) | (std::uint64_t(front) << kSideBits) |
         std::uint64_t(back);
}
std::uint64_t generation_of(std::uint64_t word) { return word >> (2 * kSideBits); }
Index front_of(std::uint64_t word) { return Index((word >> kSideBits) & kSideMask); }
Index back_of(std::uint64_t word) { return Index(word & kSideMask); }

std::size_t aligned(std::size_t bytes) { return (bytes + kLine - 1) / kLine * kLine; }

std::uint64_t* word(void* segment, std::size_t offset) {
  return reinterpret_cast<std::uint64_t*>(static_cast<char*>(segment) + offset);
}

template <typename Scalar>
std::size_t array_bytes(Index count) {
  return aligned(std::size_t(count) * sizeof(Scalar));
}

}  // namespace

template <typename Scalar>
NodeCodingTeam<Scalar>::NodeCodingTeam(const Communicator& node, Index dim, Index atoms,
                                       Index capacity)
    : dim_(dim), atoms_(atoms), capacity_(capacity) {
  if (capacity < 0 || capacity > kMaxSamples)
    throw Error(cat("coding team: ", capacity, " samples per rank and minibatch; at most ",
                    kMaxSamples, " can be shared"));
  const std::size_t bytes = kArrays + array_bytes<Scalar>(dim * capacity) +
                            2 * array_bytes<Scalar>(atoms * capacity) +
                            array_bytes<Scalar>(capacity) + array_bytes<double>(capacity);
  memory_ = std::make_unique<NodeSharedMemory>(node, bytes);
  void* own = memory_->segment(memory_->rank());
  // Generation 0 with nothing claimable: no rank takes anything before the first publish.
  __atomic_store_n(word(own, kClaimWord), pack(0, 0, 0), __ATOMIC_RELAXED);
  __atomic_store_n(word(own, kDoneWord), std::uint64_t(0), __ATOMIC_RELAXED);
  __atomic_store_n(word(own, kNonzerosWord), std::uint64_t(0), __ATOMIC_RELAXED);
  __atomic_store_n(word(own, kCapacityWord), std::uint64_t(capacity), __ATOMIC_RELEASE);
  node.barrier();  // every segment initialised before anyone reads another's
}

template <typename Scalar>
NodeCodingTeam<Scalar>::~NodeCodingTeam() = default;

template <typename Scalar>
int NodeCodingTeam<Scalar>::ranks() const {
  return memory_->ranks();
}

template <typename Scalar>
typename NodeCodingTeam<Scalar>::Samples NodeCodingTeam<Scalar>::view(int rank, Index n) const {
  void* segment = memory_->segment(rank);
  const Index capacity = Index(__atomic_load_n(word(segment, kCapacityWord), __ATOMIC_ACQUIRE));
  DICTLEARN_ASSERT(n <= capacity);
  char* at = static_cast<char*>(segment) + kArrays;
  Scalar* x = reinterpret_cast<Scalar*>(at);
  at += array_bytes<Scalar>(dim_ * capacity);
  Scalar* dtx = reinterpret_cast<Scalar*>(at);
  at += array_bytes<Scalar>(atoms_ * capacity);
  Scalar* sqnorms = reinterpret_cast<Scalar*>(at);
  at += array_bytes<Scalar>(capacity);
  Scalar* codes = reinterpret_cast<Scalar*>(at);
  at += array_bytes<Scalar>(atoms_ * capacity);
  double* residuals = reinterpret_cast<double*>(at);
  return {Eigen::Map<MatrixT<Scalar>>(x, dim_, n), Eigen::Map<MatrixT<Scalar>>(dtx, atoms_, n),
          Eigen::Map<VectorT<Scalar>>(sqnorms, n), Eigen::Map<MatrixT<Scalar>>(codes, atoms_, n),
          Eigen::Map<Vector>(residuals, n)};
}

template <typename Scalar>
typename NodeCodingTeam<Scalar>::Samples NodeCodingTeam<Scalar>::mine(Index n) {
  DICTLEARN_ASSERT(n >= 0 && n <= capacity_);
  return view(memory_->rank(), n);
}

template <typename Scalar>
void NodeCodingTeam<Scalar>::publish(Index n) {
  DICTLEARN_ASSERT(n >= 0 && n <= capacity_);
  DICTLEARN_ASSERT(mine_done());  // the previous round is finished (see the header)
  void* own = memory_->segment(memory_->rank());
  ++generation_;
  published_ = n;
  // Every claim of the previous round has completed (mine_done), so nobody writes these
  // two any more; the release store below publishes them with the buffers.
  __atomic_store_n(word(own, kDoneWord), std::uint64_t(0), __ATOMIC_RELAXED);
  __atomic_store_n(word(own, kNonzerosWord), std::uint64_t(0), __ATOMIC_RELAXED);
  __atomic_store_n(word(own, kClaimWord), pack(generation_, 0, n), __ATOMIC_RELEASE);
}

template <typename Scalar>
bool NodeCodingTeam<Scalar>::claim(Claim& claim) {
  const int ranks = memory_->ranks(), me = memory_->rank();
  const std::uint64_t generation = generation_ & kGenerationMask;
  for (int offset = 0; offset < ranks; ++offset) {
    const int owner = (me + offset) % ranks;
    std::uint64_t* claim_word = word(memory_->segment(owner), kClaimWord);
    std::uint64_t seen = __atomic_load_n(claim_word, __ATOMIC_ACQUIRE);
    while (generation_of(seen) == generation) {
      const Index front = front_of(seen), back = back_of(seen);
      if (front >= back) break;
      Index begin, end;
      if (owner == me) {
        begin = front;
        end = std::min(back, front + kChunk);
      } else {
        end = back;
        begin = std::max(front, back - kChunk);
      }
      const std::uint64_t wanted =
          owner == me ? pack(generation, end, back) : pack(generation, front, begin);
      // On failure `seen` is reloaded and the loop tries again with what is left.
      if (__atomic_compare_exchange_n(claim_word, &seen, wanted, false, __ATOMIC_ACQ_REL,
                                      __ATOMIC_ACQUIRE)) {
        claim = {owner, begin, end};
        return true;
      }
    }
  }
  return false;
}

template <typename Scalar>
typename NodeCodingTeam<Scalar>::Samples NodeCodingTeam<Scalar>::samples_of(
    const Claim& claim) const {
  return view(claim.owner, claim.end);
}

template <typename Scalar>
void NodeCodingTeam<Scalar>::complete(const Claim& claim, Index nonzeros) {
  void* segment = memory_->segment(claim.owner);
  __atomic_fetch_add(word(segment, kNonzerosWord), std::uint64_t(nonzeros), __ATOMIC_RELAXED);
  // Release: the codes (and the nonzeros above) are visible to the owner once it sees
  // the count.
  __atomic_fetch_add(word(segment, kDoneWord), std::uint64_t(claim.end - claim.begin),
                     __ATOMIC_RELEASE);
  if (claim.owner != memory_->rank()) coded_for_others_ += claim.end - claim.begin;
}

template <typename Scalar>
bool NodeCodingTeam<Scalar>::mine_done() const {
  void* own = memory_->segment(memory_->rank());
  return Index(__atomic_load_n(word(own, kDoneWord), __ATOMIC_ACQUIRE)) >= published_;
}

template <typename Scalar>
Index NodeCodingTeam<Scalar>::mine_nonzeros() const {
  void* own = memory_->segment(memory_->rank());
  return Index(__atomic_load_n(word(own, kNonzerosWord), __ATOMIC_ACQUIRE));
}

template class NodeCodingTeam<double>;
template class NodeCodingTeam<float>;

}  // namespace dictlearn
