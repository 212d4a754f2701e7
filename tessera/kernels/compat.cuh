// compat.cuh -- the one portability header of tessera's kernels.
//
// Owns: CUDA vs HIP spellings (warp size, shuffles, fp16 header), tessera's
// fixed-width integer names (NVRTC has no <cstdint>), the storage types of
// tessera dtypes (bf16 and fp8 are stored as raw bit patterns because CuPy has
// no such dtypes), bit-exact conversions for bf16/fp16/fp8 (round to nearest
// even, NaN handling identical to ml_dtypes / NumPy), and the Scalar<T> traits
// that let one kernel template serve every dtype.
//
// The same conversion helpers compile under a plain host C++ compiler
// (TS_HD expands to nothing) so that tests check them bit-exactly on the CPU.
#pragma once

#if defined(__HIPCC__) && !defined(__HIP_PLATFORM_NVIDIA__) && !defined(__HIP_PLATFORM_NVCC__)
#define TS_HIP 1
#endif
#if defined(TS_CPU_EMU) && defined(TS_EMU_HIP)
#define TS_HIP 1  // tessera/sim emulating an AMD device: the HIP code paths
#endif
#if (defined(__CUDACC__) || defined(TS_CPU_EMU)) && !defined(TS_HIP)
#define TS_NVIDIA 1  // NVIDIA-only features (wmma tensor cores) may be used; the emulator has wmma
#endif
#if defined(__CUDACC__) || defined(__HIPCC__)
#define TS_DEVICE_COMPILER 1
#define TS_HD __host__ __device__ __forceinline__
#define TS_DEV __device__ __forceinline__
#elif defined(TS_CPU_EMU)
// tests/kernels/cpu_emu.h runs kernels on CPU threads; it supplies the device API.
#define TS_DEVICE_COMPILER 1
#define TS_HD inline
#define TS_DEV inline
#else
#define TS_HD inline
#endif

#if defined(TS_HIP) && !defined(TS_CPU_EMU)
#if !defined(__HIPCC_RTC__)
#include <hip/hip_runtime.h>
#endif
#include <hip/hip_fp16.h>
#elif defined(TS_DEVICE_COMPILER) && !defined(TS_CPU_EMU)
#include <cuda_fp16.h>
#endif

// ---- integer names: NVRTC ships no <cstdint>, so tessera spells its own ----
typedef signed char i8;
typedef unsigned char u8;
typedef short i16;
typedef unsigned short u16;
typedef int i32;
typedef unsigned int u32;
typedef long long i64;
typedef unsigned long long u64;
typedef float f32;
typedef double f64;

// ---- storage types of the dtypes CuPy lacks: bit patterns in a struct so
// that templates can tell bf16 from uint16 and fp8_e4m3 from uint8. ----
struct bf16 { u16 bits; };
struct fp8e4m3 { u8 bits; };
struct fp8e5m2 { u8 bits; };

// ---- bit casts without memcpy (unavailable under NVRTC) ----
TS_HD u32 f32_bits(float f) { union { float f; u32 u; } c; c.f = f; return c.u; }
TS_HD float bits_f32(u32 u) { union { float f; u32 u; } c; c.u = u; return c.f; }

