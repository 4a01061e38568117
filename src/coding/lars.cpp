#include "dictlearn/coding/lars.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "dictlearn/core/error.hpp"

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace dictlearn {

namespace {

// A new atom j is numerically dependent on the active set when the squared diagonal of its
// Cholesky row, G_jj - ||L^-1 G_Aj||^2 (its squared distance to span(D_A)), is below this
// fraction of G_jj. 1e-12 in double; in float rounding alone reaches ~1e-7, hence 100 eps.
template <typename Scalar>
Scalar collinear_threshold() {
  return std::max(Scalar(1e-12), Scalar(100) * std::numeric_limits<Scalar>::epsilon());
}

// Path events. STOP: C reached the target lambda; JOIN: an inactive atom's |c_j| reached C;
// DROP: an active coefficient reached zero (the lasso modification of LARS).
enum class Event { kStop, kJoin, kDrop };

// The triangular solves below run over a sparse code's few active atoms (n ~ 10): GCC's
// vectorised loops, with their scalar remainders, cost more there than they save (and the
// transposed solve's ordered sum only gained shuffles). Plain scalar loops measured 6 %
// faster on the patches' LARS (lars_bench), 5-22 % on MNIST in float.
#if defined(__GNUC__) && !defined(__clang__)
#define DICTLEARN_SCALAR_LOOPS __attribute__((optimize("no-tree-vectorize")))
#else
#define DICTLEARN_SCALAR_LOOPS
#endif

// Solves L y = v in place for the leading n x n block of the lower-triangular `factor`.
// Plain loops over contiguous columns: for the small n of a sparse code they beat the
// general triangular solver, whose set-up dominates at this size.
// `inverse_diagonal` holds 1 / L_kk: a multiply instead of a division on the critical path.
template <typename Scalar>
DICTLEARN_SCALAR_LOOPS void solve_lower(const MatrixT<Scalar>& factor,
                                        const Scalar* inverse_diagonal, Index n, Scalar* v) {
  for (Index k = 0; k < n; ++k) {
    const Scalar* column = factor.data() + k * factor.rows();
    const Scalar value = v[k] * inverse_diagonal[k];
    v[k] = value;
    for (Index i = k + 1; i < n; ++i) v[i] -= column[i] * value;
  }
}

// Solves L^T x = v for the leading n x n block of the lower-triangular `factor`, into
// `x` (which may be `v`). Row k of L^T is column k of L, again contiguous. Each sum runs
// from the last entry down, so x_{k+1}, the one just found, enters last: the rest of the
// sum does not wait for it (ascending, every sum was one chain of dependent multiply-adds
// behind x_{k+1}).
template <typename Scalar>
DICTLEARN_SCALAR_LOOPS void solve_lower_transposed(const MatrixT<Scalar>& factor,
                                                   const Scalar* inverse_diagonal, Index n,
                                                   const Scalar* v, Scalar* x) {
  for (Index k = n - 1; k >= 0; --k) {
    const Scalar* column = factor.data() + k * factor.rows();
    Scalar sum = v[k];
    for (Index i = n - 1; i > k; --i) sum -= column[i] * x[i];
    x[k] = sum * inverse_diagonal[k];
  }
}

// out = sum_m w_m columns_m (first) or out += that sum, over K entries: M columns of the
// Gram matrix in one pass over `out`. In Eigen's widest packets: GCC vectorised the plain
// loop only 256 bits wide on AVX-512 machines (its default preference there), and this is
// ~20 % of a LARS solve.
template <int M, typename Scalar>
void add_gram_columns(const Scalar* const (&columns)[M], const Scalar* w, Index K, bool first,
                      Scalar* out) {
  namespace simd = Eigen::internal;
  using Packet = typename simd::packet_traits<Scalar>::type;
  constexpr Index kWidth = simd::packet_traits<Scalar>::size;
  Packet weights[M];
  for (int m = 0; m < M; ++m) weights[m] = simd::pset1<Packet>(w[m]);
  Index i = 0;
  for (; i + kWidth <= K; i += kWidth) {
    Packet value = simd::pmul(weights[0], simd::ploadu<Packet>(columns[0] + i));
    for (int m = 1; m < M; ++m)
      value = simd::pmadd(weights[m], simd::ploadu<Packet>(columns[m] + i), value);
    if (!first) value = simd::padd(simd::ploadu<Packet>(out + i), value);
    simd::pstoreu(out + i, value);
  }
  for (; i < K; ++i) {  // the same arithmetic, one entry at a time
    Scalar value = w[0] * columns[0][i];
    for (int m = 1; m < M; ++m) value = simd::pmadd(w[m], columns[m][i], value);
    out[i] = first ? value : out[i] + value;
  }
}

// The smallest of K values and the lowest index holding it (+inf and -1 if none is
// below +inf). `packet_values(j)` gives the values of atoms j .. j + width - 1 as one of
// Eigen's SIMD packets, `value(j)` one value with the same arithmetic. One branch-free
// pass in which each lane keeps its own first minimum, then the lanes are compared;
// nothing is stored per atom. The running minimum is a pmin rather than a compare and a
// blend, so the loop-carried chain is one instruction per packet (pmin keeps the old
// value, as the blend would, where the new one is equal or NaN).
template <typename Scalar, typename PacketValues, typename Value>
void first_minimum(Index K, const PacketValues& packet_values, const Value& value, Scalar& best,
                   Index& best_index) {
  namespace simd = Eigen::internal;
  using Packet = typename simd::packet_traits<Scalar>::type;
  constexpr Index kWidth = simd::packet_traits<Scalar>::size;
  best = std::numeric_limits<Scalar>::infinity();
  best_index = -1;
  Index j = 0;
  if (kWidth > 1 && K >= kWidth) {
    const Packet step = simd::pset1<Packet>(Scalar(kWidth));
    Packet lane_best = simd::pset1<Packet>(best);
    Packet lane_index = simd::pset1<Packet>(Scalar(-1));
    // Atom indices travel as Scalar, exact below 2^24 even in float (see the constructor).
    Packet index = simd::plset<Packet>(Scalar(0));
    for (; j + kWidth <= K; j += kWidth) {
      const Packet values = packet_values(j);
      const Packet smaller = simd::pcmp_lt(values, lane_best);
      lane_best = simd::pmin(lane_best, values);
      lane_index = simd::pselect(smaller, index, lane_index);
      index = simd::padd(index, step);
    }
    // Across the lanes, without a branch per lane (which lane wins is a coin toss): the
    // smallest value, then the lowest index among the lanes holding it. A lane holds an
    // index (>= 0) unless its value is still +inf; if every lane is +inf, all are -1.
    best = simd::predux_min(lane_best);
    const Packet holds_best = simd::pcmp_eq(lane_best, simd::pset1<Packet>(best));
    best_index = Index(simd::predux_min(simd::pselect(
        holds_best, lane_index, simd::pset1<Packet>(std::numeric_limits<Scalar>::max()))));
  }
  for (; j < K; ++j) {
    const Scalar v = value(j);
    if (v < best) {
      best = v;
      best_index = j;
    }
  }
}

// The step gamma at which an atom reaches one boundary, numerator / den (max(0, .): an atom
// already, by rounding, beyond C and moving outward enters at once), +inf unless den
// exceeds `tiny` (else the atom moves almost parallel to that boundary and never meets it).
template <typename Scalar>
Scalar side_step(Scalar numerator, Scalar den, Scalar tiny) {
  const Scalar step = std::max(numerator, Scalar(0)) / std::max(den, tiny);
  return den > tiny ? step : std::numeric_limits<Scalar>::infinity();
}

// One atom's join step, gamma at which |c_j - gamma u_j| reaches C - gamma, and whether on
// the + side (c_j reaches +(C - gamma)): the smaller of the side steps
//   (C - c_j) / (1 - u_j)   and   (C + c_j) / (1 + u_j)   [the second not if kPositive].
// With both denominators above `tiny`, cross-multiplying shows the + side is the smaller
// exactly when C u_j <= c_j, so one division serves both sides (two per atom made the
// whole solve ~5 % slower); otherwise the side whose denominator counts is taken.
// screened_join_scan takes the exact steps of the atoms its screen passes from here.
template <bool kPositive, typename Scalar>
bool join_plus_side(Scalar c, Scalar u, Scalar C, Scalar tiny) {
  if (kPositive) return true;
  const bool plus_ok = tiny < Scalar(1) - u, minus_ok = tiny < Scalar(1) + u;
  return plus_ok && !(minus_ok && !(C * u <= c));
}

template <bool kPositive, typename Scalar>
Scalar join_step(Scalar c, Scalar u, Scalar C, Scalar tiny, bool& plus_side) {
  plus_side = join_plus_side<kPositive>(c, u, C, tiny);
  return plus_side ? side_step(C - c, Scalar(1) - u, tiny) : side_step(C + c, Scalar(1) + u, tiny);
}

#if defined(__AVX512F__)
// The AVX-512 operations smallest_join and earliest_drop need, for double (8 lanes) and
// float (16 lanes).
template <typename Scalar>
struct Avx512;

template <>
struct Avx512<double> {
  using Vec = __m512d;
  using Mask = __mmask8;
  static constexpr Index kWidth = 8;
  static Vec set1(double v) { return _mm512_set1_pd(v); }
  static Vec load(const double* p) { return _mm512_loadu_pd(p); }
  static Vec load(Mask m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store(double* p, Vec v) { _mm512_storeu_pd(p, v); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_pd(a, b); }
  static Vec div(Mask m, Vec a, Vec b) { return _mm512_maskz_div_pd(m, a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_pd(a, b, c); }
  static Vec minus_product(Vec c, Vec a, Vec b) { return _mm512_fnmadd_pd(a, b, c); }
  static Vec abs(Vec v) { return _mm512_abs_pd(v); }
  static Mask eq(Vec a, Vec b) { return _mm512_cmp_pd_mask(a, b, _CMP_EQ_OQ); }
  static Mask le(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_pd_mask(m, a, b, _CMP_LE_OQ); }
  static Mask lt(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_pd_mask(m, a, b, _CMP_LT_OQ); }
  static Mask ne(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_pd_mask(m, a, b, _CMP_NEQ_UQ); }
  static Vec select(Mask m, Vec if_set, Vec otherwise) {
    return _mm512_mask_mov_pd(otherwise, m, if_set);
  }
  static double reduce_min(Vec v) { return _mm512_reduce_min_pd(v); }
  static Index first_lane(Mask m) { return Index(__builtin_ctz(unsigned(m))); }
};

template <>
struct Avx512<float> {
  using Vec = __m512;
  using Mask = __mmask16;
  static constexpr Index kWidth = 16;
  static Vec set1(float v) { return _mm512_set1_ps(v); }
  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static Vec load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store(float* p, Vec v) { _mm512_storeu_ps(p, v); }
  static Vec sub(Vec a, Vec b) { return _mm512_sub_ps(a, b); }
  static Vec div(Mask m, Vec a, Vec b) { return _mm512_maskz_div_ps(m, a, b); }
  static Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a, b, c); }
  static Vec minus_product(Vec c, Vec a, Vec b) { return _mm512_fnmadd_ps(a, b, c); }
  static Vec abs(Vec v) { return _mm512_abs_ps(v); }
  static Mask eq(Vec a, Vec b) { return _mm512_cmp_ps_mask(a, b, _CMP_EQ_OQ); }
  static Mask le(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_LE_OQ); }
  static Mask lt(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_LT_OQ); }
  static Mask ne(Mask m, Vec a, Vec b) { return _mm512_mask_cmp_ps_mask(m, a, b, _CMP_NEQ_UQ); }
  static Vec select(Mask m, Vec if_set, Vec otherwise) {
    return _mm512_mask_mov_ps(otherwise, m, if_set);
  }
  static float reduce_min(Vec v) { return _mm512_reduce_min_ps(v); }
  static Index first_lane(Mask m) { return Index(__builtin_ctz(unsigned(m))); }
};

