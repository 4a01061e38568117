#pragma once
// The initial dictionary: K distinct samples drawn with the seed (the same rows whatever
// the number of ranks), preprocessed like training samples and normalised to unit norm.
// Every rank reads only the drawn rows it owns; an allreduce of the d x K matrix (each
// column nonzero on exactly one rank, so the sum is exact) gives all ranks the same D.
// Atoms beyond N, or drawn samples of norm zero, become seeded random Gaussian atoms.
#include <cstdint>

#include "dictlearn/data/minibatch_schedule.hpp"
#include "dictlearn/data/preprocess.hpp"
#include "dictlearn/data/sample_source.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// Collective. Returns the d x K initial dictionary, identical on every rank.
Matrix initialize_from_samples(const Communicator& comm, SampleSource& source,
                               const MinibatchSchedule& schedule, Index atoms,
                               Normalization normalization, std::uint64_t seed);

/// Checks a user-given dictionary (d x K) and normalises its columns; throws Error naming
/// `origin` on a shape mismatch, a non-finite value or a zero atom.
void validate_initial_dictionary(Matrix& dictionary, Index dim, Index atoms,
                                 const std::string& origin);

}  // namespace dictlearn
