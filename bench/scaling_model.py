#!/usr/bin/env python3
"""The scaling model of docs/scaling.md: prints its tables (Markdown) from the rates below.

Re-measure the rates on the target machine (docs/scaling.md, section 8) and rerun:
    python3 bench/scaling_model.py
"""
import math

# Measured on the reference machine (1 core, 1 thread), after the speed-up of issue 5.
R_DTX = 71e9        # D^T X (Eigen GEMM over 64-sample blocks, AVX-512), flop/s
R_BCD = 37e9        # blocked BCD online update, 2 d K^2 flop per sweep, flop/s
R_SYRK = 43e9       # G = D^T D by SYRK (d K^2 flop), OpenBLAS Haswell kernel, flop/s
T_SPARSE = 0.5e-9   # s per scattered multiply-add of the sparse statistics and residuals
T_KK = 1.3e-9       # s per K^2 element: add_to + mirror of A and of G
# LARS per sample: K (L_E + L_A s + L_C E[s^2]) seconds. Fitted before the speed-up over
# K = 256-4096 and scaled by the measured speed-up at K = 256, s ~ 12 (17 -> 7 us).
L_E, L_A, L_C = 1.0e-9, 1.25e-9, 0.08e-9
GAMMA = 0.05e-9     # s per byte of the local sum inside the allreduce (measured)
ALPHA_SHM = 0.5e-6  # allreduce latency between 2 ranks of this VM (measured)
# Assumed, not measurable here: InfiniBand HDR, 64 ranks per node.
ALPHA_IB, BETA_IB, BW_NODE, PPN = 2e-6, 1 / 23e9, 200e9, 64

S, S2 = 10, 130     # nonzeros per code and E[s^2] used in the tables