template <typename Scalar>
using ScanLanes = Avx512<Scalar>;
#else
// Bit l for lane l of a packet comparison's result (all ones where it holds): one
// instruction on SSE and AVX, lane by lane otherwise.
template <typename Packet>
unsigned lane_bits(const Packet& lanes) {
  using Scalar = typename Eigen::internal::unpacket_traits<Packet>::type;
  using Bits = std::conditional_t<sizeof(Scalar) == 8, std::uint64_t, std::uint32_t>;
  constexpr int kWidth = Eigen::internal::unpacket_traits<Packet>::size;
  Scalar values[kWidth];
  Eigen::internal::pstoreu(values, lanes);
  unsigned mask = 0;
  for (int l = 0; l < kWidth; ++l) {
    Bits pattern;
    std::memcpy(&pattern, &values[l], sizeof pattern);
    if (pattern != 0) mask |= 1u << l;
  }
  return mask;
}
#if defined(__SSE2__)
inline unsigned lane_bits(__m128d lanes) { return unsigned(_mm_movemask_pd(lanes)); }
inline unsigned lane_bits(__m128 lanes) { return unsigned(_mm_movemask_ps(lanes)); }
#endif
#if defined(__AVX__)
inline unsigned lane_bits(__m256d lanes) { return unsigned(_mm256_movemask_pd(lanes)); }
inline unsigned lane_bits(__m256 lanes) { return unsigned(_mm256_movemask_ps(lanes)); }
#endif

