/* tessera elementwise functors: every elementwise function written once.
 *
 * This header is valid C99 (the CPU fusion renderer includes it into the C it
 * hands to gcc) and valid CUDA/HIP C++ (generated and tiled kernels include it),
 * so the CPU and GPU paths share one definition of every function and cannot
 * drift apart.  Names carry the compute-type suffix (no C overloading):
 *   f64 double, f32 float, i8/i16/i32/i64 signed, u8 unsigned, b bool (0/1 byte).
 * fp16, bf16 and fp8 values are computed in float (f32) and stored as raw bits;
 * the bit-exact conversions below round to nearest even and keep NaN.
 * Semantics follow NumPy's function of the same name (see tests/fusion).
 */
#ifndef TESSERA_FUNCTORS_CUH
#define TESSERA_FUNCTORS_CUH

#if defined(__CUDACC__) || defined(__HIPCC__)
#  define TS_DEVICE_CODE 1
#endif

#ifndef TS_INLINE
#  ifdef TS_DEVICE_CODE
#    define TS_INLINE __device__ __forceinline__
#  else
#    define TS_INLINE static inline
#  endif
#endif

#ifdef TS_DEVICE_CODE
#  ifndef TS_HAVE_STDINT
#    define TS_HAVE_STDINT
     /* NVRTC has no <stdint.h>; redeclaring a typedef to the same type is legal. */
     typedef signed char int8_t;
     typedef short int16_t;
     typedef int int32_t;
     typedef long long int64_t;
     typedef unsigned char uint8_t;
     typedef unsigned short uint16_t;
     typedef unsigned int uint32_t;
     typedef unsigned long long uint64_t;
#  endif
TS_INLINE uint32_t ts_f32_bits(float x) { return __float_as_uint(x); }
TS_INLINE float ts_bits_f32(uint32_t b) { return __uint_as_float(b); }
TS_INLINE uint64_t ts_f64_bits(double x) { return (uint64_t)__double_as_longlong(x); }
#  define TS_INF_F32 __int_as_float(0x7f800000)
#  define TS_NAN_F32 __int_as_float(0x7fc00000)
#  define TS_INF_F64 __longlong_as_double(0x7ff0000000000000LL)
#  define TS_NAN_F64 __longlong_as_double(0x7ff8000000000000LL)
#else
#  include <stdint.h>
#  include <string.h>
#  include <math.h>
TS_INLINE uint32_t ts_f32_bits(float x) { uint32_t b; memcpy(&b, &x, 4); return b; }
TS_INLINE float ts_bits_f32(uint32_t b) { float x; memcpy(&x, &b, 4); return x; }
TS_INLINE uint64_t ts_f64_bits(double x) { uint64_t b; memcpy(&b, &x, 8); return b; }
#  define TS_INF_F32 __builtin_inff()
#  define TS_NAN_F32 __builtin_nanf("")
#  define TS_INF_F64 __builtin_inf()
#  define TS_NAN_F64 __builtin_nan("")
#endif

/* ---------------------------------------------------------------- storage
 * 16-bit and 8-bit floats travel as raw bits (uint16_t / uint8_t).  Decoding is
 * exact; encoding rounds to nearest even.  Written without data-dependent
 * branches (selects only) so gcc vectorizes loops that call them. */

TS_INLINE float ts_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t em = h & 0x7fffu;
  /* normal: rebias exponent; inf/nan: force exponent 255; subnormal: exact via float math */
  uint32_t normal = (em << 13) + 0x38000000u;
  uint32_t infnan = (em << 13) | 0x7f800000u;
  float sub = (float)em * 5.9604644775390625e-08f; /* em * 2^-24 */
  uint32_t bits = em >= 0x7c00u ? infnan : (em >= 0x0400u ? normal : ts_f32_bits(sub));
  return ts_bits_f32(bits | sign);
}

