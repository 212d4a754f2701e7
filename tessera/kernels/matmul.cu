// matmul.cu -- tiled (batched) matrix multiply C = act(alpha * op(A) @ op(B) + bias).
//
// matmul_simt: shared-memory tiles of BMxBK and BKxBN, each thread owns a TMxTN
//   register micro-tile; f32/f64 (and, as the portable path on HIP, f16/bf16
//   converted to f32 on load). The next tiles are prefetched into registers while
//   the current ones are multiplied, where those registers fit beside the
//   accumulators; larger tiles (a hinted 128x128x64 in f32) are copied straight in.
// matmul_wmma: tensor cores (nvcuda::wmma 16x16x16) for f16/bf16 inputs with f32
//   accumulation, NVIDIA only; warps own WMxWN sub-tiles of the BMxBN block.
// Both: the tiles live in dynamic shared memory (TS_DYNAMIC_SMEM), laid out as the
// bytes geometry._check_tile counts: a hinted tile may need more than the 48 KB a
// static __shared__ array can have (128x128x64 in f32 is 67,584 B).
// TA/TB read a transposed operand in place (no copy), batch strides of 0
// broadcast an operand, ACT is the fused epilogue (0 none, 1 relu, 2 gelu (erf),
// 3 silu), bias (length N, may be null) is added before the activation.
// Logical shapes: A (M,K), B (K,N), C (M,N); A is stored (M,K) with row stride lda,
// or (K,M) if TA; B is stored (K,N) with row stride ldb, or (N,K) if TB.
#include "compat.cuh"
#if defined(TS_NVIDIA) && !defined(TS_CPU_EMU)  // the emulator supplies wmma itself
#include <mma.h>
#include <cuda_bf16.h>
#endif

template <int ACT, class A> TS_DEV A activate(A v) {
  if (ACT == 1) return (v > A(0) || v != v) ? v : A(0);  // relu: NaN propagates, as ts.relu
  if (ACT == 2) return A(0.5) * v * (A(1) + erf(v * A(0.70710678118654752440)));
  if (ACT == 3) return v * recip(A(1) + exp(-v));
  return v;
}

template <class T, int ACT, class A>
TS_DEV void store_epilogue(T* C, const T* bias, i64 m, i64 n, i64 ldc, A v, A alpha) {
  v *= alpha;
  if (bias) v += load_as<A>(bias[n]);
  C[m * ldc + n] = store_from<T>(activate<ACT>(v));
}

TS_HD constexpr int cmin(int a, int b) { return a < b ? a : b; }

// Moves one BXxBK tile of an operand from global memory into shared memory via
// registers. Element (x, k) of the operand lives at G[x*ld + k] (K_CONTIG) or
// G[k*ld + x]; each thread moves PER/VEC vectors of VEC elements that are
// contiguous in global memory, using a single 16-byte load when the whole vector
// is in bounds and aligned, element loads with zero fill otherwise (tile edges).
template <class T, int BX, int BK, int NT, bool K_CONTIG>
struct TileLoader {
  static constexpr int PER = BX * BK / NT;
  static constexpr int VEC = cmin(cmin((int)(16 / sizeof(T)), K_CONTIG ? BK : BX), PER);
  static constexpr int NV = PER / VEC;
  static_assert(PER % VEC == 0 && PER >= VEC, "tile too small for the thread count");
  struct alignas(sizeof(T) * VEC) Vec { T v[VEC]; };
  T reg[PER];

  // Vector v of this thread's share: global memory -> r[0, VEC).
  TS_DEV void fetch(int v, T* r, const T* G, i64 ld, i64 x0, i64 k0, i64 X, i64 K) const {
    const int li = threadIdx.x + v * NT;
    const int a = K_CONTIG ? li / (BK / VEC) : li / (BX / VEC);        // strided dim
    const int b = (K_CONTIG ? li % (BK / VEC) : li % (BX / VEC)) * VEC;  // contiguous dim
    const i64 gs = (K_CONTIG ? x0 : k0) + a, gc = (K_CONTIG ? k0 : x0) + b;
    const i64 ns = K_CONTIG ? X : K, nc = K_CONTIG ? K : X;
    const T* p = G + gs * ld + gc;
    if (gs < ns && gc + VEC <= nc && (((u64)p) % sizeof(Vec)) == 0) {
      Vec t = *reinterpret_cast<const Vec*>(p);
#pragma unroll
      for (int j = 0; j < VEC; j++) r[j] = t.v[j];
    } else {
#pragma unroll
      for (int j = 0; j < VEC; j++) r[j] = (gs < ns && gc + j < nc) ? p[j] : store_from<T>(0.0f);
    }
  }