// ---- float -> narrow float, generic over the target format ----------------
// EXP/MAN: exponent and mantissa widths, BIAS: exponent bias. Formats with
// infinities (fp16, e5m2) overflow to inf; e4m3fn has none and overflows to
// NaN, as ml_dtypes does. SAT clamps finite overflow and +-inf to +-max.
// Returns the pattern without the sign bit in the low bits.
template <int EXP, int MAN, int BIAS, bool HAS_INF>
TS_HD u32 round_f32_to_narrow(u32 abs, bool sat, u32 max_code, u32 inf_code) {
  int e = (int)(abs >> 23) - 127;            // unbiased exponent of the input
  u32 mant = (abs & 0x7fffffu) | 0x800000u;  // with the implicit leading one
  u32 q;
  if ((abs >> 23) == 0) {
    q = 0;                                   // f32 subnormals underflow to 0
  } else if (e < 1 - BIAS) {
    // Target subnormal: value in units of the smallest subnormal 2^(1-BIAS-MAN).
    int shift = (1 - BIAS - MAN) - (e - 23);
    if (shift >= 32) {
      q = 0;
    } else {
      q = mant >> shift;
      u32 rem = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
      if (rem > half || (rem == half && (q & 1u))) q++;  // may carry into the min normal
    }
  } else {
    const int shift = 23 - MAN;
    if (e + BIAS > (1 << EXP)) {             // far beyond range: avoid shifting garbage
      q = 0xffffffffu;
    } else {
      q = ((u32)(e + BIAS) << MAN) | ((mant & 0x7fffffu) >> shift);
      u32 rem = abs & ((1u << shift) - 1u), half = 1u << (shift - 1);
      if (rem > half || (rem == half && (q & 1u))) q++;  // carry bumps the exponent
    }
  }
  if (q > max_code) q = sat ? max_code : inf_code;
  return q;
}

// fp16 (IEEE binary16), NaN payload kept the way NumPy does (truncated, never 0).
TS_HD u16 float_to_half_bits(float f) {
  u32 b = f32_bits(f), sign = (b >> 16) & 0x8000u, abs = b & 0x7fffffffu;
  if (abs > 0x7f800000u) {
    u32 m = 0x7c00u | ((abs & 0x7fffffu) >> 13);
    return (u16)(sign | (m == 0x7c00u ? 0x7c01u : m));
  }
  if (abs == 0x7f800000u) return (u16)(sign | 0x7c00u);
  return (u16)(sign | round_f32_to_narrow<5, 10, 15, true>(abs, false, 0x7bffu, 0x7c00u));
}

// Widening is exact; done by renormalising subnormals with a short loop.
template <int EXP, int MAN, int BIAS>
TS_HD float narrow_finite_to_float(u32 sign, u32 e, u32 m) {
  if (e == 0) {
    if (m == 0) return bits_f32(sign << 31);
    int ex = 1 - BIAS;
    while (!(m & (1u << MAN))) { m <<= 1; ex--; }
    m &= (1u << MAN) - 1u;
    return bits_f32((sign << 31) | ((u32)(ex + 127) << 23) | (m << (23 - MAN)));
  }
  return bits_f32((sign << 31) | ((u32)((int)e - BIAS + 127) << 23) | (m << (23 - MAN)));
}

TS_HD float half_bits_to_float(u16 h) {
  u32 sign = h >> 15, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  if (e == 0x1f) return bits_f32((sign << 31) | 0x7f800000u | (m << 13));  // inf/NaN, payload kept
  return narrow_finite_to_float<5, 10, 15>(sign, e, m);
}

// bf16: the top half of an f32, rounded to nearest even; NaN becomes the
// canonical quiet NaN with the sign kept (ml_dtypes' behaviour).
TS_HD float bf16_bits_to_float(u16 h) { return bits_f32((u32)h << 16); }
TS_HD u16 float_to_bf16_bits(float f) {
  u32 b = f32_bits(f);
  if ((b & 0x7fffffffu) > 0x7f800000u) return (u16)(((b >> 16) & 0x8000u) | 0x7fc0u);
  b += 0x7fffu + ((b >> 16) & 1u);
  return (u16)(b >> 16);
}

// fp8 e4m3fn: no infinities, 0x7f/0xff are NaN, max 448.
TS_HD float fp8e4m3_bits_to_float(u8 v) {
  u32 sign = v >> 7, e = (v >> 3) & 0xfu, m = v & 0x7u;
  if (e == 0xf && m == 0x7) return bits_f32((sign << 31) | 0x7fc00000u);
  return narrow_finite_to_float<4, 3, 7>(sign, e, m);
}
TS_HD u8 float_to_fp8e4m3_bits(float f, bool sat) {
  u32 b = f32_bits(f), sign = (b >> 24) & 0x80u, abs = b & 0x7fffffffu;
  if (abs > 0x7f800000u) return (u8)(sign | 0x7fu);
  if (abs == 0x7f800000u) return (u8)(sign | (sat ? 0x7eu : 0x7fu));
  return (u8)(sign | round_f32_to_narrow<4, 3, 7, false>(abs, sat, 0x7eu, 0x7fu));
}

