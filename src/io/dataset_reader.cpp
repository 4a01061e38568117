#include "dictlearn/io/dataset_reader.hpp"

#include <filesystem>

#include "dictlearn/core/error.hpp"

namespace dictlearn {

DatasetLocation DatasetLocation::parse(const std::string& spec,
                                       const std::string& default_dataset) {
  // Only a ':' followed by '/' separates the dataset, so Windows-like or odd file names
  // without a dataset part still work.
  const auto split = spec.rfind(":/");
  if (split == std::string::npos) return {spec, default_dataset};
  return {spec.substr(0, split), spec.substr(split + 1)};
}

DatasetReader::DatasetReader(const Communicator& comm, const DatasetLocation& location)
    : location_(location) {
  h5::silence_library_errors();
  const std::string where = location.describe();
  comm.agree([&] {
    if (location.file.empty()) throw Error("no input file given");
    if (!std::filesystem::exists(location.file))
      throw Error(cat("input file '", location.file, "' does not exist"));
    if (H5Fis_hdf5(location.file.c_str()) <= 0)
      throw Error(cat("input file '", location.file, "' is not an HDF5 file"));
  });

  h5::Handle access = h5::plist(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"));
  h5::check_status(H5Pset_fapl_mpio(access.get(), comm.get(), MPI_INFO_NULL), "H5Pset_fapl_mpio");
  // Collective open: it succeeds or fails alike on all ranks (same file).
  file_ = h5::file(H5Fopen(location.file.c_str(), H5F_ACC_RDONLY, access.get()));
  if (!file_) throw Error(cat("cannot open input file '", location.file, "'"));

  comm.agree([&] {
    if (H5Lexists(file_.get(), location.dataset.c_str(), H5P_DEFAULT) <= 0)
      throw Error(cat("dataset '", location.dataset, "' not found in '", location.file, "'"));
    dataset_ = h5::dataset(H5Dopen2(file_.get(), location.dataset.c_str(), H5P_DEFAULT));
    if (!dataset_) throw Error(cat("'", where, "' is not a dataset"));
    h5::Handle type = h5::datatype(h5::check(H5Dget_type(dataset_.get()), "H5Dget_type"));
    if (H5Tget_class(type.get()) != H5T_FLOAT)
      throw Error(
          cat("dataset '", where, "' must hold floating-point values (float32 or float64)"));
    file_space_ = h5::dataspace(h5::check(H5Dget_space(dataset_.get()), "H5Dget_space"));
    const int rank = H5Sget_simple_extent_ndims(file_space_.get());
    if (rank != 2)
      throw Error(
          cat("dataset '", where, "' has ", rank, " dimensions; expected 2 (samples x features)"));
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(file_space_.get(), dims, nullptr);
    rows_ = Index(dims[0]);
    cols_ = Index(dims[1]);
    if (rows_ < 1 || cols_ < 1)
      throw Error(cat("dataset '", where, "' is empty (", rows_, " x ", cols_, ")"));
  });
  transfer_ = h5::plist(h5::check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate"));
  h5::check_status(H5Pset_dxpl_mpio(transfer_.get(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
}

void DatasetReader::read_rows(Index begin, Index count, double* out) {
  DICTLEARN_ASSERT(begin >= 0 && count >= 0 && begin + count <= rows_);
  const hsize_t start[2] = {hsize_t(begin), 0};
  const hsize_t extent[2] = {hsize_t(count), hsize_t(cols_)};
  h5::Handle memory = h5::dataspace(h5::check(H5Screate_simple(2, extent, nullptr), "H5Screate"));
  if (count == 0) {
    H5Sselect_none(file_space_.get());
    H5Sselect_none(memory.get());
  } else {
    h5::check_status(
        H5Sselect_hyperslab(file_space_.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr),
        "H5Sselect_hyperslab");
  }
  h5::check_status(
      H5Dread(dataset_.get(), H5T_NATIVE_DOUBLE, memory.get(), file_space_.get(), transfer_.get(),
              out),
      cat("reading rows ", begin, "..", begin + count, " of '", location_.describe(), "' failed"));
}

std::string DatasetReader::root_attribute(const std::string& name,
                                          const std::string& fallback) const {
  if (H5Aexists_by_name(file_.get(), "/", name.c_str(), H5P_DEFAULT) <= 0) return fallback;
  h5::Handle attr =
      h5::attribute(H5Aopen_by_name(file_.get(), "/", name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr) return fallback;
  h5::Handle type = h5::datatype(H5Aget_type(attr.get()));
  if (H5Tget_class(type.get()) != H5T_STRING) return fallback;
  h5::Handle memory = h5::datatype(H5Tcopy(H5T_C_S1));
  // Same character set as stored: HDF5 has no conversion between ASCII and UTF-8.
  H5Tset_cset(memory.get(), H5Tget_cset(type.get()));
  if (H5Tis_variable_str(type.get()) > 0) {
    H5Tset_size(memory.get(), H5T_VARIABLE);
    char* text = nullptr;
    if (H5Aread(attr.get(), memory.get(), &text) < 0 || text == nullptr) return fallback;
    std::string value(text);
    H5free_memory(text);
    return value;
  }
  const size_t size = H5Tget_size(type.get());
  std::string value(size, '\0');
  H5Tset_size(memory.get(), size);
  if (H5Aread(attr.get(), memory.get(), value.data()) < 0) return fallback;
  return value.substr(0, value.find('\0'));
}

std::vector<double> DatasetReader::root_attribute_numbers(const std::string& name) const {
  if (H5Aexists_by_name(file_.get(), "/", name.c_str(), H5P_DEFAULT) <= 0) return {};
  h5::Handle attr =
      h5::attribute(H5Aopen_by_name(file_.get(), "/", name.c_str(), H5P_DEFAULT, H5P_DEFAULT));
  if (!attr) return {};
  h5::Handle type = h5::datatype(H5Aget_type(attr.get()));
  const H5T_class_t kind = H5Tget_class(type.get());
  if (kind != H5T_INTEGER && kind != H5T_FLOAT) return {};
  h5::Handle space = h5::dataspace(H5Aget_space(attr.get()));
  const hssize_t count = H5Sget_simple_extent_npoints(space.get());
  if (count < 0) return {};
  std::vector<double> values(static_cast<size_t>(count));
  if (H5Aread(attr.get(), H5T_NATIVE_DOUBLE, values.data()) < 0) return {};
  return values;
}

Matrix DatasetReader::read_all() {
  Matrix all(cols_, rows_);
  read_rows(0, rows_, all.data());
  return all;
}

}  // namespace dictlearn