  // r[0, VEC) -> vector v's place in S: [BK][BX + PAD] if S_K_OUTER, else [BX][BK + PAD];
  // U is the smem element type.
  template <bool S_K_OUTER, int PAD, class U> TS_DEV void put(int v, const T* r, U* S) const {
    const int li = threadIdx.x + v * NT;
    const int a = K_CONTIG ? li / (BK / VEC) : li / (BX / VEC);
    const int b = (K_CONTIG ? li % (BK / VEC) : li % (BX / VEC)) * VEC;
#pragma unroll
    for (int j = 0; j < VEC; j++) {
      const int x = K_CONTIG ? a : b + j, k = K_CONTIG ? b + j : a;
      S[S_K_OUTER ? k * (BX + PAD) + x : x * (BK + PAD) + k] = load_as<U>(r[j]);
    }
  }

  TS_DEV void load(const T* G, i64 ld, i64 x0, i64 k0, i64 X, i64 K) {
#pragma unroll
    for (int v = 0; v < NV; v++) fetch(v, &reg[v * VEC], G, ld, x0, k0, X, K);
  }
  template <bool S_K_OUTER, int PAD, class U> TS_DEV void store(U* S) const {
#pragma unroll
    for (int v = 0; v < NV; v++) put<S_K_OUTER, PAD>(v, &reg[v * VEC], S);
  }
  // load + store one vector at a time, never holding the whole share in registers.
  template <bool S_K_OUTER, int PAD, class U>
  TS_DEV void copy(U* S, const T* G, i64 ld, i64 x0, i64 k0, i64 X, i64 K) const {
#pragma unroll
    for (int v = 0; v < NV; v++) {
      T r[VEC];
      fetch(v, r, G, ld, x0, k0, X, K);
      put<S_K_OUTER, PAD>(v, r, S);
    }
  }
};