TS_INLINE uint16_t ts_f32_to_f16(float f) {
  uint32_t x = ts_f32_bits(f);
  uint32_t sign = (x >> 16) & 0x8000u;
  uint32_t ax = x & 0x7fffffffu;
  /* NaN: keep the top payload bits, make sure it stays a quiet NaN */
  uint32_t nan = 0x7e00u | ((ax >> 13) & 0x3ffu);
  /* normal range: round mantissa to 10 bits, nearest even; carry may overflow to inf */
  uint32_t rn = ax + 0x0fffu + ((ax >> 13) & 1u);
  uint32_t normal = (rn >> 13) - (112u << 10);
  /* subnormal range (|f| < 2^-14): adding 0.5 lets the FPU round the bits away */
  float sf = ts_bits_f32(ax) + 0.5f;
  uint32_t sub = ts_f32_bits(sf) - 0x3f000000u;
  uint32_t r = ax > 0x7f800000u ? nan
             : (ax >= 0x477ff000u ? 0x7c00u /* overflow (>= 65520) or inf */
             : (ax >= 0x38800000u ? normal : sub));
  return (uint16_t)(r | sign);
}

TS_INLINE float ts_bf16_to_f32(uint16_t h) { return ts_bits_f32((uint32_t)h << 16); }

TS_INLINE uint16_t ts_f32_to_bf16(float f) {
  uint32_t x = ts_f32_bits(f);
  uint32_t rounded = (x + 0x7fffu + ((x >> 16) & 1u)) >> 16;
  uint32_t nan = (x >> 16) | 0x40u;
  return (uint16_t)((x & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/* fp8 e4m3fn: bias 7, no infinities, 0x7f/0xff are NaN, max 448. */
TS_INLINE float ts_e4m3_to_f32(uint8_t v) {
  uint32_t sign = (uint32_t)(v & 0x80u) << 24;
  uint32_t em = v & 0x7fu;
  float mag = em >= 0x08u ? ts_bits_f32((em << 20) + (120u << 23))
                          : (float)em * 0.001953125f; /* em * 2^-9 */
  mag = em == 0x7fu ? TS_NAN_F32 : mag;
  return ts_bits_f32(ts_f32_bits(mag) | sign);
}

/* fp8 e5m2: bias 15, IEEE-like (inf and NaN), the top byte of an fp16. */
TS_INLINE float ts_e5m2_to_f32(uint8_t v) { return ts_f16_to_f32((uint16_t)((uint16_t)v << 8)); }

/* Round |f| (finite, non-negative) to a float with `mbits` mantissa bits and
 * minimum normal exponent `emin`, nearest even; subnormals keep the absolute
 * spacing 2^(emin-mbits).  Shared by the fp8 encoders. */
TS_INLINE float ts_round_small_float(float a, int mbits, int emin) {
  uint32_t ax = ts_f32_bits(a);
  int e = (int)(ax >> 23) - 127;
  e = e < emin ? emin : e;
  /* spacing 2^(e - mbits); adding and subtracting 1.5*2^(e-mbits+23) rounds RNE */
  float scale = ts_bits_f32((uint32_t)(e - mbits + 23 + 127) << 23);
  return (a + scale) - scale;
}

TS_INLINE uint8_t ts_f32_to_e4m3(float f) {
  uint32_t x = ts_f32_bits(f);
  uint32_t sign = (x >> 24) & 0x80u;
  float a = ts_bits_f32(x & 0x7fffffffu);
  float r = ts_round_small_float(a < 512.0f ? a : 0.0f, 3, -6);
  uint32_t rb = ts_f32_bits(r);
  uint32_t normal = ((rb >> 20) - (120u << 3)) & 0xffu;
  uint32_t sub = (uint32_t)(r * 512.0f);
  uint32_t bits = r >= 0.015625f ? normal : sub;
  /* beyond 448 (after rounding: >= 464) there is no infinity: NaN, as ml_dtypes */
  bits = (a != a || a > 464.0f) ? 0x7fu : bits;
  return (uint8_t)(bits | sign);
}

TS_INLINE uint8_t ts_f32_to_e5m2(float f) {
  uint32_t x = ts_f32_bits(f);
  uint32_t sign = (x >> 24) & 0x80u;
  float a = ts_bits_f32(x & 0x7fffffffu);
  float r = ts_round_small_float(a < 65536.0f ? a : 0.0f, 2, -14);
  uint32_t hb = ts_f32_to_f16(r); /* exact: r is representable */
  uint32_t bits = (hb >> 8) & 0x7fu;
  bits = a >= 61440.0f ? 0x7cu : bits; /* rounds past 57344 -> inf */
  bits = a != a ? 0x7eu : bits;
  return (uint8_t)(bits | sign);
}

/* fp64 -> narrow float with a single rounding: round to float with
 * round-to-odd (sticky lsb), then round-to-nearest-even to the narrow type is
 * exact because float carries more than two extra bits. */
TS_INLINE float ts_f64_to_f32_odd(double d) {
  float f = (float)d;
  double ad = d < 0 ? -d : d;
  float af = f < 0 ? -f : f;
  uint32_t b = ts_f32_bits(f);
  b = ((double)af > ad && af == af) ? b - 1u : b; /* truncate toward zero */
  float t = ts_bits_f32(b);
  b = ((double)t != d && d == d) ? (b | 1u) : b;
  return ts_bits_f32(b);
}

/* int64 -> double rounded to odd (exact below 2^53 in magnitude), so that int64 ->
 * narrow float also rounds once; 2^63, the one result outside int64, is above every n. */
TS_INLINE double ts_i64_to_f64_odd(int64_t n) {
  double f = (double)n;
  int big = f >= 9223372036854775808.0;
  int64_t fi = big ? 0 : (int64_t)f;
  int over = big || fi > n, under = !big && fi < n;
  uint64_t b = ts_f64_bits(f);
  b -= (uint64_t)(n >= 0 ? over : under); /* toward zero */
  b |= (uint64_t)(over || under);
  double r;
#ifdef TS_DEVICE_CODE
  r = __longlong_as_double((long long)b);
#else
  memcpy(&r, &b, 8);
#endif
  return r;
}

TS_INLINE float ts_round_f16(float x) { return ts_f16_to_f32(ts_f32_to_f16(x)); }
TS_INLINE float ts_round_bf16(float x) { return ts_bf16_to_f32(ts_f32_to_bf16(x)); }
TS_INLINE float ts_round_e4m3(float x) { return ts_e4m3_to_f32(ts_f32_to_e4m3(x)); }
TS_INLINE float ts_round_e5m2(float x) { return ts_e5m2_to_f32(ts_f32_to_e5m2(x)); }
TS_INLINE float ts_satur_e4m3(float x) { /* saturating cast: clamp finite to +-448 */
  float c = x > 448.0f ? 448.0f : (x < -448.0f ? -448.0f : x);
  return ts_round_e4m3(c);
}
TS_INLINE float ts_satur_e5m2(float x) {
  float c = x > 57344.0f ? 57344.0f : (x < -57344.0f ? -57344.0f : x);
  return ts_round_e5m2(c);
}

/* float -> int casts, tessera's rule (tessera/precision/convert.py, also cast.cu):
 * truncate toward zero; NaN and out of range give INT_MIN (as x86 NumPy), spelled out
 * because the bare C conversion is undefined.  Narrower integers take ts_f2i32's
 * result modulo 2^bits (the caller's C cast), so uint8(-1.0) = 255. */
TS_INLINE int64_t ts_f2i64(double x) {
  return (x == x && x >= -9223372036854775808.0 && x < 9223372036854775808.0)
             ? (int64_t)x : (int64_t)(-9223372036854775807LL - 1);
}
TS_INLINE int32_t ts_f2i32(double x) {
  return (x == x && x > -2147483649.0 && x < 2147483648.0) ? (int32_t)x : (int32_t)(-2147483647 - 1);
}

/* ---------------------------------------------------------------- exp/tanh
 * The float exp and tanh the kernels call.  On the GPU they are the vendor's.
 * On the CPU they are our own branch-free polynomials (<= 2 ulp against a float64
 * reference, tested in tests/fusion/test_poly_math.py): gcc vectorizes them inline
 * at full AVX-512 width, where the libmvec calls cost ~2x more per element and
 * lose to NumPy's own SIMD exp/tanh.  The double versions stay libm's. */
#ifdef TS_DEVICE_CODE
TS_INLINE float ts_libexpf(float x) { return expf(x); }
TS_INLINE float ts_libtanhf(float x) { return tanhf(x); }
#else
TS_INLINE float ts_libexpf(float x) {
  /* clamp (NaN passes through): 2^n below then gives exact 0 / inf at the ends */
  const float xc = x < -104.0f ? -104.0f : (x > 89.0f ? 89.0f : x);
  /* n = round(x / ln2) by the 1.5 * 2^23 trick (exact for |n| < 2^22) */
  const float n = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  /* r = x - n ln2 in two exact-product steps (Cody-Waite), |r| <= ln2 / 2 */
  float r = fmaf(n, -0.693145751953125f, xc);
  r = fmaf(n, -1.42860682030941723e-6f, r);
  /* e^r - 1 - r = r^2 q(r): least-squares/minimax fit, rel. error 3e-9 on |r| <= ln2/2 */
  float q = fmaf(0.0013814373f, r, 0.0083687127f);
  q = fmaf(q, r, 0.041668392f);
  q = fmaf(q, r, 0.16666521f);
  q = fmaf(q, r, 0.49999993f);
  const float p = 1.0f + fmaf(r * r, q, r);
  /* 2^n as two normal powers so that results down to the subnormals round once */
  const int32_t ni = (int32_t)n, n1 = ni >> 1, n2 = ni - n1;
  return p * ts_bits_f32((uint32_t)(n1 + 127) << 23) * ts_bits_f32((uint32_t)(n2 + 127) << 23);
}
TS_INLINE float ts_libtanhf(float x) {
  const float a = fabsf(x);
  /* |x| < 0.625: x + x^3 q(x^2) (fit, rel. error 2e-10) avoids 1 - 2/(e+1) cancelling */
  const float z = a * a;
  float q = fmaf(0.0021429138f, z, -0.0081773414f);
  q = fmaf(q, z, 0.021700678f);
  q = fmaf(q, z, -0.053946758f);
  q = fmaf(q, z, 0.13333206f);
  q = fmaf(q, z, -0.33333331f);
  const float small = fmaf(a * z, q, a);
  /* e^(2a) for 0 <= 2a <= 18 (tanh(9) rounds to 1 in float; NaN passes through): the
   * exp above without its range handling, one power of two suffices here */
  const float y = 2.0f * (a > 9.0f ? 9.0f : a);
  const float n = (y * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = fmaf(n, -0.693145751953125f, y);
  r = fmaf(n, -1.42860682030941723e-6f, r);
  float qe = fmaf(0.0013814373f, r, 0.0083687127f);
  qe = fmaf(qe, r, 0.041668392f);
  qe = fmaf(qe, r, 0.16666521f);
  qe = fmaf(qe, r, 0.49999993f);
  const float e = (1.0f + fmaf(r * r, qe, r)) * ts_bits_f32((uint32_t)((int32_t)n + 127) << 23);
  const float big = 1.0f - 2.0f / (e + 1.0f);
  return copysignf(a < 0.625f ? small : big, x);
}
#endif
TS_INLINE double ts_libexp(double x) { return exp(x); }
TS_INLINE double ts_libtanh(double x) { return tanh(x); }

/* ---------------------------------------------------------------- floats */

#define TS_FLOAT_FUNCS(S, T, M, INF, NAN_)                                              \
TS_INLINE T ts_negative_##S(T x) { return -x; }                                        \
TS_INLINE T ts_positive_##S(T x) { return x; }                                         \
TS_INLINE T ts_abs_##S(T x) { return fabs##M(x); }                                     \
TS_INLINE T ts_sign_##S(T x) { return x > 0 ? (T)1 : (x < 0 ? (T)-1 : (x == 0 ? (T)0 : x)); } \
TS_INLINE T ts_square_##S(T x) { return x * x; }                                       \
TS_INLINE T ts_reciprocal_##S(T x) { return (T)1 / x; }                                \
TS_INLINE T ts_sqrt_##S(T x) { return sqrt##M(x); }                                    \
TS_INLINE T ts_rsqrt_##S(T x) { return (T)1 / sqrt##M(x); }                            \
TS_INLINE T ts_exp_##S(T x) { return ts_libexp##M(x); }                                \
TS_INLINE T ts_exp2_##S(T x) { return exp2##M(x); }                                    \
TS_INLINE T ts_expm1_##S(T x) { return expm1##M(x); }                                  \
TS_INLINE T ts_log_##S(T x) { return log##M(x); }                                      \
TS_INLINE T ts_log1p_##S(T x) { return log1p##M(x); }                                  \
TS_INLINE T ts_log2_##S(T x) { return log2##M(x); }                                    \
TS_INLINE T ts_log10_##S(T x) { return log10##M(x); }                                  \
TS_INLINE T ts_sin_##S(T x) { return sin##M(x); }                                      \
TS_INLINE T ts_cos_##S(T x) { return cos##M(x); }                                      \
TS_INLINE T ts_tan_##S(T x) { return tan##M(x); }                                      \
TS_INLINE T ts_asin_##S(T x) { return asin##M(x); }                                    \
TS_INLINE T ts_acos_##S(T x) { return acos##M(x); }                                    \
TS_INLINE T ts_atan_##S(T x) { return atan##M(x); }                                    \
TS_INLINE T ts_sinh_##S(T x) { return sinh##M(x); }                                    \
TS_INLINE T ts_cosh_##S(T x) { return cosh##M(x); }                                    \
TS_INLINE T ts_tanh_##S(T x) { return ts_libtanh##M(x); }                                \
TS_INLINE T ts_asinh_##S(T x) { return asinh##M(x); }                                  \
TS_INLINE T ts_acosh_##S(T x) { return acosh##M(x); }                                  \
TS_INLINE T ts_atanh_##S(T x) { return atanh##M(x); }                                  \
TS_INLINE T ts_erf_##S(T x) { return erf##M(x); }                                      \
TS_INLINE T ts_floor_##S(T x) { return floor##M(x); }                                  \
TS_INLINE T ts_ceil_##S(T x) { return ceil##M(x); }                                    \
TS_INLINE T ts_trunc_##S(T x) { return trunc##M(x); }                                  \
/* rint rounds half to even in the default rounding mode, as numpy.round */           \
TS_INLINE T ts_round_##S(T x) { return rint##M(x); }                                   \
TS_INLINE uint8_t ts_isnan_##S(T x) { return x != x; }                                 \
TS_INLINE uint8_t ts_isinf_##S(T x) { return fabs##M(x) == INF; }                      \
TS_INLINE uint8_t ts_isfinite_##S(T x) { return fabs##M(x) < INF; }                    \
TS_INLINE uint8_t ts_signbit_##S(T x) { return copysign##M((T)1, x) < 0; }                      \
/* stable for large |x|: only exp of a non-positive number is taken */                 \
TS_INLINE T ts_sigmoid_##S(T x) {                                                      \
  T e = ts_libexp##M(-fabs##M(x)); T r = (T)1 / ((T)1 + e); return x >= 0 ? r : e * r; } \
TS_INLINE T ts_add_##S(T a, T b) { return a + b; }                                     \
TS_INLINE T ts_subtract_##S(T a, T b) { return a - b; }                                \
TS_INLINE T ts_multiply_##S(T a, T b) { return a * b; }                                \
TS_INLINE T ts_divide_##S(T a, T b) { return a / b; }                                  \
/* Python semantics: the remainder takes the divisor's sign (numpy.remainder) */       \
TS_INLINE T ts_remainder_##S(T a, T b) {                                               \
  T m = fmod##M(a, b);                                                                 \
  T adj = (m != 0 && ((b < 0) != (m < 0))) ? m + b : m;                                \
  return b == 0 ? m : (m == 0 ? copysign##M((T)0, b) : adj); }                         \
TS_INLINE T ts_floor_divide_##S(T a, T b) {                                            \
  T m = fmod##M(a, b);                                                                 \
  T d = (a - m) / b;                                                                   \
  d = (m != 0 && ((b < 0) != (m < 0))) ? d - (T)1 : d;                                 \
  T fd = floor##M(d);                                                                  \
  fd = (d - fd > (T)0.5) ? fd + (T)1 : fd;                                             \
  fd = d == 0 ? copysign##M((T)0, a / b) : fd;                                         \
  return b == 0 ? a / b : fd; }                                                        \
TS_INLINE T ts_pow_##S(T a, T b) { return pow##M(a, b); }                              \
TS_INLINE T ts_maximum_##S(T a, T b) { return (a >= b || a != a) ? a : b; }            \
TS_INLINE T ts_minimum_##S(T a, T b) { return (a <= b || a != a) ? a : b; }            \
TS_INLINE T ts_atan2_##S(T a, T b) { return atan2##M(a, b); }                          \
TS_INLINE T ts_hypot_##S(T a, T b) { return hypot##M(a, b); }                          \
TS_INLINE T ts_copysign_##S(T a, T b) { return copysign##M(a, b); }                    \
TS_INLINE T ts_logaddexp_##S(T a, T b) {                                               \
  T d = a - b; T m = a > b ? a : b;                                                    \
  T r = m + log1p##M(exp##M(-fabs##M(d)));                                             \
  /* equal infinities would give inf-inf = nan in d */                                 \
  return a == b ? a + (T)0.69314718055994530942 : (d != d ? d : r); }                 \
TS_INLINE uint8_t ts_equal_##S(T a, T b) { return a == b; }                            \
TS_INLINE uint8_t ts_not_equal_##S(T a, T b) { return a != b; }                        \
TS_INLINE uint8_t ts_less_##S(T a, T b) { return a < b; }                              \
TS_INLINE uint8_t ts_less_equal_##S(T a, T b) { return a <= b; }                       \
TS_INLINE uint8_t ts_greater_##S(T a, T b) { return a > b; }                           \
TS_INLINE uint8_t ts_greater_equal_##S(T a, T b) { return a >= b; }                    \
TS_INLINE T ts_where_##S(uint8_t c, T a, T b) { return c ? a : b; }                    \
/* reduction combiners; max/min propagate NaN like numpy.max */                        \
TS_INLINE T ts_rsum_##S(T acc, T x) { return acc + x; }                                \
TS_INLINE T ts_rprod_##S(T acc, T x) { return acc * x; }                               \
TS_INLINE T ts_rmax_##S(T acc, T x) { return (x > acc || x != x) ? x : acc; }          \
TS_INLINE T ts_rmin_##S(T acc, T x) { return (x < acc || x != x) ? x : acc; }

TS_FLOAT_FUNCS(f32, float, f, TS_INF_F32, TS_NAN_F32)
TS_FLOAT_FUNCS(f64, double, , TS_INF_F64, TS_NAN_F64)

/* ---------------------------------------------------------------- integers
 * Arithmetic wraps like NumPy: done in the unsigned type U (at least 32 bits:
 * uint16*uint16 would promote to int and overflow), then narrowed.
 * Division by zero gives 0 and INT_MIN / -1 wraps, where C would trap. */

#define TS_INT_FUNCS(S, T, U, BITS, TMIN, SIGNED)                                      \
TS_INLINE T ts_negative_##S(T x) { return (T)((U)0 - (U)x); }                          \
TS_INLINE T ts_positive_##S(T x) { return x; }                                         \
TS_INLINE T ts_abs_##S(T x) { return (SIGNED && x < 0) ? (T)((U)0 - (U)x) : x; }       \
TS_INLINE T ts_sign_##S(T x) { return (T)((x > 0) - (SIGNED && x < (T)0)); }           \
TS_INLINE T ts_square_##S(T x) { return (T)((U)x * (U)x); }                            \
TS_INLINE T ts_floor_##S(T x) { return x; }                                            \
TS_INLINE T ts_ceil_##S(T x) { return x; }                                             \
TS_INLINE T ts_trunc_##S(T x) { return x; }                                            \
TS_INLINE T ts_round_##S(T x) { return x; }                                            \
TS_INLINE T ts_bitwise_invert_##S(T x) { return (T)~x; }                               \
TS_INLINE T ts_add_##S(T a, T b) { return (T)((U)a + (U)b); }                          \
TS_INLINE T ts_subtract_##S(T a, T b) { return (T)((U)a - (U)b); }                     \
TS_INLINE T ts_multiply_##S(T a, T b) { return (T)((U)a * (U)b); }                     \
TS_INLINE T ts_floor_divide_##S(T a, T b) {                                            \
  T bb = (b == 0 || (SIGNED && b == (T)-1)) ? (T)1 : b;                                \
  T q = (T)(a / bb);                                                                   \
  q = (SIGNED && (a % bb != 0) && ((a < 0) != (bb < 0))) ? (T)(q - 1) : q;             \
  return b == 0 ? (T)0 : ((SIGNED && b == (T)-1) ? ts_negative_##S(a) : q); }          \
TS_INLINE T ts_remainder_##S(T a, T b) {                                               \
  T bb = (b == 0 || (SIGNED && b == (T)-1)) ? (T)1 : b;                                \
  T r = (T)(a % bb);                                                                   \
  r = (SIGNED && r != 0 && ((r < 0) != (bb < 0))) ? (T)(r + bb) : r;                   \
  return (b == 0 || (SIGNED && b == (T)-1)) ? (T)0 : r; }                              \
TS_INLINE T ts_pow_##S(T a, T b) {                                                     \
  U r = 1, base = (U)a; T e = b;                                                       \
  while (e > 0) { if (e & 1) r = (U)(r * base); base = (U)(base * base); e = (T)(e >> 1); } \
  return (T)r; }                                                                       \
TS_INLINE T ts_maximum_##S(T a, T b) { return a >= b ? a : b; }                        \
TS_INLINE T ts_minimum_##S(T a, T b) { return a <= b ? a : b; }                        \
TS_INLINE uint8_t ts_equal_##S(T a, T b) { return a == b; }                            \
TS_INLINE uint8_t ts_not_equal_##S(T a, T b) { return a != b; }                        \
TS_INLINE uint8_t ts_less_##S(T a, T b) { return a < b; }                              \
TS_INLINE uint8_t ts_less_equal_##S(T a, T b) { return a <= b; }                       \
TS_INLINE uint8_t ts_greater_##S(T a, T b) { return a > b; }                           \
TS_INLINE uint8_t ts_greater_equal_##S(T a, T b) { return a >= b; }                    \
TS_INLINE T ts_bitwise_and_##S(T a, T b) { return (T)(a & b); }                        \
TS_INLINE T ts_bitwise_or_##S(T a, T b) { return (T)(a | b); }                         \
TS_INLINE T ts_bitwise_xor_##S(T a, T b) { return (T)(a ^ b); }                        \
/* shifts by >= the bit width (or negative) give 0, or -1 for a negative >> */          \
TS_INLINE T ts_bitwise_left_shift_##S(T a, T b) {                                      \
  return ((U)b < (U)(BITS) && !(SIGNED && b < 0)) ? (T)((U)a << (b & (BITS - 1))) : (T)0; } \
TS_INLINE T ts_bitwise_right_shift_##S(T a, T b) {                                     \
  T big = (SIGNED && a < 0) ? (T)-1 : (T)0;                                            \
  return ((U)b < (U)(BITS) && !(SIGNED && b < 0)) ? (T)(a >> (b & (BITS - 1))) : big; } \
