#include "dictlearn/io/collective_writer.hpp"

#include "dictlearn/core/error.hpp"

namespace dictlearn {

h5::Handle create_collective_file(const Communicator& comm, const std::string& path,
                                  const std::string& what) {
  h5::silence_library_errors();
  h5::Handle access = h5::plist(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"));
  h5::check_status(H5Pset_fapl_mpio(access.get(), comm.get(), MPI_INFO_NULL), "H5Pset_fapl_mpio");
  h5::Handle file;
  comm.agree([&] {
    file = h5::file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, access.get()));
    if (!file)
      throw Error(cat("cannot create ", what, " '", path,
                      "' (does the directory exist, is it writable, is the disk full?)"));
  });
  return file;
}

h5::Handle collective_transfer() {
  h5::Handle transfer = h5::plist(h5::check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate"));
  h5::check_status(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
  return transfer;
}

void write_rows_collective(hid_t file, hid_t transfer, const std::string& name, hid_t file_type,
                           hid_t memory_type, const std::vector<hsize_t>& dims, hsize_t row_begin,
                           hsize_t rows, const void* data) {
  const int rank = int(dims.size());
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(rank, dims.data(), nullptr),
                                             cat("cannot create the dataspace of ", name)));
  h5::Handle set = h5::dataset(h5::check(
      H5Dcreate2(file, name.c_str(), file_type, space.get(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
      cat("cannot create dataset ", name)));
  hsize_t total = 1;
  for (hsize_t extent : dims) total *= extent;
  if (total == 0) return;  // an empty dataset: nothing to write (the same on every rank)
  std::vector<hsize_t> start(dims.size(), 0), count = dims;
  start[0] = row_begin;
  count[0] = rows;
  h5::Handle memory =
      h5::dataspace(h5::check(H5Screate_simple(rank, count.data(), nullptr), "H5Screate_simple"));
  if (rows == 0) {
    H5Sselect_none(space.get());
    H5Sselect_none(memory.get());
  } else {
    h5::check_status(H5Sselect_hyperslab(space.get(), H5S_SELECT_SET, start.data(), nullptr,
                                         count.data(), nullptr),
                     "H5Sselect_hyperslab");
  }
  static const double kNothing = 0.0;  // a valid buffer for ranks that write nothing
  h5::check_status(H5Dwrite(set.get(), memory_type, memory.get(), space.get(), transfer,
                            rows == 0 ? &kNothing : data),
                   cat("cannot write ", name));
}

}  // namespace dictlearn