// The screened join scan's operations on Eigen's packets (SSE, AVX, NEON...), with lane
// conditions as bits like AVX-512's masks.
template <typename Scalar>
struct PacketLanes {
  using Vec = typename Eigen::internal::packet_traits<Scalar>::type;
  using Mask = unsigned;
  static constexpr Index kWidth = Eigen::internal::packet_traits<Scalar>::size;
  static Vec set1(Scalar v) { return Eigen::internal::pset1<Vec>(v); }
  static Vec load(const Scalar* p) { return Eigen::internal::ploadu<Vec>(p); }
  static void store(Scalar* p, Vec v) { Eigen::internal::pstoreu(p, v); }
  // Unfused, as the packet arithmetic of the correlations' update has always been here.
  static Vec minus_product(Vec c, Vec a, Vec b) {
    return Eigen::internal::psub(c, Eigen::internal::pmul(a, b));
  }
  static Vec fmadd(Vec a, Vec b, Vec c) { return Eigen::internal::pmadd(a, b, c); }
  static Vec abs(Vec v) { return Eigen::internal::pabs(v); }
  static Mask eq(Vec a, Vec b) { return bits(Eigen::internal::pcmp_eq(a, b)); }
  static Mask le(Mask m, Vec a, Vec b) { return m & bits(Eigen::internal::pcmp_le(a, b)); }
  static Mask bits(Vec lanes) { return lane_bits(lanes); }
};

