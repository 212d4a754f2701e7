// grouped_matmul.cu -- one launch multiplies every group of rows by its own matrix:
// the expert step of a mixture of experts after tokens were sorted by expert.
//
// grouped_matmul: X (R, K) holds the rows of G groups back to back, group g owning
//   rows [offs[g], offs[g+1]); Y[r] = X[r] @ W[g] with W (G, K, N), or (G, N, K)
//   read transposed in place when TW (the backward pass's dY @ W[g]^T). The grid's
//   y dimension enumerates (group, BM-row tile) pairs: each block walks the offsets
//   to find its pair (G is small: the number of experts), so no host-side schedule
//   or synchronisation is needed; grid.y is the bound ceil(R/BM) + G and surplus
//   blocks exit at once.
// grouped_matmul_wgrad: the weight gradient dW[g] = X_g^T @ dY_g, (G, K, N), one
//   grid z-slice per group; the reduction runs over the group's rows, and a group
//   without rows gets zeros.
// Both: shared-memory tiles in the accumulation type (f32 for f32/f16/bf16, f64 for
// f64) and a TMxTN register micro-tile per thread of a 16x16 thread grid.
#include "compat.cuh"

// S[k * (BX + PAD) + x] <- the BXxBK tile of an operand whose element (x, k) is at
// G[x * ld + k] (K_CONTIG) or G[k * ld + x]; outside x < nx, k < nk it is 0.
// Consecutive threads take consecutive addresses of the contiguous dimension, so
// global loads coalesce whichever way the operand is stored.
template <class T, class Ac, int BX, int BK, int NT, bool K_CONTIG, int PAD>
TS_DEV void load_tile(Ac* S, const T* __restrict__ G, i64 ld, i64 nx, i64 nk) {
  static_assert((BX * BK) % NT == 0, "tile must split evenly over the threads");
#pragma unroll
  for (int i = 0; i < BX * BK / NT; i++) {
    const int li = threadIdx.x + i * NT;
    const int x = K_CONTIG ? li / BK : li % BX;
    const int k = K_CONTIG ? li % BK : li / BX;
    Ac v = Ac(0);
    if (x < nx && k < nk) v = load_as<Ac>(G[K_CONTIG ? (i64)x * ld + k : (i64)k * ld + x]);
    S[k * (BX + PAD) + x] = v;
  }
}

// acc[i][j] += sum_k As[k][ty*TM + i] * Bs[k][tx*TN + j] over one BK slice.
template <class Ac, int BM, int BN, int BK, int TM, int TN, int PAD>
TS_DEV void mma_tile(Ac (&acc)[TM][TN], const Ac* As, const Ac* Bs, int ty, int tx) {
#pragma unroll
  for (int kk = 0; kk < BK; kk++) {
    Ac a[TM], b[TN];
#pragma unroll
    for (int i = 0; i < TM; i++) a[i] = As[kk * (BM + PAD) + ty * TM + i];
#pragma unroll
    for (int j = 0; j < TN; j++) b[j] = Bs[kk * (BN + PAD) + tx * TN + j];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
      for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
  }
}

template <class T, int BM, int BN, int BK, int TM, int TN, bool TW>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 1)
grouped_matmul(const T* __restrict__ X, const T* __restrict__ W, T* __restrict__ Y,
               const i64* __restrict__ offs, i64 groups, i64 N, i64 K) {
  typedef typename Acc<T>::type Ac;
  constexpr int NT = (BM / TM) * (BN / TN), PAD = 4;  // PAD spreads the smem columns over banks
  alignas(16) __shared__ Ac As[BK * (BM + PAD)];
  alignas(16) __shared__ Ac Bs[BK * (BN + PAD)];

  // Which (group, row tile) is this block? Uniform over the block, so the early
  // return below happens before any barrier for all of its threads together.
  i64 tile = blockIdx.y, g = 0, start = 0, end = 0;
  for (; g < groups; g++) {
    start = offs[g];
    end = offs[g + 1];
    const i64 nt = (end - start + BM - 1) / BM;
    if (tile < nt) break;
    tile -= nt;
  }
  if (g >= groups) return;
  const i64 m0 = start + tile * BM, n0 = (i64)blockIdx.x * BN;
  const i64 rows = end - m0;
  const T* Wg = W + g * K * N;
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);

  Ac acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = Ac(0);

  for (i64 k0 = 0; k0 < K; k0 += BK) {
    __syncthreads();  // the previous slice is no longer being read
    load_tile<T, Ac, BM, BK, NT, true, PAD>(As, X + m0 * K + k0, K, rows, K - k0);
    if (TW)  // W[g] stored (N, K): element (n, k) at n*K + k
      load_tile<T, Ac, BN, BK, NT, true, PAD>(Bs, Wg + n0 * K + k0, K, N - n0, K - k0);
    else     // W[g] stored (K, N): element (n, k) at k*N + n
      load_tile<T, Ac, BN, BK, NT, false, PAD>(Bs, Wg + k0 * N + n0, N, N - n0, K - k0);
    __syncthreads();
    mma_tile<Ac, BM, BN, BK, TM, TN, PAD>(acc, As, Bs, ty, tx);
  }
#pragma unroll
  for (int i = 0; i < TM; i++) {
    const i64 m = ty * TM + i;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const i64 n = n0 + tx * TN + j;
      if (m < rows && n < N) Y[(m0 + m) * N + n] = store_from<T>(acc[i][j]);
    }
  }
}

template <class T, int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 1)
grouped_matmul_wgrad(const T* __restrict__ X, const T* __restrict__ DY, T* __restrict__ DW,
                     const i64* __restrict__ offs, i64 N, i64 K) {
  typedef typename Acc<T>::type Ac;
  constexpr int NT = (BM / TM) * (BN / TN), PAD = 4;
  alignas(16) __shared__ Ac As[BK * (BM + PAD)];
  alignas(16) __shared__ Ac Bs[BK * (BN + PAD)];
  const i64 g = blockIdx.z, start = offs[g], end = offs[g + 1];
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;  // m runs over K
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);

  Ac acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = Ac(0);

  // The reduction index is the row r of the group: X^T's element (m, r) is
  // X[r*K + m] and dY's element (n, r) is DY[r*N + n], both contiguous along x.
  for (i64 r0 = start; r0 < end; r0 += BK) {
    __syncthreads();
    load_tile<T, Ac, BM, BK, NT, false, PAD>(As, X + r0 * K + m0, K, K - m0, end - r0);
    load_tile<T, Ac, BN, BK, NT, false, PAD>(Bs, DY + r0 * N + n0, N, N - n0, end - r0);
    __syncthreads();
    mma_tile<Ac, BM, BN, BK, TM, TN, PAD>(acc, As, Bs, ty, tx);
  }
  T* DWg = DW + g * K * N;
#pragma unroll
  for (int i = 0; i < TM; i++) {
    const i64 m = m0 + ty * TM + i;
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const i64 n = n0 + tx * TN + j;
      if (m < K && n < N) DWg[m * N + n] = store_from<T>(acc[i][j]);
    }
  }
}
