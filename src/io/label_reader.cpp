#include "dictlearn/io/label_reader.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <utility>

#include "dictlearn/core/error.hpp"

namespace dictlearn {
namespace {

// Collective: the file exists and is HDF5 (agreed), then opened read-only by all ranks
// through the MPI-IO driver.
h5::Handle open_collective(const Communicator& comm, const std::string& file) {
  h5::silence_library_errors();
  comm.agree([&] {
    if (file.empty()) throw Error("no input file given");
    if (!std::filesystem::exists(file)) throw Error(cat("input file '", file, "' does not exist"));
    if (H5Fis_hdf5(file.c_str()) <= 0)
      throw Error(cat("input file '", file, "' is not an HDF5 file"));
  });
  h5::Handle access = h5::plist(h5::check(H5Pcreate(H5P_FILE_ACCESS), "H5Pcreate"));
  h5::check_status(H5Pset_fapl_mpio(access.get(), comm.get(), MPI_INFO_NULL), "H5Pset_fapl_mpio");
  h5::Handle handle = h5::file(H5Fopen(file.c_str(), H5F_ACC_RDONLY, access.get()));
  // Same file on every rank: the collective open fails alike everywhere.
  if (!handle) throw AgreedError(cat("cannot open input file '", file, "'"));
  return handle;
}

h5::Handle collective_read_plist() {
  h5::Handle transfer = h5::plist(h5::check(H5Pcreate(H5P_DATASET_XFER), "H5Pcreate"));
  h5::check_status(H5Pset_dxpl_mpio(transfer.get(), H5FD_MPIO_COLLECTIVE), "H5Pset_dxpl_mpio");
  return transfer;
}

bool object_exists(hid_t file, const std::string& path) {
  if (path.empty() || path == "/") return true;
  // H5Lexists fails (instead of returning 0) when an intermediate group is missing, so
  // walk the path one component at a time.
  size_t position = 0;
  while (position != std::string::npos) {
    position = path.find('/', position + 1);
    const std::string prefix = path.substr(0, position);
    if (prefix.empty() || prefix == "/") continue;
    if (H5Lexists(file, prefix.c_str(), H5P_DEFAULT) <= 0) return false;
  }
  return true;
}

// 1-D dataset length; throws if the dataset is not 1-D.
Index vector_length(hid_t dataset, const std::string& where) {
  h5::Handle space = h5::dataspace(h5::check(H5Dget_space(dataset), "H5Dget_space"));
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (rank != 1) throw Error(cat("dataset '", where, "' has ", rank, " dimensions; expected 1"));
  hsize_t dims[1] = {0};
  H5Sget_simple_extent_dims(space.get(), dims, nullptr);
  return Index(dims[0]);
}

H5T_class_t type_class(hid_t dataset) {
  h5::Handle type = h5::datatype(h5::check(H5Dget_type(dataset), "H5Dget_type"));
  return H5Tget_class(type.get());
}

// Collective read of elements [begin, begin + count) of a 1-D dataset (count may be 0).
void read_vector(hid_t dataset, hid_t transfer, hid_t memory_type, std::int64_t begin,
                 std::int64_t count, void* out, const std::string& what) {
  h5::Handle file_space = h5::dataspace(h5::check(H5Dget_space(dataset), "H5Dget_space"));
  const hsize_t start[1] = {hsize_t(begin)};
  const hsize_t extent[1] = {hsize_t(count)};
  h5::Handle memory = h5::dataspace(h5::check(H5Screate_simple(1, extent, nullptr), "H5Screate"));
  if (count == 0) {
    H5Sselect_none(file_space.get());
    H5Sselect_none(memory.get());
  } else {
    h5::check_status(
        H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr),
        "H5Sselect_hyperslab");
  }
  h5::check_status(H5Dread(dataset, memory_type, memory.get(), file_space.get(), transfer, out),
                   what);
}

// Serial writer of one 1-D dataset (see write_integer_vector).
void write_vector(const std::string& path, const std::string& dataset, hid_t file_type,
                  hid_t memory_type, hsize_t size, const void* values, bool append) {
  h5::silence_library_errors();
  h5::Handle file =
      append ? h5::file(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT))
             : h5::file(H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
  if (!file)
    throw Error(cat("cannot ", append ? "open" : "create", " output file '", path,
                    "' (does the directory exist and is it writable?)"));
  h5::Handle links = h5::plist(h5::check(H5Pcreate(H5P_LINK_CREATE), "H5Pcreate"));
  h5::check_status(H5Pset_create_intermediate_group(links.get(), 1), "H5Pset_create_intermediate");
  const hsize_t dims[1] = {size};
  h5::Handle space = h5::dataspace(h5::check(H5Screate_simple(1, dims, nullptr), "H5Screate"));
  h5::Handle set =
      h5::dataset(h5::check(H5Dcreate2(file.get(), dataset.c_str(), file_type, space.get(),
                                       links.get(), H5P_DEFAULT, H5P_DEFAULT),
                            cat("cannot create dataset '", dataset, "' in '", path, "'")));
  if (size > 0)
    h5::check_status(H5Dwrite(set.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, values),
                     cat("cannot write dataset '", dataset, "' in '", path, "'"));
  set.close(cat("cannot write dataset '", dataset, "' in '", path, "'"));
  file.close(cat("cannot close '", path, "'"));
}

}  // namespace