template <class T, int BM, int BN, int BK, int TM, int TN, bool TA, bool TB, int ACT>
__global__ void __launch_bounds__((BM / TM) * (BN / TN), 1)
matmul_simt(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, const T* __restrict__ bias,
            i64 M, i64 N, i64 K, i64 lda, i64 ldb, i64 ldc,
            i64 batch, i64 stride_a, i64 stride_b, i64 stride_c, double alpha_) {
  typedef typename Acc<T>::type Ac;  // f32 for f32/f16/bf16, f64 for f64
  constexpr int NT = (BM / TM) * (BN / TN), PAD = 4;  // PAD: spreads the transposed smem stores over banks
  TS_DYNAMIC_SMEM(smem);  // BK * (BM + PAD + BN + PAD) * sizeof(Ac) bytes
  Ac (*As)[BM + PAD] = reinterpret_cast<Ac (*)[BM + PAD]>(smem);  // [BK][BM + PAD]
  Ac (*Bs)[BN + PAD] = reinterpret_cast<Ac (*)[BN + PAD]>(&As[BK][0]);  // [BK][BN + PAD]
  typedef TileLoader<T, BM, BK, NT, !TA> LoadA;
  typedef TileLoader<T, BN, BK, NT, TB> LoadB;
  LoadA la;
  LoadB lb;
  // Prefetching keeps both tiles' shares live in registers beside the accumulators and
  // the a/b fragments, and each in-flight vector needs its own address: past an
  // estimate of 128 registers (geometry.PREFETCH_REG_BUDGET, measured with ptxas:
  // 128x128x64 in f32 spills at 144, 128x128x32 does not at 112) copy straight in.
  constexpr int AW = (int)(sizeof(Ac) / 4), SW = sizeof(T) > 4 ? (int)(sizeof(T) / 4) : 1;
  constexpr bool PREFETCH = (TM * TN + TM + TN) * AW + (LoadA::PER + LoadB::PER) * SW <= 128;
  // A long BK (a hinted 64 or more) is unrolled 8 steps at a time: code size and
  // compile time stay bounded, and the registers of hoisted smem loads with them.
  constexpr int KK_UNROLL = PREFETCH ? BK : cmin(BK, 8);
  const int tx = threadIdx.x % (BN / TN), ty = threadIdx.x / (BN / TN);
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
  const Ac alpha = (Ac)alpha_;

  for (i64 bz = blockIdx.z; bz < batch; bz += gridDim.z) {  // gridDim.z is capped at 65535
    const T* Ab = A + bz * stride_a;
    const T* Bb = B + bz * stride_b;
    Ac acc[TM][TN];
#pragma unroll
    for (int i = 0; i < TM; i++)
#pragma unroll
      for (int j = 0; j < TN; j++) acc[i][j] = Ac(0);

    if (PREFETCH) {
      la.load(Ab, lda, m0, 0, M, K);
      lb.load(Bb, ldb, n0, 0, N, K);
    }
    for (i64 k0 = 0; k0 < K; k0 += BK) {
      __syncthreads();  // the previous tile is no longer being read
      if (PREFETCH) {
        la.template store<true, PAD>(&As[0][0]);
        lb.template store<true, PAD>(&Bs[0][0]);
      } else {
        la.template copy<true, PAD>(&As[0][0], Ab, lda, m0, k0, M, K);
        lb.template copy<true, PAD>(&Bs[0][0], Bb, ldb, n0, k0, N, K);
      }
      __syncthreads();
      if (PREFETCH && k0 + BK < K) {  // prefetch the next tiles; their latency hides behind the FMAs
        la.load(Ab, lda, m0, k0 + BK, M, K);
        lb.load(Bb, ldb, n0, k0 + BK, N, K);
      }
#pragma unroll KK_UNROLL
      for (int kk = 0; kk < BK; kk++) {
        Ac a[TM], b[TN];
#pragma unroll
        for (int i = 0; i < TM; i++) a[i] = As[kk][ty * TM + i];
#pragma unroll
        for (int j = 0; j < TN; j++) b[j] = Bs[kk][tx * TN + j];
#pragma unroll
        for (int i = 0; i < TM; i++)
#pragma unroll
          for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
      }
    }
    T* Cb = C + bz * stride_c;
#pragma unroll
    for (int i = 0; i < TM; i++) {
      const i64 m = m0 + ty * TM + i;
#pragma unroll
      for (int j = 0; j < TN; j++) {
        const i64 n = n0 + tx * TN + j;
        if (m < M && n < N) store_epilogue<T, ACT>(Cb, bias, m, n, ldc, acc[i][j], alpha);
      }
    }
    __syncthreads();  // smem is refilled for the next batch entry
  }
}

#if defined(TS_NVIDIA)
template <class T> struct WmmaType;
template <> struct WmmaType<f16> { typedef __half type; };
template <> struct WmmaType<bf16> { typedef __nv_bfloat16 type; };

// Shared-memory copies keep the storage bits: bf16's u16 pattern is exactly a
// __nv_bfloat16, so the smem arrays are reinterpreted for wmma::load_matrix_sync.
template <class T, int BX, int BK, int NT, bool K_CONTIG>
struct RawTileLoader : TileLoader<T, BX, BK, NT, K_CONTIG> {
  template <bool S_K_OUTER, int PAD> TS_DEV void store(T* S) const {
    const int tid = threadIdx.x;
    constexpr int VEC = TileLoader<T, BX, BK, NT, K_CONTIG>::VEC;
#pragma unroll
    for (int v = 0; v < TileLoader<T, BX, BK, NT, K_CONTIG>::NV; v++) {
      const int li = tid + v * NT;
      const int a = K_CONTIG ? li / (BK / VEC) : li / (BX / VEC);
      const int b = (K_CONTIG ? li % (BK / VEC) : li % (BX / VEC)) * VEC;
#pragma unroll
      for (int j = 0; j < VEC; j++) {
        const int x = K_CONTIG ? a : b + j, k = K_CONTIG ? b + j : a;
        S[S_K_OUTER ? k * (BX + PAD) + x : x * (BK + PAD) + k] = this->reg[v * VEC + j];
      }
    }
  }
};