// fp8 e5m2: IEEE-like (inf and NaN), max 57344.
TS_HD float fp8e5m2_bits_to_float(u8 v) {
  u32 sign = v >> 7, e = (v >> 2) & 0x1fu, m = v & 0x3u;
  if (e == 0x1f) return bits_f32((sign << 31) | (m ? 0x7fc00000u : 0x7f800000u));
  return narrow_finite_to_float<5, 2, 15>(sign, e, m);
}
TS_HD u8 float_to_fp8e5m2_bits(float f, bool sat) {
  u32 b = f32_bits(f), sign = (b >> 24) & 0x80u, abs = b & 0x7fffffffu;
  if (abs > 0x7f800000u) return (u8)(sign | 0x7eu);
  if (abs == 0x7f800000u) return (u8)(sign | (sat ? 0x7bu : 0x7cu));
  return (u8)(sign | round_f32_to_narrow<5, 2, 15, true>(abs, sat, 0x7bu, 0x7cu));
}

#if defined(TS_DEVICE_COMPILER)
// ---- warps: 32 lanes on NVIDIA, 64 on CDNA AMD (32 on RDNA in wave32) ----
#if defined(TS_CPU_EMU)
constexpr int WARP_SIZE = TS_CPU_EMU;  // the emulator's warp width (32 or 64)
template <class T> TS_DEV T shfl_xor(T v, int lane_mask) { return emu_shfl(v, emu_lane() ^ lane_mask); }
template <class T> TS_DEV T shfl_up(T v, int delta) { int l = emu_lane(); return emu_shfl(v, l >= delta ? l - delta : l); }
template <class T> TS_DEV T shfl_idx(T v, int src) { return emu_shfl(v, src); }
TS_DEV void syncwarp() { emu_syncwarp(); }
#elif defined(TS_HIP)
#if defined(__AMDGCN_WAVEFRONT_SIZE)
constexpr int WARP_SIZE = __AMDGCN_WAVEFRONT_SIZE;
#else
constexpr int WARP_SIZE = 64;
#endif
template <class T> TS_DEV T shfl_xor(T v, int lane_mask) { return __shfl_xor(v, lane_mask, WARP_SIZE); }
template <class T> TS_DEV T shfl_up(T v, int delta) { return __shfl_up(v, delta, WARP_SIZE); }
template <class T> TS_DEV T shfl_idx(T v, int src) { return __shfl(v, src, WARP_SIZE); }
TS_DEV void syncwarp() {}  // a wavefront executes in lockstep
#else
constexpr int WARP_SIZE = 32;
template <class T> TS_DEV T shfl_xor(T v, int lane_mask) { return __shfl_xor_sync(0xffffffffu, v, lane_mask, WARP_SIZE); }
template <class T> TS_DEV T shfl_up(T v, int delta) { return __shfl_up_sync(0xffffffffu, v, delta, WARP_SIZE); }
template <class T> TS_DEV T shfl_idx(T v, int src) { return __shfl_sync(0xffffffffu, v, src, WARP_SIZE); }
TS_DEV void syncwarp() { __syncwarp(); }
#endif
typedef __half f16;

// ---- dynamic shared memory: the block's one extern buffer, sized at launch ----
// Static __shared__ arrays are capped at 48 KB per block; a kernel whose tiles may
// be larger (a hinted matmul tile) carves them out of this buffer, and its launcher
// passes the byte count and opts the function in to more than 48 KB
// (kernels/launchers/smem.py). On HIP the extern array is dynamic LDS as well;
// __attribute__((aligned)) is what CUDA's __align__ expands to, spelled out because
// hiprtc need not define __align__. The CPU emulator hands out one buffer per block.
#if defined(TS_CPU_EMU)
#define TS_DYNAMIC_SMEM(name) unsigned char* name = ts_emu_dynamic_smem()
#else
#define TS_DYNAMIC_SMEM(name) extern __shared__ __attribute__((aligned(16))) unsigned char name[]
#endif