// ---------------------------------------------------------------------------------------
// LabelReader

LabelReader::LabelReader(const Communicator& comm, const DatasetLocation& location)
    : comm_(&comm), location_(location) {
  file_ = open_collective(comm, location.file);
  const std::string where = location.describe();
  comm.agree([&] {
    if (!object_exists(file_.get(), location.dataset))
      throw Error(cat("dataset '", location.dataset, "' not found in '", location.file, "'"));
    dataset_ = h5::dataset(H5Dopen2(file_.get(), location.dataset.c_str(), H5P_DEFAULT));
    if (!dataset_) throw Error(cat("'", where, "' is not a dataset"));
    const H5T_class_t kind = type_class(dataset_.get());
    if (kind != H5T_INTEGER && kind != H5T_FLOAT)
      throw Error(cat("labels '", where, "' must be integers (class indices 0, 1, ...)"));
    floating_ = kind == H5T_FLOAT;
    file_space_ = h5::dataspace(h5::check(H5Dget_space(dataset_.get()), "H5Dget_space"));
    const int rank = H5Sget_simple_extent_ndims(file_space_.get());
    hsize_t dims[2] = {0, 0};
    if (rank == 1 || rank == 2) H5Sget_simple_extent_dims(file_space_.get(), dims, nullptr);
    if (rank < 1 || rank > 2 || (rank == 2 && dims[1] != 1))
      throw Error(
          cat("labels '", where, "' have ",
              rank == 2 ? cat(dims[0], " x ", dims[1], " values") : cat(rank, " dimensions"),
              "; expected one label per sample (1-D, or N x 1)"));
    rows_ = Index(dims[0]);
    if (rows_ < 1) throw Error(cat("labels '", where, "' are empty"));
  });
  transfer_ = collective_read_plist();
}