template <typename Scalar>
using ScanLanes = PacketLanes<Scalar>;
#endif

// How far the join scan's screen (below) leans towards letting an atom through, relative
// to C and g |u_j|. Rounding needs a few eps; the slack costs only an exact evaluation of
// a rare near-tie packet.
template <typename Scalar>
Scalar screen_tolerance() {
  return std::is_same<Scalar, float>::value ? Scalar(1e-4) : Scalar(1e-9);
}

// smallest_join, screened. Only joins before `bound` (the stop step) matter, and an atom
// joins before g exactly when it has crossed the band by then, |c_j - g u_j| >= C - g
// (c_j - g u_j in positive mode): |c_j - gamma u_j| - (C - gamma) is convex in gamma and
// negative at 0. That test is a multiply-add and a compare per atom with no chain from
// one packet to the next; only the packets holding an atom that passes it (~2.5 a scan on
// the patches: g falls to the best join found so far) get the exact steps, by join_step
// itself. The screen leans towards passing (screen_tolerance), so every atom whose
// rounded step is <= g is evaluated. The result is what a plain scan of join_step +
// blocked gives wherever that is below `bound`; above it, `best` may be larger or +inf
// (the caller takes no join then).
// It replaced, on AVX-512, a division-free scan that kept each lane's first minimum by
// cross-multiplying (a chain of compares and selects from packet to packet), and on
// other builds a division per packet. lars_bench (patches, 64 x 256), us a sample, codes
// bitwise the same: AVX-512, with earliest_drop, 5.04 -> 4.37-4.45 in double and
// 3.31-3.39 -> 3.21 in float; AVX2 (-march=x86-64-v3) 5.93 -> 5.06 and 3.70 -> 3.50.
// kMoved: last_gamma != 0 (else last_u may be stale); a template argument so that the
// loop carries no test of it.
template <bool kPositive, bool kMoved, typename Scalar>
void screened_join_scan(Scalar* c, const Scalar* last_u, Scalar last_gamma, const Scalar* u,
                        const Scalar* blocked, Index K, Scalar C, Scalar tiny_denominator,
                        Scalar bound, Scalar& best, Index& best_index) {
  using V = ScanLanes<Scalar>;
  using Vec = typename V::Vec;
  using Mask = typename V::Mask;
  constexpr Index kWidth = V::kWidth;
  const Vec zero = V::set1(Scalar(0));
  const Vec step = V::set1(last_gamma);
  const Scalar tolerance = screen_tolerance<Scalar>();
  // The screen at g: pass where |c - g u| + tolerance g |u| >= (C - g) - tolerance C.
  Vec g, g_slack, band;
  Scalar screen_at;
  const auto set_screen = [&](Scalar at) {
    screen_at = at;
    g = V::set1(at);
    g_slack = V::set1(tolerance * at);
    band = V::set1((C - at) - tolerance * C);
  };
  set_screen(bound);
  best = std::numeric_limits<Scalar>::infinity();
  best_index = -1;
  Index j = 0;
  for (; j + kWidth <= K; j += kWidth) {
    Vec cj = V::load(c + j);
    if (kMoved) {
      cj = V::minus_product(cj, step, V::load(last_u + j));
      V::store(c + j, cj);
    }
    const Vec uj = V::load(u + j);
    Vec crossed = V::minus_product(cj, g, uj);
    if (!kPositive) crossed = V::abs(crossed);
    crossed = V::fmadd(g_slack, V::abs(uj), crossed);
    const Mask pass = V::le(V::eq(V::load(blocked + j), zero), band, crossed);
    if (pass == 0) continue;
    // The passing atoms' exact steps (not blocked: blocked_ is 0 there), in ascending
    // order with a strict "<" so that an earlier atom keeps a tie. One or two atoms pass
    // on average, so scalar divisions beat a packet's.
    for (unsigned bits = pass; bits != 0; bits &= bits - 1) {
      const Index atom = j + Index(__builtin_ctz(bits));
      bool plus_side;
      const Scalar value = join_step<kPositive>(c[atom], u[atom], C, tiny_denominator, plus_side);
      if (value < best) {
        best = value;
        best_index = atom;
      }
    }
    if (best < screen_at) set_screen(best);
  }
  for (; j < K; ++j) {  // the tail, one atom at a time
    if (kMoved) c[j] -= last_gamma * last_u[j];
    bool plus_side;
    const Scalar value =
        join_step<kPositive>(c[j], u[j], C, tiny_denominator, plus_side) + blocked[j];
    if (value < best) {
      best = value;
      best_index = j;
    }
  }
}

