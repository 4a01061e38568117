#include "dictlearn/update/distributed_mod_update.hpp"

#include <mpi.h>

#include <algorithm>
#include <cstddef>
#include <limits>
#include <vector>

// BLACS (C interface) and ScaLAPACK (Fortran, hence the trailing underscores, arguments by
// address, and the hidden length of each character argument at the end).
extern "C" {
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int* context, const char* order, int nprow, int npcol);
void Cblacs_gridinfo(int context, int* nprow, int* npcol, int* myrow, int* mycol);
void Cblacs_gridexit(int context);
int numroc_(const int* n, const int* nb, const int* iproc, const int* isrcproc, const int* nprocs);
void descinit_(int* desc, const int* m, const int* n, const int* mb, const int* nb,
               const int* irsrc, const int* icsrc, const int* context, const int* lld, int* info);
void pdpotrf_(const char* uplo, const int* n, double* a, const int* ia, const int* ja,
              const int* desca, int* info, std::size_t uplo_length);
void pdpotrs_(const char* uplo, const int* n, const int* nrhs, const double* a, const int* ia,
              const int* ja, const int* desca, double* b, const int* ib, const int* jb,
              const int* descb, int* info, std::size_t uplo_length);
}

namespace dictlearn {
namespace {

/// A BLACS process grid over a communicator, as square as the rank count allows (rows <=
/// columns, row-major rank order). Owns the BLACS system handle and context; frees them
/// while MPI is still initialised, never MPI itself (no blacs_exit). Non-copyable.
class BlacsGrid {
 public:
  explicit BlacsGrid(const Communicator& comm) {
    int rows = 1;
    for (int r = 1; r * r <= comm.size(); ++r)
      if (comm.size() % r == 0) rows = r;
    handle_ = Csys2blacs_handle(comm.get());
    context_ = handle_;
    Cblacs_gridinit(&context_, "Row", rows, comm.size() / rows);
    Cblacs_gridinfo(context_, &rows_, &cols_, &row_, &col_);
    DICTLEARN_ASSERT(rows_ == rows && cols_ == comm.size() / rows && row_ >= 0 && col_ >= 0);
  }
  ~BlacsGrid() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (finalized) return;
    Cblacs_gridexit(context_);
    Cfree_blacs_system_handle(handle_);
  }
  BlacsGrid(const BlacsGrid&) = delete;
  BlacsGrid& operator=(const BlacsGrid&) = delete;

  int context() const { return context_; }
  int rows() const { return rows_; }
  int cols() const { return cols_; }
  int row() const { return row_; }
  int col() const { return col_; }

 private:
  int handle_ = -1;
  int context_ = -1;
  int rows_ = 0, cols_ = 0, row_ = -1, col_ = -1;
};

/// Square blocks of a multiple of 8 up to 64 (ScaLAPACK's usual size), smaller when n is
/// small so that every process row and column still owns about four blocks.
int block_size(int n, const BlacsGrid& grid) {
  const int per_process = n / (4 * std::max(grid.rows(), grid.cols()));
  return std::clamp(per_process / 8 * 8, 8, 64);
}

/// One rank's part of an m x n matrix distributed in nb x nb blocks, cyclically over the
/// grid from process (0, 0): local (i, j) is global (global_row(i), global_col(j)).
class LocalBlocks {
 public:
  LocalBlocks(const BlacsGrid& grid, int m, int n, int nb) : grid_(grid), nb_(nb) {
    const int zero = 0, row = grid.row(), col = grid.col(), nprow = grid.rows(),
              npcol = grid.cols(), context = grid.context();
    const int rows = numroc_(&m, &nb, &row, &zero, &nprow);
    const int cols = numroc_(&n, &nb, &col, &zero, &npcol);
    const int lld = std::max(1, rows);
    int info = 0;
    descinit_(descriptor_, &m, &n, &nb, &nb, &zero, &zero, &context, &lld, &info);
    DICTLEARN_ASSERT(info == 0);
    values_ = Matrix::Zero(lld, std::max(1, cols));  // never empty: ScaLAPACK gets a pointer
    rows_ = rows;
    cols_ = cols;
  }

