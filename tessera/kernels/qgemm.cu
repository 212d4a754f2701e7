// qgemm.cu -- quantized matrix multiply.
//
// qgemm_mma  (NVIDIA sm_80+): C = epi(A_i8 @ B_i8^T) with int8 tensor cores
//            (mma.sync m16n8k32 s8.s8.s32), int32 accumulation.
// qgemm_dp4a (portable; CUDA and HIP): the same product on the SIMT cores, four
//            int8 products per instruction (__dp4a on NVIDIA; on HIP a plain
//            sign-extending dot product that the compiler maps to v_dot4 where the
//            target has it).
// qgemm_wo   (portable): weight-only C = epi(A_T @ dequant(W)^T), A in f32/f16/bf16,
//            W int8 or packed int4 (two codes per byte, low nibble first), dequantized
//            as each tile is loaded into shared memory (the full-precision weight
//            never exists), f32 accumulation.
//
// Layouts: A (M, K) row-major with row stride lda; B and W are (N, K) row-major
// ("NT": both operands K-contiguous, which int8 dot products need) with row stride
// ldb (in bytes of storage: K/2 for int4). Epilogue: v = acc * sa[m * sa_step] *
// sb[n * sb_step] (+ bias[n]) then ACT (0 none, 1 relu, 2 gelu, 3 silu); a null sa/sb
// means 1; OutT = i32 stores the raw accumulator (exact int8 GEMM). Weight-only
// scales/zero points are (N, K / group) f32 / i32 (group = K for per-channel).
#include "compat.cuh"

template <int ACT> TS_DEV float q_activate(float v) {
  if (ACT == 1) return (v > 0.0f || v != v) ? v : 0.0f;  // relu: NaN propagates, as ts.relu
  if (ACT == 2) return 0.5f * v * (1.0f + erff(v * 0.70710678118654752440f));
  if (ACT == 3) return v * recip(1.0f + __expf(-v));
  return v;
}

template <int ACT, class OutT>
TS_DEV void q_store(OutT* C, i64 m, i64 n, i64 ldc, i32 acc, const f32* sa, i64 sa_step,
                    const f32* sb, i64 sb_step, const f32* bias) {
  float v = (float)acc;
  if (sa) v *= sa[m * sa_step];
  if (sb) v *= sb[n * sb_step];
  if (bias) v += bias[n];
  C[m * ldc + n] = store_from<OutT>(q_activate<ACT>(v));
}
// int32 output: the exact accumulator, no epilogue (the int8 GEMM reference).
template <int ACT>
TS_DEV void q_store(i32* C, i64 m, i64 n, i64 ldc, i32 acc, const f32*, i64, const f32*, i64,
                    const f32*) {
  C[m * ldc + n] = acc;
}

// Moves a ROWSxBK int8 tile (rows r0.., k0..) into shared memory S[ROWS][BK + PAD]:
// 16-byte vectors where in bounds and aligned, zero-filled bytes at the edges.
template <int ROWS, int BK, int PAD, int NT>
TS_DEV void load_i8_tile(i8* S, const i8* G, i64 ld, i64 r0, i64 k0, i64 R, i64 K) {
  constexpr int VPR = BK / 16;  // 16-byte vectors per row
  for (int v = threadIdx.x; v < ROWS * VPR; v += NT) {
    const int r = v / VPR, c = (v % VPR) * 16;
    const i64 gr = r0 + r, gk = k0 + c;
    const i8* p = G + gr * ld + gk;
    i8* s = S + r * (BK + PAD) + c;
    if (gr < R && gk + 16 <= K && (((u64)p) & 15u) == 0) {
      *reinterpret_cast<uint4*>(s) = *reinterpret_cast<const uint4*>(p);
    } else {
#pragma unroll
      for (int j = 0; j < 16; j++) s[j] = (gr < R && gk + j < K) ? p[j] : (i8)0;
    }
  }
}