template <class T, int BM, int BN, int BK, int WM, int WN, bool TA, bool TB, int ACT>
__global__ void __launch_bounds__((BM / WM) * (BN / WN) * 32, 1)
matmul_wmma(const T* __restrict__ A, const T* __restrict__ B, T* __restrict__ C, const T* __restrict__ bias,
            i64 M, i64 N, i64 K, i64 lda, i64 ldb, i64 ldc,
            i64 batch, i64 stride_a, i64 stride_b, i64 stride_c, double alpha_) {
  using namespace nvcuda;
  typedef typename WmmaType<T>::type W;
  constexpr int NWARP_N = BN / WN, NT = (BM / WM) * NWARP_N * 32;
  constexpr int FM = WM / 16, FN = WN / 16;
  constexpr int PAD = 8;  // keeps ldm a multiple of 8 elements and rows 32-byte aligned
  static_assert(BK % 16 == 0 && WM % 16 == 0 && WN % 16 == 0, "wmma tiles are 16x16x16");
  static_assert(BM * (BK + PAD) * sizeof(T) % 32 == 0 && BK * (BN + PAD) * sizeof(T) % 32 == 0,
                "each smem array must keep the next one 32-byte aligned for wmma");
  // wmma pointers must be 32-byte aligned: each array is a multiple of 32 bytes (the
  // static_assert), and the buffer, with no static __shared__ before it, starts the
  // block's shared window (CUDA promises 16-byte alignment; the window is far coarser).
  TS_DYNAMIC_SMEM(smem);  // (BM * (BK + PAD) + BK * (BN + PAD)) * sizeof(T) + NT / 32 * 1 KB
  T (*As)[BK + PAD] = reinterpret_cast<T (*)[BK + PAD]>(smem);          // row-major A tile (m, k)
  T (*Bs)[BN + PAD] = reinterpret_cast<T (*)[BN + PAD]>(&As[BM][0]);    // row-major B tile (k, n)
  float (*scratch)[16 * 16] = reinterpret_cast<float (*)[16 * 16]>(&Bs[BK][0]);  // per-warp epilogue staging
  RawTileLoader<T, BM, BK, NT, !TA> la;
  RawTileLoader<T, BN, BK, NT, TB> lb;
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / NWARP_N, wn = warp % NWARP_N;
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
  const float alpha = (float)alpha_;

  for (i64 bz = blockIdx.z; bz < batch; bz += gridDim.z) {
    const T* Ab = A + bz * stride_a;
    const T* Bb = B + bz * stride_b;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[FM][FN];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
      for (int j = 0; j < FN; j++) wmma::fill_fragment(acc[i][j], 0.0f);

    la.load(Ab, lda, m0, 0, M, K);
    lb.load(Bb, ldb, n0, 0, N, K);
    for (i64 k0 = 0; k0 < K; k0 += BK) {
      __syncthreads();
      la.template store<false, PAD>(&As[0][0]);
      lb.template store<true, PAD>(&Bs[0][0]);
      __syncthreads();
      if (k0 + BK < K) {
        la.load(Ab, lda, m0, k0 + BK, M, K);
        lb.load(Bb, ldb, n0, k0 + BK, N, K);
      }
#pragma unroll
      for (int kk = 0; kk < BK; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, W, wmma::row_major> fa[FM];
        wmma::fragment<wmma::matrix_b, 16, 16, 16, W, wmma::row_major> fb[FN];
#pragma unroll
        for (int i = 0; i < FM; i++)
          wmma::load_matrix_sync(fa[i], reinterpret_cast<const W*>(&As[wm * WM + i * 16][kk]), BK + PAD);
#pragma unroll
        for (int j = 0; j < FN; j++)
          wmma::load_matrix_sync(fb[j], reinterpret_cast<const W*>(&Bs[kk][wn * WN + j * 16]), BN + PAD);
#pragma unroll
        for (int i = 0; i < FM; i++)
#pragma unroll
          for (int j = 0; j < FN; j++) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
      }
    }
    // Fragments have an opaque lane layout: stage each through smem, then every
    // lane writes 8 elements with bounds checks and the epilogue.
    T* Cb = C + bz * stride_c;
    float* st = scratch[warp];
#pragma unroll
    for (int i = 0; i < FM; i++)
#pragma unroll
      for (int j = 0; j < FN; j++) {
        wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
        __syncwarp();
        for (int e = lane; e < 256; e += 32) {
          const i64 m = m0 + wm * WM + i * 16 + e / 16, n = n0 + wn * WN + j * 16 + e % 16;
          if (m < M && n < N) store_epilogue<T, ACT>(Cb, bias, m, n, ldc, st[e], alpha);
        }
        __syncwarp();
      }
    __syncthreads();
  }
}
#endif  // TS_NVIDIA
