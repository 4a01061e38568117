#pragma once
// Collective parallel-HDF5 writing, shared by the encode output and the checkpoints: one
// file created by all ranks through the MPI-IO driver, datasets whose rows are split
// between the ranks, each rank writing its own block in one collective call.
#include <string>
#include <vector>

#include "dictlearn/io/hdf5_handle.hpp"
#include "dictlearn/parallel/communicator.hpp"

namespace dictlearn {

/// Collective: creates (truncates) `path` with the MPI-IO driver. Throws the same Error on
/// every rank if it cannot, naming `what` and the path.
h5::Handle create_collective_file(const Communicator& comm, const std::string& path,
                                  const std::string& what);

/// A transfer property list for collective MPI-IO reads and writes.
h5::Handle collective_transfer();

/// Collective: creates dataset `name` of shape `dims` (dims[0] rows) and writes rows
/// [row_begin, row_begin + rows) from `data` (row-major); a rank with no rows passes 0.
void write_rows_collective(hid_t file, hid_t transfer, const std::string& name, hid_t file_type,
                           hid_t memory_type, const std::vector<hsize_t>& dims, hsize_t row_begin,
                           hsize_t rows, const void* data);

}  // namespace dictlearn