#if !defined(TS_HIP)
// 8 warps as 2 (M) x 4 (N); each warp owns a 64 x 32 block = 4 x 4 mma tiles of 16 x 8.
template <class OutT, int ACT>
__global__ void __launch_bounds__(256, 1)
qgemm_mma(const i8* __restrict__ A, const i8* __restrict__ B, OutT* __restrict__ C,
          const f32* __restrict__ sa, i64 sa_step, const f32* __restrict__ sb, i64 sb_step,
          const f32* __restrict__ bias, i64 M, i64 N, i64 K, i64 lda, i64 ldb, i64 ldc) {
  constexpr int BM = 128, BN = 128, BK = 64, PAD = 16, NT = 256, FM = 4, FN = 4;
  alignas(16) __shared__ i8 As[BM * (BK + PAD)];
  alignas(16) __shared__ i8 Bs[BN * (BK + PAD)];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / 4, wn = warp % 4, g = lane / 4, t = lane % 4;
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
  i32 acc[FM][FN][4];
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) acc[i][j][r] = 0;

  for (i64 k0 = 0; k0 < K; k0 += BK) {
    __syncthreads();
    load_i8_tile<BM, BK, PAD, NT>(As, A, lda, m0, k0, M, K);
    load_i8_tile<BN, BK, PAD, NT>(Bs, B, ldb, n0, k0, N, K);
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 32) {
      u32 b[FN][2];
#pragma unroll
      for (int j = 0; j < FN; j++) {  // B fragment: k = t*4.. (+16), n = g
        const i8* p = Bs + (wn * 32 + j * 8 + g) * (BK + PAD) + kk + t * 4;
        b[j][0] = *reinterpret_cast<const u32*>(p);
        b[j][1] = *reinterpret_cast<const u32*>(p + 16);
      }
#pragma unroll
      for (int i = 0; i < FM; i++) {  // A fragment: rows g and g+8, k = t*4.. (+16)
        const i8* p = As + (wm * 64 + i * 16 + g) * (BK + PAD) + kk + t * 4;
        const u32 a0 = *reinterpret_cast<const u32*>(p);
        const u32 a1 = *reinterpret_cast<const u32*>(p + 8 * (BK + PAD));
        const u32 a2 = *reinterpret_cast<const u32*>(p + 16);
        const u32 a3 = *reinterpret_cast<const u32*>(p + 8 * (BK + PAD) + 16);
#pragma unroll
        for (int j = 0; j < FN; j++) {
          asm volatile(
              "mma.sync.aligned.m16n8k32.row.col.s32.s8.s8.s32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
              "{%8,%9}, {%0,%1,%2,%3};\n"
              : "+r"(acc[i][j][0]), "+r"(acc[i][j][1]), "+r"(acc[i][j][2]), "+r"(acc[i][j][3])
              : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b[j][0]), "r"(b[j][1]));
        }
      }
    }
  }
  // accumulator fragment: c0, c1 at (g, t*2 + 0/1), c2, c3 at (g + 8, t*2 + 0/1)
#pragma unroll
  for (int i = 0; i < FM; i++)
#pragma unroll
    for (int j = 0; j < FN; j++)
#pragma unroll
      for (int r = 0; r < 4; r++) {
        const i64 m = m0 + wm * 64 + i * 16 + g + (r >= 2 ? 8 : 0);
        const i64 n = n0 + wn * 32 + j * 8 + t * 2 + (r & 1);
        if (m < M && n < N) q_store<ACT>(C, m, n, ldc, acc[i][j][r], sa, sa_step, sb, sb_step, bias);
      }
}
#endif  // !TS_HIP

// Four int8 products summed into an int32 accumulator.
TS_DEV i32 dot4(u32 a, u32 b, i32 c) {
#if defined(TS_HIP)
#pragma unroll
  for (int s = 0; s < 32; s += 8) c += (i32)(i8)(a >> s) * (i32)(i8)(b >> s);
  return c;
#else
  return __dp4a((int)a, (int)b, c);
#endif
}