  Index rows() const { return rows_; }
  Index cols() const { return cols_; }
  Index global_row(Index i) const { return global(i, grid_.row(), grid_.rows()); }
  Index global_col(Index j) const { return global(j, grid_.col(), grid_.cols()); }
  double& operator()(Index i, Index j) { return values_(i, j); }
  double operator()(Index i, Index j) const { return values_(i, j); }
  double* data() { return values_.data(); }
  const int* descriptor() const { return descriptor_; }

 private:
  // Local index l lies in local block l / nb, which is global block (l / nb) * procs + me.
  Index global(Index l, int me, int procs) const { return (l / nb_ * procs + me) * nb_ + l % nb_; }

  const BlacsGrid& grid_;
  int nb_;
  int descriptor_[9] = {};
  Index rows_ = 0, cols_ = 0;
  Matrix values_;
};

}  // namespace

void mod_dictionary_update_distributed(const Communicator& comm, const Matrix& a, const Matrix& b,
                                       Matrix& dictionary, const ModUpdateOptions& options) {
  // S and eps depend on A alone, identical on every rank: all ranks take the same branch.
  const mod_detail::ModSubsystem sub = mod_detail::mod_subsystem(a, b, dictionary, options);
  const std::vector<Index>& used = sub.used;
  const int n = int(used.size()), d = int(b.rows());
  if (n == 0) return;

  BlacsGrid grid(comm);
  const int nb = block_size(n, grid);
  LocalBlocks system(grid, n, n, nb);    // A_SS + eps I, n x n
  LocalBlocks solution(grid, n, d, nb);  // B_S^T, then D_S^T, n x d
  // Every rank holds A and B: it copies its own blocks, nothing is sent.
  for (Index j = 0; j < system.cols(); ++j) {
    const Index gj = system.global_col(j);
    for (Index i = 0; i < system.rows(); ++i) {
      const Index gi = system.global_row(i);
      system(i, j) = a(used[size_t(gi)], used[size_t(gj)]);
      if (gi == gj) system(i, j) += sub.eps;
    }
  }
  for (Index j = 0; j < solution.cols(); ++j)
    for (Index i = 0; i < solution.rows(); ++i)
      solution(i, j) = b(solution.global_col(j), used[size_t(solution.global_row(i))]);

  // A_SS + eps I = U^T U, then U^T U D_S^T = B_S^T. pdpotrf's info is global: every rank
  // throws the same AgreedError together, and the grid is freed on the way out.
  const int one = 1;
  int info = 0;
  pdpotrf_("U", &n, system.data(), &one, &one, system.descriptor(), &info, 1);
  DICTLEARN_ASSERT(info >= 0);
  if (info != 0)
    throw AgreedError(mod_detail::mod_not_positive_definite("ScaLAPACK pdpotrf", info).what());
  pdpotrs_("U", &n, &d, system.data(), &one, &one, system.descriptor(), solution.data(), &one, &one,
           solution.descriptor(), &info, 1);
  DICTLEARN_ASSERT(info == 0);

  // Gather: each entry of D_S^T is owned by one rank and zero elsewhere, so the sum is
  // exact and every rank receives the same bits.
  DICTLEARN_ASSERT(Index(n) * d <= Index(std::numeric_limits<int>::max()));
  Matrix full = Matrix::Zero(n, d);
  for (Index j = 0; j < solution.cols(); ++j)
    for (Index i = 0; i < solution.rows(); ++i)
      full(solution.global_row(i), solution.global_col(j)) = solution(i, j);
  comm.allreduce_sum(full.data(), full.size());
  mod_detail::mod_store_solution(full, used, dictionary, options);
}

}  // namespace dictlearn