// ---- Scalar<T>: the compute type of a storage type, and the way there and back.
// Floats narrower than f32 compute in f32; integers keep their own type. ----
template <class T> struct Scalar {
  typedef T compute;
  static TS_DEV compute up(T v) { return v; }
  static TS_DEV T down(compute v) { return v; }
  static TS_DEV T down_sat(compute v) { return v; }
};
template <> struct Scalar<f16> {
  typedef float compute;
  static TS_DEV float up(f16 v) { return __half2float(v); }
  static TS_DEV f16 down(float v) { return __float2half_rn(v); }
  static TS_DEV f16 down_sat(float v) { return __float2half_rn(v); }
};
template <> struct Scalar<bf16> {
  typedef float compute;
  static TS_DEV float up(bf16 v) { return bf16_bits_to_float(v.bits); }
  static TS_DEV bf16 down(float v) { bf16 r; r.bits = float_to_bf16_bits(v); return r; }
  static TS_DEV bf16 down_sat(float v) { return down(v); }
};
template <> struct Scalar<fp8e4m3> {
  typedef float compute;
  static TS_DEV float up(fp8e4m3 v) { return fp8e4m3_bits_to_float(v.bits); }
  static TS_DEV fp8e4m3 down(float v) { fp8e4m3 r; r.bits = float_to_fp8e4m3_bits(v, false); return r; }
  static TS_DEV fp8e4m3 down_sat(float v) { fp8e4m3 r; r.bits = float_to_fp8e4m3_bits(v, true); return r; }
};
template <> struct Scalar<fp8e5m2> {
  typedef float compute;
  static TS_DEV float up(fp8e5m2 v) { return fp8e5m2_bits_to_float(v.bits); }
  static TS_DEV fp8e5m2 down(float v) { fp8e5m2 r; r.bits = float_to_fp8e5m2_bits(v, false); return r; }
  static TS_DEV fp8e5m2 down_sat(float v) { fp8e5m2 r; r.bits = float_to_fp8e5m2_bits(v, true); return r; }
};

// Acc<T>: the type reductions and matmuls accumulate in.
template <class T> struct Acc { typedef typename Scalar<T>::compute type; };
template <> struct Acc<bool> { typedef i64 type; };
template <> struct Acc<i8> { typedef i64 type; };
template <> struct Acc<u8> { typedef i64 type; };
template <> struct Acc<i16> { typedef i64 type; };
template <> struct Acc<i32> { typedef i64 type; };

// load/store between storage and any arithmetic type (via the compute type).
template <class A, class T> TS_DEV A load_as(const T& v) { return static_cast<A>(Scalar<T>::up(v)); }
template <class T, class A> TS_DEV T store_from(A v) {
  return Scalar<T>::down(static_cast<typename Scalar<T>::compute>(v));
}

// Correctly rounded reciprocals, used instead of '/' in hot loops and unrolled
// epilogues: division's slow-path subroutine call makes ptxas save registers
// around it, which the ptxas report shows as spills.
TS_DEV float recip(float v) { return __frcp_rn(v); }
TS_DEV double recip(double v) { return __drcp_rn(v); }

// NaN tests that are false for integers, so reductions need no special case.
template <class T> TS_DEV bool is_nan(T) { return false; }
template <> TS_DEV bool is_nan<float>(float v) { return v != v; }
template <> TS_DEV bool is_nan<double>(double v) { return v != v; }

template <class T> TS_DEV T lowest_value();
template <> TS_DEV float lowest_value<float>() { return -__int_as_float(0x7f800000); }
template <> TS_DEV double lowest_value<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }
template <> TS_DEV i64 lowest_value<i64>() { return (i64)(-0x7fffffffffffffffLL - 1); }
template <class T> TS_DEV T highest_value();
template <> TS_DEV float highest_value<float>() { return __int_as_float(0x7f800000); }
template <> TS_DEV double highest_value<double>() { return __longlong_as_double(0x7ff0000000000000LL); }
template <> TS_DEV i64 highest_value<i64>() { return 0x7fffffffffffffffLL; }
#endif  // TS_DEVICE_COMPILER