// 16 x 16 threads, each owning a 4 x 4 register tile of a 64 x 64 block; shared
// tiles hold 4 consecutive k bytes per 32-bit word.
template <class OutT, int ACT>
__global__ void __launch_bounds__(256)
qgemm_dp4a(const i8* __restrict__ A, const i8* __restrict__ B, OutT* __restrict__ C,
           const f32* __restrict__ sa, i64 sa_step, const f32* __restrict__ sb, i64 sb_step,
           const f32* __restrict__ bias, i64 M, i64 N, i64 K, i64 lda, i64 ldb, i64 ldc) {
  constexpr int BM = 64, BN = 64, BK = 64, PAD = 16, NT = 256, TM = 4, TN = 4;
  alignas(16) __shared__ i8 As[BM * (BK + PAD)];
  alignas(16) __shared__ i8 Bs[BN * (BK + PAD)];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
  i32 acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = 0;
  for (i64 k0 = 0; k0 < K; k0 += BK) {
    __syncthreads();
    load_i8_tile<BM, BK, PAD, NT>(As, A, lda, m0, k0, M, K);
    load_i8_tile<BN, BK, PAD, NT>(Bs, B, ldb, n0, k0, N, K);
    __syncthreads();
#pragma unroll 4
    for (int kk = 0; kk < BK; kk += 4) {
      u32 a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; i++) a[i] = *reinterpret_cast<const u32*>(As + (ty + 16 * i) * (BK + PAD) + kk);
#pragma unroll
      for (int j = 0; j < TN; j++) b[j] = *reinterpret_cast<const u32*>(Bs + (tx + 16 * j) * (BK + PAD) + kk);
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] = dot4(a[i], b[j], acc[i][j]);
    }
  }
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const i64 m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;  // strided: neighbours store neighbours
      if (m < M && n < N) q_store<ACT>(C, m, n, ldc, acc[i][j], sa, sa_step, sb, sb_step, bias);
    }
}

// Weight-only: A (M, K) in T, W (N, K) int8 or (N, K/2) packed int4; the W tile is
// dequantized ((code - zero) * scale) on its way into shared memory.
template <class T, int BITS, int ACT>
__global__ void __launch_bounds__(256)
qgemm_wo(const T* __restrict__ A, const u8* __restrict__ W, const f32* __restrict__ scale,
         const i32* __restrict__ zero, const T* __restrict__ bias, T* __restrict__ C,
         i64 M, i64 N, i64 K, i64 lda, i64 ldw, i64 ldc, i64 group, i64 ngroups, int is_signed) {
  constexpr int BM = 64, BN = 64, BK = 32, PAD = 4, NT = 256, TM = 4, TN = 4;
  __shared__ f32 As[BK][BM + PAD];
  __shared__ f32 Ws[BK][BN + PAD];
  const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
  const i64 m0 = (i64)blockIdx.y * BM, n0 = (i64)blockIdx.x * BN;
  f32 acc[TM][TN];
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) acc[i][j] = 0.0f;
  for (i64 k0 = 0; k0 < K; k0 += BK) {
    __syncthreads();
    for (int e = threadIdx.x; e < BM * BK; e += NT) {  // consecutive threads read consecutive k
      const int r = e / BK, c = e % BK;
      const i64 m = m0 + r, k = k0 + c;
      As[c][r] = (m < M && k < K) ? load_as<f32>(A[m * lda + k]) : 0.0f;
    }
    for (int e = threadIdx.x; e < BN * BK; e += NT) {
      const int r = e / BK, c = e % BK;
      const i64 n = n0 + r, k = k0 + c;
      f32 v = 0.0f;
      if (n < N && k < K) {
        i32 code;
        if (BITS == 8) {
          code = is_signed ? (i32)(i8)W[n * ldw + k] : (i32)W[n * ldw + k];
        } else {
          const u32 byte = W[n * ldw + k / 2], nib = (k & 1) ? (byte >> 4) : (byte & 15u);
          code = is_signed ? (i32)((nib ^ 8u)) - 8 : (i32)nib;
        }
        const i64 gi = n * ngroups + k / group;
        v = (f32)(code - (zero ? zero[gi] : 0)) * scale[gi];
      }
      Ws[c][r] = v;
    }
    __syncthreads();
#pragma unroll 8
    for (int kk = 0; kk < BK; kk++) {
      f32 a[TM], b[TN];
#pragma unroll
      for (int i = 0; i < TM; i++) a[i] = As[kk][ty + 16 * i];
#pragma unroll
      for (int j = 0; j < TN; j++) b[j] = Ws[kk][tx + 16 * j];
#pragma unroll
      for (int i = 0; i < TM; i++)
#pragma unroll
        for (int j = 0; j < TN; j++) acc[i][j] += a[i] * b[j];
    }
  }
#pragma unroll
  for (int i = 0; i < TM; i++)
#pragma unroll
    for (int j = 0; j < TN; j++) {
      const i64 m = m0 + ty + 16 * i, n = n0 + tx + 16 * j;
      if (m < M && n < N) {
        f32 v = acc[i][j];
        if (bias) v += load_as<f32>(bias[n]);
        C[m * ldc + n] = store_from<T>(q_activate<ACT>(v));
      }
    }
}
