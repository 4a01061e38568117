#pragma once
// Checkpoints of a training run, written collectively through parallel HDF5 (MPI-IO).
//
// Content: the dictionary, the statistics A and B, the atom-usage window, the counters
// (epoch, next minibatch, global step), the partial sums of the epoch in progress, the
// history, every configuration key, the rank count, the version, and an FNV-1a checksum
// of the numeric datasets. Random streams are keyed by (seed, epoch, shard, ...) and the
// shard positions follow from (epoch, next minibatch), so nothing else is needed to
// continue exactly: a resumed run with the same rank count is bitwise identical to an
// uninterrupted one, and with another rank count it re-shards from the global position.
//
// Atomicity: written to PATH.tmp, closed, fsync'ed, then renamed over PATH after the
// previous checkpoints moved down the ring PATH -> PATH.1 -> ... -> PATH.<keep-1>. A crash
// at any instant leaves the previous checkpoint intact.
#include <string>
#include <utility>
#include <vector>

#include "dictlearn/parallel/communicator.hpp"
#include "dictlearn/train/trainer.hpp"

namespace dictlearn {

/// Writes `state` to `options.path` (collective; every rank passes the same state).
void write_checkpoint(const Communicator& comm, const CheckpointOptions& options,
                      const TrainState& state);

struct LoadedCheckpoint {
  TrainState state;
  std::vector<std::pair<std::string, std::string>> parameters;  ///< configuration keys
  int ranks = 0;
  std::string path;  ///< the file actually loaded (the newest valid one of the ring)
  std::vector<std::string> skipped;  ///< newer ring members that were corrupt, with why
};

/// Collective. Loads the newest valid checkpoint of the ring at `path` (verifying the
/// checksum and the datasets' shapes); throws Error naming each file and its defect if
/// none is valid, or if none exists.
LoadedCheckpoint load_checkpoint(const Communicator& comm, const std::string& path, Index keep);

/// Whether any member of the ring exists (on rank 0's view, agreed).
bool checkpoint_exists(const Communicator& comm, const std::string& path, Index keep);

}  // namespace dictlearn