std::vector<int> LabelReader::read_rows(Index begin, Index count) {
  DICTLEARN_ASSERT(begin >= 0 && count >= 0 && begin + count <= rows_);
  // A 2-D (N x 1) dataset uses both entries, a 1-D one the first.
  const hsize_t start[2] = {hsize_t(begin), 0};
  const hsize_t extent[2] = {hsize_t(count), 1};
  h5::Handle memory = h5::dataspace(h5::check(H5Screate_simple(1, extent, nullptr), "H5Screate"));
  if (count == 0) {
    H5Sselect_none(file_space_.get());
    H5Sselect_none(memory.get());
  } else {
    h5::check_status(
        H5Sselect_hyperslab(file_space_.get(), H5S_SELECT_SET, start, nullptr, extent, nullptr),
        "H5Sselect_hyperslab");
  }
  const std::string where = location_.describe();
  const std::string failed =
      cat("reading rows ", begin, "..", begin + count, " of '", where, "' failed");
  std::vector<int> labels(static_cast<size_t>(count));
  std::string problem;
  if (floating_) {
    std::vector<double> values(size_t(std::max<Index>(count, 1)));
    h5::check_status(H5Dread(dataset_.get(), H5T_NATIVE_DOUBLE, memory.get(), file_space_.get(),
                             transfer_.get(), values.data()),
                     failed);
    for (Index i = 0; i < count && problem.empty(); ++i) {
      const double v = values[size_t(i)];
      if (!std::isfinite(v) || v != std::floor(v))
        problem = cat("labels '", where, "' hold a non-integer value (", v, ") at row ", begin + i,
                      "; expected class indices 0, 1, ...");
      else if (v < 0)
        problem = cat("labels '", where, "' hold a negative label (", v, ") at row ", begin + i,
                      "; expected class indices 0, 1, ...");
      else if (v > double(INT_MAX))
        problem = cat("labels '", where, "' hold a label too large (", v, ") at row ", begin + i);
      else
        labels[size_t(i)] = int(v);
    }
  } else {
    std::vector<long long> values(size_t(std::max<Index>(count, 1)));
    h5::check_status(H5Dread(dataset_.get(), H5T_NATIVE_LLONG, memory.get(), file_space_.get(),
                             transfer_.get(), values.data()),
                     failed);
    for (Index i = 0; i < count && problem.empty(); ++i) {
      const long long v = values[size_t(i)];
      if (v < 0)
        problem = cat("labels '", where, "' hold a negative label (", v, ") at row ", begin + i,
                      "; expected class indices 0, 1, ...");
      else if (v > INT_MAX)
        problem = cat("labels '", where, "' hold a label too large (", v, ") at row ", begin + i);
      else
        labels[size_t(i)] = int(v);
    }
  }
  comm_->agree([&] {
    if (!problem.empty()) throw Error(problem);
  });
  return labels;
}

// ---------------------------------------------------------------------------------------
// CsrReader

bool CsrReader::is_csr(const Communicator& comm, const DatasetLocation& location) {
  h5::Handle file = open_collective(comm, location.file);
  bool csr = false;
  comm.agree([&] {
    if (!object_exists(file.get(), location.dataset))
      throw Error(cat("'", location.dataset, "' not found in '", location.file, "'"));
    h5::Handle object(H5Oopen(file.get(), location.dataset.c_str(), H5P_DEFAULT), H5Oclose);
    if (!object) throw Error(cat("cannot open '", location.describe(), "'"));
    if (H5Iget_type(object.get()) != H5I_GROUP) return;
    csr = true;
    for (const char* member : {"data", "indices", "indptr"})
      if (H5Lexists(object.get(), member, H5P_DEFAULT) <= 0) csr = false;
    if (!csr)
      throw Error(cat("'", location.describe(),
                      "' is a group without data, indices and indptr (expected a CSR matrix or "
                      "a 2-D dataset)"));
  });
  return csr;
}