// The join steps (join_step + blocked) of atoms [0, K): the smallest and the lowest index
// holding it, where that is below `bound` (see screened_join_scan). First, in the same
// pass, the last step's move is applied to the correlations, c -= last_gamma last_u
// (stored back), which saves a pass over K.
template <bool kPositive, typename Scalar>
void smallest_join(Scalar* c, const Scalar* last_u, Scalar last_gamma, const Scalar* u,
                   const Scalar* blocked, Index K, Scalar C, Scalar tiny_denominator, Scalar bound,
                   Scalar& best, Index& best_index) {
  if (last_gamma != Scalar(0))
    screened_join_scan<kPositive, true>(c, last_u, last_gamma, u, blocked, K, C, tiny_denominator,
                                        bound, best, best_index);
  else
    screened_join_scan<kPositive, false>(c, last_u, last_gamma, u, blocked, K, C, tiny_denominator,
                                         bound, best, best_index);
}

// The drop steps -a_k / w_k of active slots [0, n) (w_k != 0): the smallest that is > 0
// and below `gamma`, and the lowest slot holding it, into gamma and slot; false if none.
// A packet of slots takes one division and one test of its lanes' conditions: the scalar
// loop's divisions and data-dependent branches were ~9 % of a solve on AVX-512
// (lars_bench, patches).
template <typename Scalar>
bool earliest_drop(const Scalar* code, const Scalar* direction, Index n, Scalar& gamma,
                   Index& slot) {
  bool found = false;
#if defined(__AVX512F__)
  using V = Avx512<Scalar>;
  using Mask = typename V::Mask;
  const auto zero = V::set1(Scalar(0)), none = V::set1(std::numeric_limits<Scalar>::infinity());
  for (Index k = 0; k < n; k += V::kWidth) {
    const Mask in_range =
        n - k >= V::kWidth ? Mask(~Mask(0)) : Mask((Mask(1) << (n - k)) - Mask(1));
    const auto w = V::load(in_range, direction + k);
    const auto a = V::load(in_range, code + k);
    const Mask moving = V::ne(in_range, w, zero);
    const auto steps = V::div(moving, V::sub(zero, a), w);  // -a / w: negation is exact
    const Mask ahead = V::lt(V::lt(moving, zero, steps), steps, V::set1(gamma));
    if (ahead == 0) continue;
    const auto candidates = V::select(ahead, steps, none);
    gamma = V::reduce_min(candidates);
    slot = k + V::first_lane(V::eq(candidates, V::set1(gamma)));
    found = true;
  }
#else
  // Whole packets: one division and the lanes' conditions as bits, then the few lanes
  // that hold a candidate one by one, in ascending order (strict "<": the lowest slot
  // keeps a tie); the remaining slots one at a time.
  namespace simd = Eigen::internal;
  using V = PacketLanes<Scalar>;
  using Vec = typename V::Vec;
  const auto consider = [&](Index k) {
    if (direction[k] == Scalar(0)) return;
    const Scalar g = -code[k] / direction[k];
    if (g > Scalar(0) && g < gamma) {
      gamma = g;
      slot = k;
      found = true;
    }
  };
  const Vec zero = V::set1(Scalar(0));
  Index k = 0;
  for (; k + V::kWidth <= n; k += V::kWidth) {
    const Vec w = V::load(direction + k);
    const Vec steps = simd::pdiv(simd::psub(zero, V::load(code + k)), w);
    const unsigned ahead = V::bits(simd::pcmp_lt(zero, steps)) &
                           V::bits(simd::pcmp_lt(steps, V::set1(gamma))) &
                           ~V::bits(simd::pcmp_eq(w, zero));
    for (unsigned bits = ahead; bits != 0; bits &= bits - 1)
      consider(k + Index(__builtin_ctz(bits)));
  }
  for (; k < n; ++k) consider(k);
#endif
  return found;
}

// The first atom of a path: the largest |c_j| (c_j if kPositive) over atoms [0, K) that
// are not blocked, and the lowest index holding it (-inf and -1 if all are blocked), as
// the first minimum of blocked_j - |c_j| (negation is exact).
template <bool kPositive, typename Scalar>
void largest_start(const Scalar* c, const Scalar* blocked, Index K, Scalar& best,
                   Index& best_index) {
  namespace simd = Eigen::internal;
  using Packet = typename simd::packet_traits<Scalar>::type;
  const auto packet_values = [&](Index j) {
    const Packet cj = simd::ploadu<Packet>(c + j);
    return simd::psub(simd::ploadu<Packet>(blocked + j), kPositive ? cj : simd::pabs(cj));
  };
  const auto value = [&](Index j) { return blocked[j] - (kPositive ? c[j] : std::abs(c[j])); };
  first_minimum(K, packet_values, value, best, best_index);
  best = -best;
}

}  // namespace

template <typename Scalar>
LarsLasso<Scalar>::LarsLasso(Index n_atoms)
    : n_atoms_(n_atoms),
      chol_(n_atoms, n_atoms),
      correlation_(n_atoms),
      direction_(n_atoms),
      forward_(n_atoms),
      gram_direction_(n_atoms),
      step_direction_(VectorT<Scalar>::Zero(n_atoms)),
      work_(n_atoms),
      active_code_(n_atoms),
      active_sign_(n_atoms),
      active_(n_atoms),
      blocked_(n_atoms),
      inverse_diagonal_(n_atoms) {
  DICTLEARN_ASSERT(n_atoms > 0);
  DICTLEARN_ASSERT(n_atoms < (Index(1) << std::numeric_limits<Scalar>::digits));
}