TS_INLINE T ts_where_##S(uint8_t c, T a, T b) { return c ? a : b; }                    \
TS_INLINE T ts_rsum_##S(T acc, T x) { return (T)((U)acc + (U)x); }                     \
TS_INLINE T ts_rprod_##S(T acc, T x) { return (T)((U)acc * (U)x); }                    \
TS_INLINE T ts_rmax_##S(T acc, T x) { return x > acc ? x : acc; }                      \
TS_INLINE T ts_rmin_##S(T acc, T x) { return x < acc ? x : acc; }

TS_INT_FUNCS(i8, int8_t, uint32_t, 8, (-127 - 1), 1)
TS_INT_FUNCS(i16, int16_t, uint32_t, 16, (-32767 - 1), 1)
TS_INT_FUNCS(i32, int32_t, uint32_t, 32, (-2147483647 - 1), 1)
TS_INT_FUNCS(i64, int64_t, uint64_t, 64, (-9223372036854775807LL - 1), 1)
TS_INT_FUNCS(u8, uint8_t, uint32_t, 8, 0, 0)

/* ---------------------------------------------------------------- bool (0/1 bytes)
 * NumPy's bool arithmetic: add is or, multiply is and, ~ is not. */
TS_INLINE uint8_t ts_logical_not_b(uint8_t x) { return !x; }
TS_INLINE uint8_t ts_bitwise_invert_b(uint8_t x) { return !x; }
TS_INLINE uint8_t ts_positive_b(uint8_t x) { return x; }
TS_INLINE uint8_t ts_abs_b(uint8_t x) { return x; }
TS_INLINE uint8_t ts_square_b(uint8_t x) { return x; }
TS_INLINE uint8_t ts_logical_and_b(uint8_t a, uint8_t b) { return a && b; }
TS_INLINE uint8_t ts_logical_or_b(uint8_t a, uint8_t b) { return a || b; }
TS_INLINE uint8_t ts_logical_xor_b(uint8_t a, uint8_t b) { return (a != 0) != (b != 0); }
TS_INLINE uint8_t ts_bitwise_and_b(uint8_t a, uint8_t b) { return a & b; }
TS_INLINE uint8_t ts_bitwise_or_b(uint8_t a, uint8_t b) { return a | b; }
TS_INLINE uint8_t ts_bitwise_xor_b(uint8_t a, uint8_t b) { return a ^ b; }
TS_INLINE uint8_t ts_add_b(uint8_t a, uint8_t b) { return a | b; }
TS_INLINE uint8_t ts_multiply_b(uint8_t a, uint8_t b) { return a & b; }
TS_INLINE uint8_t ts_maximum_b(uint8_t a, uint8_t b) { return a | b; }
TS_INLINE uint8_t ts_minimum_b(uint8_t a, uint8_t b) { return a & b; }
TS_INLINE uint8_t ts_equal_b(uint8_t a, uint8_t b) { return a == b; }
TS_INLINE uint8_t ts_not_equal_b(uint8_t a, uint8_t b) { return a != b; }
TS_INLINE uint8_t ts_less_b(uint8_t a, uint8_t b) { return a < b; }
TS_INLINE uint8_t ts_less_equal_b(uint8_t a, uint8_t b) { return a <= b; }
TS_INLINE uint8_t ts_greater_b(uint8_t a, uint8_t b) { return a > b; }
TS_INLINE uint8_t ts_greater_equal_b(uint8_t a, uint8_t b) { return a >= b; }
TS_INLINE uint8_t ts_where_b(uint8_t c, uint8_t a, uint8_t b) { return c ? a : b; }
TS_INLINE uint8_t ts_rsum_b(uint8_t acc, uint8_t x) { return acc | x; }
TS_INLINE uint8_t ts_rprod_b(uint8_t acc, uint8_t x) { return acc & x; }
TS_INLINE uint8_t ts_rmax_b(uint8_t acc, uint8_t x) { return acc | x; }
TS_INLINE uint8_t ts_rmin_b(uint8_t acc, uint8_t x) { return acc & x; }

#endif /* TESSERA_FUNCTORS_CUH */