CsrReader::CsrReader(const Communicator& comm, const DatasetLocation& location)
    : comm_(&comm), location_(location) {
  file_ = open_collective(comm, location.file);
  const std::string where = location.describe();
  const std::string group = location.dataset == "/" ? "" : location.dataset;
  Index data_length = 0, indices_length = 0;
  comm.agree([&] {
    if (!object_exists(file_.get(), location.dataset))
      throw Error(cat("'", location.dataset, "' not found in '", location.file, "'"));
    const auto open = [&](const char* member, H5T_class_t expected, const char* kind) {
      const std::string path = group + "/" + member;
      if (H5Lexists(file_.get(), path.c_str(), H5P_DEFAULT) <= 0)
        throw Error(cat("sparse matrix '", where, "' has no dataset '", member,
                        "' (expected CSR: data, indices, indptr)"));
      h5::Handle set = h5::dataset(H5Dopen2(file_.get(), path.c_str(), H5P_DEFAULT));
      if (!set) throw Error(cat("'", location.file, ":", path, "' is not a dataset"));
      if (type_class(set.get()) != expected)
        throw Error(cat("dataset '", location.file, ":", path, "' must hold ", kind));
      return set;
    };
    data_ = open("data", H5T_FLOAT, "floating-point values");
    indices_ = open("indices", H5T_INTEGER, "integers");
    indptr_ = open("indptr", H5T_INTEGER, "integers");
    data_length = vector_length(data_.get(), location.file + ":" + group + "/data");
    indices_length = vector_length(indices_.get(), location.file + ":" + group + "/indices");
    const Index offsets = vector_length(indptr_.get(), location.file + ":" + group + "/indptr");
    if (offsets < 2)
      throw Error(cat("sparse matrix '", where, "' is empty (indptr has ", offsets,
                      " entries; expected N + 1 with N >= 1)"));
    rows_ = offsets - 1;
    if (data_length != indices_length)
      throw Error(cat("sparse matrix '", where, "' has ", data_length, " values but ",
                      indices_length, " indices"));
    // shape = (N, K), as scipy.sparse and anndata write it.
    const char* path = location.dataset.c_str();
    if (H5Aexists_by_name(file_.get(), path, "shape", H5P_DEFAULT) > 0) {
      h5::Handle attr =
          h5::attribute(H5Aopen_by_name(file_.get(), path, "shape", H5P_DEFAULT, H5P_DEFAULT));
      h5::Handle space = h5::dataspace(h5::check(H5Aget_space(attr.get()), "H5Aget_space"));
      long long shape[2] = {-1, -1};
      if (H5Sget_simple_extent_npoints(space.get()) != 2 ||
          H5Aread(attr.get(), H5T_NATIVE_LLONG, shape) < 0)
        throw Error(cat("sparse matrix '", where, "': attribute 'shape' must be (N, K)"));
      if (shape[0] != rows_)
        throw Error(cat("sparse matrix '", where, "' has shape (", shape[0], ", ", shape[1],
                        ") but indptr has ", rows_ + 1, " entries (expected N + 1)"));
      if (shape[1] < 1)
        throw Error(cat("sparse matrix '", where, "' has shape (", shape[0], ", ", shape[1],
                        "): no columns"));
      if (shape[1] > INT_MAX)
        throw Error(cat("sparse matrix '", where, "' has ", shape[1],
                        " columns; at most 2^31 - 1 are supported"));
      cols_ = Index(shape[1]);
    }
  });
  transfer_ = collective_read_plist();

  // First and last offsets: indptr[0] >= 0 and indptr[N] <= the number of values.
  std::vector<std::int64_t> ends = read_integers(indptr_.get(), 0, 1, "indptr");
  const std::vector<std::int64_t> last = read_integers(indptr_.get(), rows_, 1, "indptr");
  nonzeros_ = last[0] - ends[0];
  comm.agree([&] {
    if (ends[0] < 0 || last[0] < ends[0] || last[0] > data_length)
      throw Error(cat("sparse matrix '", where, "' has inconsistent indptr (first ", ends[0],
                      ", last ", last[0], ") for ", data_length, " stored values"));
  });

  if (cols_ == 0) {
    // No shape attribute: K = 1 + the largest column index (each rank scans a share).
    const std::int64_t total = last[0] - ends[0];
    const std::int64_t lo = ends[0] + total * comm.rank() / comm.size();
    const std::int64_t hi = ends[0] + total * (comm.rank() + 1) / comm.size();
    const std::vector<std::int64_t> share = read_integers(indices_.get(), lo, hi - lo, "indices");
    long long largest = share.empty() ? -1 : *std::max_element(share.begin(), share.end());
    comm.allreduce_max(&largest, 1);
    comm.agree([&] {
      if (largest < 0)
        throw Error(cat("sparse matrix '", where,
                        "' has no 'shape' attribute and no nonzeros: cannot tell its columns"));
      if (largest >= INT_MAX)
        throw Error(cat("sparse matrix '", where, "' has column index ", largest,
                        "; at most 2^31 - 2 is supported"));
    });
    cols_ = Index(largest + 1);
  }
}

std::vector<std::int64_t> CsrReader::read_integers(hid_t dataset, std::int64_t begin,
                                                   std::int64_t count, const std::string& name) {
  std::vector<std::int64_t> values(size_t(std::max<std::int64_t>(count, 1)));
  read_vector(dataset, transfer_.get(), H5T_NATIVE_INT64, begin, count, values.data(),
              cat("reading '", location_.describe(), "/", name, "' failed"));
  values.resize(size_t(count));
  return values;
}