template <typename Scalar>
void LarsLasso<Scalar>::remove_slot(Index slot, Index n_active) {
  // Deleting row `slot` of L leaves an (n-1) x n lower-Hessenberg matrix H with
  // H H^T = G_AA without that atom; Givens rotations on columns (i, i+1) zero the
  // superdiagonal again, so L is downdated in O(n^2) instead of refactored in O(n^3).
  const Index n = n_active;
  for (Index j = 0; j < n; ++j) {
    for (Index i = std::max(slot, j - 1); i + 1 < n; ++i) chol_(i, j) = chol_(i + 1, j);
  }
  for (Index i = slot; i + 1 < n; ++i) {
    const Scalar a = chol_(i, i);
    const Scalar b = chol_(i, i + 1);
    const Scalar r = std::hypot(a, b);  // > 0: the reduced G_AA stays positive definite
    const Scalar cs = a / r;
    const Scalar sn = b / r;
    chol_(i, i) = r;
    chol_(i, i + 1) = Scalar(0);
    for (Index p = i + 1; p + 1 < n; ++p) {
      const Scalar x = chol_(p, i);
      const Scalar y = chol_(p, i + 1);
      chol_(p, i) = cs * x + sn * y;
      chol_(p, i + 1) = -sn * x + cs * y;
    }
  }
  for (Index i = slot; i + 1 < n; ++i) inverse_diagonal_(i) = Scalar(1) / chol_(i, i);
  // Keep the per-slot arrays in the same (factor) order.
  for (Index k = slot; k + 1 < n; ++k) {
    active_(k) = active_(k + 1);
    active_code_(k) = active_code_(k + 1);
    active_sign_(k) = active_sign_(k + 1);
  }
}

