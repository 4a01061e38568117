#pragma once
// A rank's reader of its share of each global minibatch. It keeps one chunk buffer per
// owned virtual shard (memory: owned shards x chunk_rows x d values, independent of N)
// and reads the next chunk when a shard's position crosses into it.
//
// Reads from a file are collective: before minibatch t every rank computes, from the
// global schedule alone, how many chunk reads each rank needs, and all ranks issue the
// maximum number of read calls (the extra ones empty), so nobody waits in H5Dread.
#include <string>
#include <vector>

#include "dictlearn/data/minibatch_schedule.hpp"
#include "dictlearn/data/sample_source.hpp"

namespace dictlearn {

class MinibatchLoader {
 public:
  MinibatchLoader(SampleSource& source, const MinibatchSchedule& schedule, int rank, int ranks);

  /// Fixes the visiting order of every virtual shard for this epoch.
  void start_epoch(Index epoch);

  /// Collective. Prepares to continue the current epoch at minibatch t (after a resume):
  /// loads, for each owned shard, the chunk an uninterrupted run would hold in memory.
  void seek(Index t, std::string& failure);

  /// Collective. Puts this rank's samples of global minibatch t (of the current epoch)
  /// into `batch` (d x count) and their global row numbers into `rows`; returns count.
  /// The first non-finite value met is described in `failure` (left unchanged if none)
  /// rather than thrown, so that the caller can agree on it at its next collective.
  Index load(Index t, Matrix& batch, std::vector<Index>& rows, std::string& failure);

 private:
  struct Stream {
    Index shard = 0;
    Matrix buffer;                // d x chunk_rows
    std::vector<Index> row_perm;  // visiting order of the rows of the loaded chunk
    Index loaded = -1;            // which chunk (visiting position q) is in the buffer
  };
  void read_chunk(Stream& stream, Index q, std::string& failure);
  Index reads_needed(int rank, Index t) const;
  Index seek_reads(int rank, Index t) const;

  SampleSource& source_;
  const MinibatchSchedule& schedule_;
  int rank_, ranks_;
  std::vector<ShardOrder> orders_;  // every virtual shard's order (to count others' reads)
  std::vector<Stream> streams_;     // the owned shards
  Index epoch_ = -1;
};

}  // namespace dictlearn