SparseMatrix CsrReader::read_rows(Index begin, Index count) {
  DICTLEARN_ASSERT(begin >= 0 && count >= 0 && begin + count <= rows_);
  const std::string where = location_.describe();
  // Offsets of the block: indptr[begin .. begin + count] (none for an empty block).
  std::vector<std::int64_t> offsets =
      read_integers(indptr_.get(), begin, count > 0 ? count + 1 : 0, "indptr");
  std::string problem;
  std::int64_t lo = 0, hi = 0;
  if (count > 0) {
    lo = offsets.front();
    hi = offsets.back();
    for (Index j = 0; j < count && problem.empty(); ++j)
      if (offsets[size_t(j) + 1] < offsets[size_t(j)])
        problem = cat("sparse matrix '", where, "' has decreasing indptr at row ", begin + j);
    if (problem.empty() && hi - lo > std::int64_t(INT_MAX))
      problem = cat("sparse matrix '", where, "': more than 2^31 - 1 nonzeros in rows ", begin,
                    "..", begin + count, " (use more ranks)");
  }
  comm_->agree([&] {
    if (!problem.empty()) throw Error(problem);
  });
  const std::int64_t nnz = hi - lo;
  const std::vector<std::int64_t> indices = read_integers(indices_.get(), lo, nnz, "indices");
  std::vector<double> values(size_t(std::max<std::int64_t>(nnz, 1)));
  read_vector(data_.get(), transfer_.get(), H5T_NATIVE_DOUBLE, lo, nnz, values.data(),
              cat("reading '", where, "/data' failed"));
  for (std::int64_t e = 0; e < nnz && problem.empty(); ++e) {
    if (indices[size_t(e)] < 0 || indices[size_t(e)] >= cols_) {
      const auto row = std::upper_bound(offsets.begin(), offsets.end(), lo + e) - offsets.begin();
      problem = cat("sparse matrix '", where, "' has column index ", indices[size_t(e)], " at row ",
                    begin + row - 1, "; expected 0 <= index < ", cols_);
    } else if (!std::isfinite(values[size_t(e)])) {
      const auto row = std::upper_bound(offsets.begin(), offsets.end(), lo + e) - offsets.begin();
      problem = cat("sparse matrix '", where, "' has a non-finite value (", values[size_t(e)],
                    ") at row ", begin + row - 1, ", column ", indices[size_t(e)]);
    }
  }
  comm_->agree([&] {
    if (!problem.empty()) throw Error(problem);
  });

  // The CSR rows of the N x K block are the compressed columns of the K x count matrix.
  SparseMatrix block(cols_, count);
  block.resizeNonZeros(Index(nnz));
  int* outer = block.outerIndexPtr();
  int* inner = block.innerIndexPtr();
  double* value = block.valuePtr();
  for (Index j = 0; j <= count; ++j) outer[j] = count > 0 ? int(offsets[size_t(j)] - lo) : 0;
  for (std::int64_t e = 0; e < nnz; ++e) {
    inner[e] = int(indices[size_t(e)]);
    value[e] = values[size_t(e)];
  }
  // Eigen expects increasing indices within a column; scipy allows any order.
  std::vector<std::pair<int, double>> entries;
  for (Index j = 0; j < count; ++j) {
    const int first = outer[j], end = outer[j + 1];
    if (std::is_sorted(inner + first, inner + end)) continue;
    entries.clear();
    for (int e = first; e < end; ++e) entries.emplace_back(inner[e], value[e]);
    std::stable_sort(entries.begin(), entries.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    for (int e = first; e < end; ++e) {
      inner[e] = entries[size_t(e - first)].first;
      value[e] = entries[size_t(e - first)].second;
    }
  }
  return block;
}

// ---------------------------------------------------------------------------------------
// Serial writers

void write_integer_vector(const std::string& path, const std::string& dataset,
                          const std::vector<long long>& values, bool append) {
  write_vector(path, dataset, H5T_STD_I64LE, H5T_NATIVE_LLONG, hsize_t(values.size()),
               values.data(), append);
}

void write_real_vector(const std::string& path, const std::string& dataset,
                       const std::vector<double>& values, bool append) {
  write_vector(path, dataset, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, hsize_t(values.size()),
               values.data(), append);
}

}  // namespace dictlearn
