// cast.cu -- elementwise dtype conversion between every pair of tessera dtypes.
//
// The rules are tessera's one table (tessera/precision/convert.py), not the device's:
//  * to bool: x != 0 (NaN is true, as numpy);
//  * float -> int8/int16/int32/uint8: truncate toward zero; NaN, +-inf and values
//    outside int32 give INT32_MIN; the result is that int32 modulo 2^bits, so
//    uint8(-1.0) = 255, uint8(300.0) = 44, uint8(NaN) = 0. float -> int64 likewise
//    with int64's range and INT64_MIN. Spelled out because the bare C++ conversion is
//    undefined there and CUDA's cvt would saturate, unlike the CPU and fused kernels;
//  * to fp16/bf16/fp8: one rounding to nearest even from the exact source value. An
//    fp32 source rounds directly; fp64, int32 and int64 sources are first rounded to
//    fp32 *to odd* (truncate, then set the last bit when anything was dropped), which
//    makes the rounding to the narrow type give the single rounding. Going through a
//    plain float (round-to-nearest twice) would be off by one ulp near ties.
// SAT (fp8 destinations) clamps finite overflow and +-inf to +-max instead of producing
// NaN (e4m3fn) or inf (e5m2); NaN stays NaN.
#include "compat.cuh"

namespace cast_rule {

template <class A, class B> struct Same { static constexpr bool value = false; };
template <class A> struct Same<A, A> { static constexpr bool value = true; };

template <class T> struct Kind { static constexpr bool flt = false, integer = false, narrow = false; };
#define TS_CAST_KIND(T, F, I, N) \
  template <> struct Kind<T> { static constexpr bool flt = F, integer = I, narrow = N; };
TS_CAST_KIND(f64, true, false, false)
TS_CAST_KIND(f32, true, false, false)
TS_CAST_KIND(f16, true, false, true)
TS_CAST_KIND(bf16, true, false, true)
TS_CAST_KIND(fp8e4m3, true, false, true)
TS_CAST_KIND(fp8e5m2, true, false, true)
TS_CAST_KIND(i8, false, true, false)
TS_CAST_KIND(i16, false, true, false)
TS_CAST_KIND(i32, false, true, false)
TS_CAST_KIND(i64, false, true, false)
TS_CAST_KIND(u8, false, true, false)
#undef TS_CAST_KIND

TS_DEV u64 f64_bits(double d) { union { double d; u64 u; } c; c.d = d; return c.u; }
TS_DEV double bits_f64(u64 u) { union { double d; u64 u; } c; c.u = u; return c.d; }

// f64 -> f32 rounded to odd. NaN compares false everywhere and keeps its pattern.
TS_DEV float f64_to_f32_odd(double d) {
  const float f = (float)d;  // nearest even; inf beyond the range
  u32 b = f32_bits(f);
  const double ad = d < 0 ? -d : d, af = (double)(f < 0 ? -f : f);
  if (af > ad) b -= 1u;  // rounded away from zero: one code back toward it
  if ((double)bits_f32(b) != d && d == d) b |= 1u;
  return bits_f32(b);
}

// i64 -> f64 rounded to odd (exact below 2^53 in magnitude).
TS_DEV double i64_to_f64_odd(i64 n) {
  const double f = (double)n;
  const bool big = f >= 9223372036854775808.0;  // 2^63: above every n, not an i64
  const i64 fi = big ? 0 : (i64)f;
  const bool over = big || fi > n, under = !big && fi < n;
  u64 b = f64_bits(f);
  if (n >= 0 ? over : under) b -= 1u;
  if (over || under) b |= 1u;
  return bits_f64(b);
}

// The source as an fp32 from which one nearest-even rounding to a narrow type is exact.
template <class S> TS_DEV float narrow_source(S v) {
  if constexpr (Same<S, f64>::value) return f64_to_f32_odd(v);
  else if constexpr (Same<S, i64>::value) return f64_to_f32_odd(i64_to_f64_odd(v));
  else if constexpr (Same<S, i32>::value) return f64_to_f32_odd((double)v);
  else return static_cast<float>(Scalar<S>::up(v));  // fp32 itself, or exact in fp32
}

template <class D> TS_DEV D float_to_int(double x) {
  if constexpr (sizeof(D) == 8) {
    return (x == x && x >= -9223372036854775808.0 && x < 9223372036854775808.0)
               ? (D)x : (D)(-9223372036854775807LL - 1);
  } else {
    const i32 w = (x == x && x > -2147483649.0 && x < 2147483648.0) ? (i32)x : (i32)(-2147483647 - 1);
    return (D)w;  // two's complement wrap to the width
  }
}

template <class S, class D, bool SAT> TS_DEV D convert(S v) {
  if constexpr (Kind<D>::integer && Kind<S>::flt) {
    return float_to_int<D>((double)Scalar<S>::up(v));
  } else if constexpr (Kind<D>::narrow) {
    const float f = narrow_source<S>(v);
    return SAT ? Scalar<D>::down_sat(f) : Scalar<D>::down(f);
  } else {
    typedef typename Scalar<D>::compute DC;
    const DC c = static_cast<DC>(Scalar<S>::up(v));
    return SAT ? Scalar<D>::down_sat(c) : Scalar<D>::down(c);
  }
}

}  // namespace cast_rule

template <class S, class D, bool SAT>
__global__ void __launch_bounds__(256) cast(const S* __restrict__ src, D* __restrict__ dst, i64 n) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x)
    dst[i] = cast_rule::convert<S, D, SAT>(src[i]);
}