def m_bytes(d, K, word=8):
    return word * (K * (K + 1) // 2 + d * K + K + 7)


def t_sample(d, K, s=S, s2=S2):
    coding = 2 * d * K / R_DTX + K * (L_E + L_A * s + L_C * s2)
    statistics = (s2 / 2 + 2 * d * s) * T_SPARSE  # A triangle, B, residual norms
    return coding + statistics


def t_update(d, K):
    return 2 * d * K * K / R_BCD + d * K * K / R_SYRK + T_KK * K * K


def t_update_split(d, K, ppn, alpha=ALPHA_SHM):
    """The update with D's rows split over the ppn ranks of a node (--update-split on):
    the BCD sweep shrinks by ppn; each block of 8 atoms adds one small allgather through
    shared memory (2 log2(ppn) alpha, and a 36-double Gram triangle per 16-row block);
    D is gathered once through node memory; the Gram matrix stays redundant."""
    if ppn == 1:
        return t_update(d, K)
    blocks = max(1, (d + 15) // 16)
    per_sync = 2 * math.log2(ppn) * alpha + 36 * 8 * blocks * GAMMA
    syncs = (K + 7) // 8 + 1
    return (2 * d * K * K / R_BCD / ppn + syncs * per_sync + 2 * ppn * 8 * d * K / BW_NODE
            + d * K * K / R_SYRK + T_KK * K * K)


def t_red(m, P, ppn=PPN):
    if P == 1:
        return 0.0
    ppn = min(ppn, P)
    t = 2 * math.log2(P) * (ALPHA_IB if P > ppn else ALPHA_SHM) + m * GAMMA
    if P > ppn:
        t += 2 * m * BETA_IB
    return t + (2 * ppn * m / BW_NODE if ppn > 1 else 0.0)


def T(d, K, P, b, word=8, ppn=PPN):
    return b * t_sample(d, K) + t_red(m_bytes(d, K, word), P, ppn) + t_update(d, K)


def ms(x):
    return "%.2f ms" % (x * 1e3) if x < 0.01 else "%.1f ms" % (x * 1e3) if x < 1 else "%.2f s" % x


SHAPES = [(256, 64), (256, 256), (256, 1024), (1024, 64), (1024, 256), (1024, 1024),
          (4096, 64), (4096, 256), (4096, 1024)]

print("Table 1. Per minibatch (b = 256 samples per rank).\n")
print("| K | d | m float64 | m float32 | t_s per sample | b t_s | T_upd | T_upd / b t_s |")
print("|---|---|---|---|---|---|---|---|")
for K, d in SHAPES:
    ts, tu = t_sample(d, K), t_update(d, K)
    print("| %d | %d | %.2f MiB | %.2f MiB | %.1f us | %s | %s | %.2f |" % (
        K, d, m_bytes(d, K) / 2**20, m_bytes(d, K, 4) / 2**20, ts * 1e6, ms(256 * ts), ms(tu),
        tu / (256 * ts)))

print("\nTable 2. Reduction against coding; b* = T_red / t_s.\n")
print("| K | d | T_red P=1024 ppn=1 | ppn=64 | ppn=64 float32 | b t_s, b=16 | b* ppn=64 |")
print("|---|---|---|---|---|---|---|")
for K, d in SHAPES:
    m = m_bytes(d, K)
    r1, r64, r64f = t_red(m, 1024, 1), t_red(m, 1024), t_red(m_bytes(d, K, 4), 1024)
    print("| %d | %d | %s | %s | %s | %s | %.0f |" % (
        K, d, ms(r1), ms(r64), ms(r64f), ms(16 * t_sample(d, K)), r64 / t_sample(d, K)))

print("\nTable 3. Weak scaling, b = 256 per rank (B = 256 P), ppn = 64.\n")
print("| K | d | T(1) | T(1024) | T(1)/T(1024) | samples/s at 1024 | update / comm share |")
print("|---|---|---|---|---|---|---|")
for K, d in SHAPES:
    t1, tp = T(d, K, 1, 256), T(d, K, 1024, 256)
    comm = t_red(m_bytes(d, K), 1024)
    print("| %d | %d | %s | %s | %.2f | %.2g M | %.0f %% / %.0f %% |" % (
        K, d, ms(t1), ms(tp), t1 / tp, 1024 * 256 / tp / 1e6, 100 * t_update(d, K) / tp,
        100 * comm / tp))

print("\nTable 4. Strong scaling, B = 16384 fixed (b = 16384 / P), ppn = 64.\n")
print("| K | d | T(1) | S(16) | S(128) | S(1024) | limit T(1)/T_upd |")
print("|---|---|---|---|---|---|---|")
for K, d in SHAPES:
    t1 = T(d, K, 1, 16384)
    S_ = [t1 / T(d, K, P, 16384 // P) for P in (16, 128, 1024)]
    print("| %d | %d | %s | %.1f | %.1f | %.1f | %.1f |" % (
        K, d, ms(t1), S_[0], S_[1], S_[2], t1 / t_update(d, K)))

print("\nTable 6. The update redundant on every rank, or split by rows over the ranks of "
      "a node (--update-split), against b t_s at b = 256.\n")
print("| K | d | T_upd | split, 2 ranks (this VM) | split, ppn = 64 | b t_s |")
print("|---|---|---|---|---|---|")
for K, d in SHAPES:
    print("| %d | %d | %s | %s | %s | %s |" % (
        K, d, ms(t_update(d, K)), ms(t_update_split(d, K, 2)), ms(t_update_split(d, K, 64)),
        ms(256 * t_sample(d, K))))

print("\nTable 5. This machine: 1 vs 2 ranks, patches (d = 64, K = 256, B = 256, s ~ 11.7).\n")
s, s2 = 11.7, 11.7**2 + 11.7
ts = t_sample(64, 256, s, s2)
t1 = 256 * ts + t_update(64, 256)
t2 = 128 * ts + t_red(m_bytes(64, 256), 2, 2) + t_update(64, 256)
print("| P | predicted per minibatch | predicted speed-up |")
print("|---|---|---|")
print("| 1 | %s | 1.00 |" % ms(t1))
print("| 2 | %s | %.2f |" % (ms(t2), t1 / t2))