template <typename Scalar>
Index LarsLasso<Scalar>::solve(const MatrixT<Scalar>& gram,
                               const Eigen::Ref<const VectorT<Scalar>>& dtx,
                               const LarsOptions& options, Eigen::Ref<VectorT<Scalar>> code) {
  const Index K = n_atoms_;
  DICTLEARN_ASSERT(gram.rows() == K && gram.cols() == K);
  DICTLEARN_ASSERT(dtx.size() == K && code.size() == K);
  DICTLEARN_ASSERT(options.lambda >= 0.0);
  DICTLEARN_ASSERT(options.max_active >= 0);
  DICTLEARN_ASSERT(options.lasso || !options.positive);  // no nonnegative LAR

  const bool positive = options.positive;
  const bool lasso = options.lasso;
  const Scalar threshold = collinear_threshold<Scalar>();
  // Denominators 1 -/+ u_j below this mean the atom moves (almost) parallel to the
  // boundary |c_j| = C and never reaches it within the step.
  const Scalar tiny_denominator = Scalar(16) * std::numeric_limits<Scalar>::epsilon();
  Scalar lambda = static_cast<Scalar>(options.lambda);  // may grow on a max_active stop

  code.setZero();
  residual_terms_ = false;
  correlation_ = dtx;  // c = D^T x - G a with a = 0
  blocked_.setZero();
  Index n = 0;           // |A|
  Scalar C = Scalar(0);  // common |c_j| of the active atoms, i.e. the current lambda on the path
  Index pending = -1;    // atom to add at the top of the next iteration
  Scalar pending_sign = Scalar(1);
  Index just_dropped = -1;  // its correlation sits exactly on the boundary (see below)
  // The last step's c -= gamma u is applied by the next join scan (same pass) or before a
  // restart: last_gamma and step_direction_ hold it until then.
  Scalar last_gamma = Scalar(0);
  Scalar dropped_sign = Scalar(0);

  // Every step is a breakpoint (one join or drop); the lasso path has O(K) of them in
  // practice. The cap only guards against cycling on degenerate (tied) data.
  const Index max_steps = 8 * K + 64;
  for (Index step = 0; step < max_steps; ++step) {
    if (pending >= 0) {
      // A (max_active+1)-th atom would enter here: stop at this breakpoint, where the
      // current point is the exact lasso solution for lambda' = C.
      if (options.max_active > 0 && n >= options.max_active) {
        lambda = C;
        break;
      }
      // Extend L by one row: L_new = [L 0; r^T d], L r = G_Aj, d^2 = G_jj - ||r||^2.
      const Index j = pending;
      pending = -1;
      for (Index k = 0; k < n; ++k) work_(k) = gram(active_(k), j);
      solve_lower(chol_, inverse_diagonal_.data(), n, work_.data());
      const Scalar gjj = gram(j, j);
      Scalar r_sqnorm = Scalar(0);
      for (Index k = 0; k < n; ++k) r_sqnorm += work_(k) * work_(k);
      const Scalar d2 = gjj - r_sqnorm;
      if (!(d2 > threshold * gjj)) {
        // D_j is in span(D_A): G_AA would be singular. Its correlation then moves with the
        // active ones, so leaving it out keeps the path finite; it stays out for this solve.
        blocked_(j) = std::numeric_limits<Scalar>::infinity();
      } else {
        for (Index k = 0; k < n; ++k) chol_(n, k) = work_(k);
        chol_(n, n) = std::sqrt(d2);
        inverse_diagonal_(n) = Scalar(1) / chol_(n, n);
        active_(n) = j;
        active_code_(n) = Scalar(0);
        active_sign_(n) = pending_sign;
        // Extend y = L^-1 s_A by its new last entry (the earlier ones keep their values).
        Scalar sum = pending_sign;
        for (Index k = 0; k < n; ++k) sum -= work_(k) * forward_(k);
        forward_(n) = sum * inverse_diagonal_(n);
        blocked_(j) = std::numeric_limits<Scalar>::infinity();
        ++n;
      }
    }

    if (n == 0) {
      // Start (or restart after an exclusion): the first atom is argmax_j |c_j|
      // (argmax_j c_j in positive mode); the path starts at lambda_max = that value.
      if (last_gamma != Scalar(0)) {
        correlation_ -= last_gamma * step_direction_;
        last_gamma = Scalar(0);
      }
      Scalar best_value;
      Index best;
      if (positive)
        largest_start<true>(correlation_.data(), blocked_.data(), K, best_value, best);
      else
        largest_start<false>(correlation_.data(), blocked_.data(), K, best_value, best);
      // lambda >= lambda_max: a = 0 satisfies |c_j| <= lambda, the zero code is optimal.
      if (best < 0 || !(best_value > lambda)) break;
      C = best_value;
      pending = best;
      pending_sign = (positive || correlation_(best) >= Scalar(0)) ? Scalar(1) : Scalar(-1);
      continue;
    }

    // Equiangular direction: w = G_AA^-1 s_A = L^-T y with y = L^-1 s_A, which is kept up
    // to date as atoms join (one entry each), so a step needs only the solve with L^T. Moving
    // a_A += gamma w lowers every active correlation c_A = C s_A by exactly gamma s_A.
    solve_lower_transposed(chol_, inverse_diagonal_.data(), n, forward_.data(), direction_.data());
    // u = G[:, A] w: rate at which each correlation decreases, c(gamma) = c - gamma u.
    // Up to four columns per sweep over u (then one sweep for the remaining one to three):
    // a quarter of the loads and stores of single axpys.
    {
      Scalar* out = gram_direction_.data();
      const auto column = [&](Index k) { return gram.data() + active_(k) * K; };
      const Scalar* w = direction_.data();
      Index k = 0;
      for (; k + 4 <= n; k += 4) {
        const Scalar* columns[4] = {column(k), column(k + 1), column(k + 2), column(k + 3)};
        add_gram_columns<4>(columns, w + k, K, k == 0, out);
      }
      if (n - k == 3) {
        const Scalar* columns[3] = {column(k), column(k + 1), column(k + 2)};
        add_gram_columns<3>(columns, w + k, K, k == 0, out);
      } else if (n - k == 2) {
        const Scalar* columns[2] = {column(k), column(k + 1)};
        add_gram_columns<2>(columns, w + k, K, k == 0, out);
      } else if (n - k == 1) {
        const Scalar* columns[1] = {column(k)};
        add_gram_columns<1>(columns, w + k, K, k == 0, out);
      }
    }

    // Step to the next event, gamma = min of:
    //   stop: C - gamma = lambda
    //   join: c_j - gamma u_j = +(C - gamma)  ->  gamma = (C - c_j) / (1 - u_j)
    //         c_j - gamma u_j = -(C - gamma)  ->  gamma = (C + c_j) / (1 + u_j)  [not if positive]
    //   drop: a_k + gamma w_k = 0             ->  gamma = -a_k / w_k  (> 0 only; lasso mode)
    Scalar gamma = C - lambda;
    Event event = Event::kStop;
    Index who = -1;
    Scalar who_sign = Scalar(1);
    // The join candidates of all K atoms; atoms that cannot join (active, excluded) carry
    // +inf through blocked_. The winner is the lowest index holding the smallest
    // candidate, + before -, as a strict "<" scan would pick.
    {
      const Scalar inf = std::numeric_limits<Scalar>::infinity();
      Scalar* c = correlation_.data();
      const Scalar* u = gram_direction_.data();
      const Scalar* blocked = blocked_.data();
      // An atom that just left sits exactly on its old boundary, c_j = C s_j; that side
      // would return gamma = 0 +- rounding and re-add it at once, so only the other side
      // counts for one step.
      const auto rejoin_step = [&](Index j, bool& plus_side) {
        plus_side = dropped_sign < 0;
        if (plus_side) return side_step(C - c[j], Scalar(1) - u[j], tiny_denominator);
        return positive ? inf : side_step(C + c[j], Scalar(1) + u[j], tiny_denominator);
      };
      // The smallest candidate and the lowest index holding it, in one vectorised pass in
      // which the atom that just left is blocked; it is compared afterwards.
      Scalar best;
      Index j;
      if (just_dropped >= 0) blocked_(just_dropped) = inf;
      if (positive)
        smallest_join<true>(c, step_direction_.data(), last_gamma, u, blocked, K, C,
                            tiny_denominator, gamma, best, j);
      else
        smallest_join<false>(c, step_direction_.data(), last_gamma, u, blocked, K, C,
                             tiny_denominator, gamma, best, j);
      last_gamma = Scalar(0);  // applied
      bool plus_side = true;
      if (j >= 0) {
        // The winner's side, by the same arithmetic as the scan.
        plus_side = positive ? join_plus_side<true>(c[j], u[j], C, tiny_denominator)
                             : join_plus_side<false>(c[j], u[j], C, tiny_denominator);
      }
      if (just_dropped >= 0) {
        blocked_(just_dropped) = Scalar(0);
        bool rejoin_plus;
        const Scalar value = rejoin_step(just_dropped, rejoin_plus);
        if (value < best || (value == best && just_dropped < j)) {
          best = value;
          j = just_dropped;
          plus_side = rejoin_plus;
        }
      }
      if (best < gamma) {
        gamma = best;
        event = Event::kJoin;
        who = j;
        who_sign = plus_side ? Scalar(1) : Scalar(-1);
      }
    }
    if (lasso && earliest_drop(active_code_.data(), direction_.data(), n, gamma, who))
      event = Event::kDrop;
    just_dropped = -1;

    // Move along the path: a_A += gamma w, c -= gamma u, C -= gamma.
    for (Index k = 0; k < n; ++k) active_code_(k) += gamma * direction_(k);
    // c -= gamma u: by the next scan (see last_gamma).
    last_gamma = gamma;
    gram_direction_.swap(step_direction_);
    C -= gamma;

    if (event == Event::kStop) break;
    if (event == Event::kJoin) {
      pending = who;
      pending_sign = who_sign;
    } else {
      // Lasso modification: a coefficient reaching zero would change sign, violating
      // c_k = lambda sign(a_k); the atom leaves the active set (and may re-enter later).
      const Index atom = active_(who);
      just_dropped = atom;
      dropped_sign = active_sign_(who);
      blocked_(atom) = Scalar(0);
      remove_slot(who, n);
      --n;
      // The downdated factor changes L^-1 s_A: solve afresh.
      for (Index k = 0; k < n; ++k) forward_(k) = active_sign_(k);
      solve_lower(chol_, inverse_diagonal_.data(), n, forward_.data());
    }
    if (step + 1 == max_steps) lambda = C;  // cap reached: report the current path point
  }

  if (n == 0) {
    residual_terms_ = true;
    code_dot_dtx_ = code_gram_code_ = 0.0;
    return 0;
  }

  // Exact re-solve on the final support: a_A = G_AA^-1 (dtx_A - lambda s_A), which makes
  // c_A = lambda s_A hold to rounding instead of to the accumulated path error. With
  // v = L^-1 (dtx_A - lambda s_A) and a_A = L^-T v, a^T G a = ||v||^2.
  for (Index k = 0; k < n; ++k) work_(k) = dtx(active_(k)) - lambda * active_sign_(k);
  solve_lower(chol_, inverse_diagonal_.data(), n, work_.data());
  double forward_sqnorm = 0.0;
  for (Index k = 0; k < n; ++k) forward_sqnorm += double(work_(k)) * double(work_(k));
  solve_lower_transposed(chol_, inverse_diagonal_.data(), n, work_.data(), work_.data());
  // The same formula holds in LAR mode, where c_A = C s_A too (s_A: signs of the
  // correlations) although coefficients may have crossed zero.
  // Lasso: in exact arithmetic the signs agree with s_A; if rounding flipped one (a
  // coefficient at ~0 on a degenerate path), the path value is the better answer.
  bool signs_agree = true;
  for (Index k = 0; k < n && lasso; ++k)
    signs_agree = signs_agree && !(work_(k) * active_sign_(k) < 0);
  if (signs_agree) active_code_.head(n) = work_.head(n);

  Index nonzeros = 0;
  double code_dot_dtx = 0.0;
  for (Index k = 0; k < n; ++k) {
    code(active_(k)) = active_code_(k);
    if (active_code_(k) != Scalar(0)) ++nonzeros;
    code_dot_dtx += double(active_code_(k)) * double(dtx(active_(k)));
  }
  // The path value (signs_agree false) is not L^-T v: no short cut for its a^T G a.
  residual_terms_ = signs_agree;
  code_dot_dtx_ = code_dot_dtx;
  code_gram_code_ = forward_sqnorm;
  return nonzeros;
}

template class LarsLasso<double>;
template class LarsLasso<float>;

}  // namespace dictlearn
