// reduce_common.cuh -- reduction states and warp/block combining, shared by
// reduce.cu, softmax.cu, layernorm.cu and cross_entropy.cu.
//
// A reduction is a POD "state" with identity(), fold(value, index),
// combine(other), shfl_xor(lane_mask) and result<Out>(n, param). Keeping the
// states POD lets them live in __shared__ memory and be shuffled field by field.
#pragma once
#include "compat.cuh"

// MEAN divides by n in result(); n == 0 gives 0/0 = NaN, as numpy.mean.
template <class A, bool MEAN> struct SumLikeOp {
  typedef A acc; A v;
  static TS_DEV SumLikeOp identity() { SumLikeOp s; s.v = A(0); return s; }
  TS_DEV void fold(A x, i64) { v += x; }
  TS_DEV void combine(const SumLikeOp& o) { v += o.v; }
  TS_DEV SumLikeOp shfl_xor(int m) const { SumLikeOp s; s.v = ::shfl_xor(v, m); return s; }
  template <class Out> TS_DEV Out result(i64 n, double) const {
    if constexpr (MEAN) return store_from<Out>(v * recip((A)n));
    else return store_from<Out>(v);
  }
};
template <class A> using SumOp = SumLikeOp<A, false>;
template <class A> using MeanOp = SumLikeOp<A, true>;

template <class A> struct ProdOp {
  typedef A acc; A v;
  static TS_DEV ProdOp identity() { ProdOp s; s.v = A(1); return s; }
  TS_DEV void fold(A x, i64) { v *= x; }
  TS_DEV void combine(const ProdOp& o) { v *= o.v; }
  TS_DEV ProdOp shfl_xor(int m) const { ProdOp s; s.v = ::shfl_xor(v, m); return s; }
  template <class Out> TS_DEV Out result(i64, double) const { return store_from<Out>(v); }
};

// max/min propagate NaN like numpy.max: once a NaN is seen it wins.
template <class A, bool MAX> struct ExtremumOp {
  typedef A acc; A v;
  static TS_DEV ExtremumOp identity() { ExtremumOp s; s.v = MAX ? lowest_value<A>() : highest_value<A>(); return s; }
  TS_DEV void fold(A x, i64) { if (is_nan(x) || (MAX ? x > v : x < v)) if (!is_nan(v)) v = x; }
  TS_DEV void combine(const ExtremumOp& o) { fold(o.v, 0); }
  TS_DEV ExtremumOp shfl_xor(int m) const { ExtremumOp s; s.v = ::shfl_xor(v, m); return s; }
  template <class Out> TS_DEV Out result(i64, double) const { return store_from<Out>(v); }
};
template <class A> using MaxOp = ExtremumOp<A, true>;
template <class A> using MinOp = ExtremumOp<A, false>;

// argmax/argmin: first index on ties, first NaN wins (numpy.argmax). The
// ordering is total on (value, index), so combining in any tree order is exact.
template <class A, bool MAX> struct ArgOp {
  typedef A acc; A v; i64 i;
  static TS_DEV ArgOp identity() {
    ArgOp s; s.v = MAX ? lowest_value<A>() : highest_value<A>(); s.i = highest_value<i64>(); return s;
  }
  TS_DEV bool beats(A x, i64 xi) const {  // does (x, xi) beat the current state?
    if (is_nan(v)) return is_nan(x) && xi < i;
    if (is_nan(x)) return true;
    if (MAX ? x > v : x < v) return true;
    return x == v && xi < i;
  }
  TS_DEV void fold(A x, i64 xi) { if (beats(x, xi)) { v = x; i = xi; } }
  TS_DEV void combine(const ArgOp& o) { fold(o.v, o.i); }
  TS_DEV ArgOp shfl_xor(int m) const { ArgOp s; s.v = ::shfl_xor(v, m); s.i = ::shfl_xor(i, m); return s; }
  template <class Out> TS_DEV Out result(i64, double) const { return store_from<Out>(i == highest_value<i64>() ? (i64)0 : i); }
};
template <class A> using ArgMaxOp = ArgOp<A, true>;
template <class A> using ArgMinOp = ArgOp<A, false>;

template <class A, bool ALL> struct LogicalOp {
  typedef A acc; i32 v;
  static TS_DEV LogicalOp identity() { LogicalOp s; s.v = ALL ? 1 : 0; return s; }
  TS_DEV void fold(A x, i64) { i32 t = (x != A(0)) ? 1 : 0; v = ALL ? (v & t) : (v | t); }
  TS_DEV void combine(const LogicalOp& o) { v = ALL ? (v & o.v) : (v | o.v); }
  TS_DEV LogicalOp shfl_xor(int m) const { LogicalOp s; s.v = ::shfl_xor(v, m); return s; }
  template <class Out> TS_DEV Out result(i64, double) const { return store_from<Out>(v != 0); }
};
template <class A> using AllOp = LogicalOp<A, true>;
template <class A> using AnyOp = LogicalOp<A, false>;

// Welford's running mean/M2 (Chan et al. to combine): one pass, no
// catastrophic cancellation. result() is the variance with ddof = param.
template <class A, bool SQRT> struct MomentOp {
  typedef A acc; i64 n; A mean, m2;
  static TS_DEV MomentOp identity() { MomentOp s; s.n = 0; s.mean = A(0); s.m2 = A(0); return s; }
  TS_DEV void fold(A x, i64) { n++; A d = x - mean; mean += d * recip((A)n); m2 += d * (x - mean); }
  TS_DEV void combine(const MomentOp& o) {
    if (o.n == 0) return;
    if (n == 0) { *this = o; return; }
    i64 nn = n + o.n; A d = o.mean - mean, f = (A)o.n * recip((A)nn);
    mean += d * f; m2 += o.m2 + d * d * (A)n * f; n = nn;
  }
  TS_DEV MomentOp shfl_xor(int m) const {
    MomentOp s; s.n = ::shfl_xor(n, m); s.mean = ::shfl_xor(mean, m); s.m2 = ::shfl_xor(m2, m); return s;
  }
  // numpy divides by max(n - ddof, 0): 0/0 -> NaN, x/0 -> inf.
  template <class Out> TS_DEV Out result(i64, double ddof) const {
    A dof = (A)n - (A)ddof; if (dof < A(0)) dof = A(0);
    A var = m2 * recip(dof);  // recip(0) = inf: 0 * inf = NaN, x * inf = inf, as m2 / 0
    return store_from<Out>(SQRT ? sqrt(var) : var);
  }
  TS_DEV A rstd(A eps) const { A var = n > 0 ? m2 * recip((A)n) : A(0); return rsqrt(var + eps); }
};
template <class A> using VarOp = MomentOp<A, false>;
template <class A> using StdOp = MomentOp<A, true>;

// Online log-sum-exp: (running max m, sum of exp(x - m)). Infinite maxima
// are special-cased so that inf - inf never produces a spurious NaN.
template <class A> struct LogSumExpOp {
  typedef A acc; A m, s;
  static TS_DEV LogSumExpOp identity() { LogSumExpOp r; r.m = lowest_value<A>(); r.s = A(0); return r; }
  TS_DEV void fold(A x, i64) { LogSumExpOp o; o.m = x; o.s = A(1); combine(o); }
  TS_DEV void combine(const LogSumExpOp& o) {
    if (is_nan(m) || is_nan(o.m)) { m = m + o.m; s = A(1); return; }
    if (o.s == A(0) || o.m == lowest_value<A>()) return;      // nothing, or only -inf
    if (s == A(0) || m == lowest_value<A>()) { *this = o; return; }
    if (o.m > m) { s = o.s + (m == o.m ? s : s * exp(m - o.m)); m = o.m; }
    else { s += (m == o.m ? o.s : o.s * exp(o.m - m)); }
  }
  TS_DEV LogSumExpOp shfl_xor(int k) const {
    LogSumExpOp r; r.m = ::shfl_xor(m, k); r.s = ::shfl_xor(s, k); return r;
  }
  TS_DEV A value() const { return s == A(0) ? lowest_value<A>() : m + log(s); }
  template <class Out> TS_DEV Out result(i64, double) const { return store_from<Out>(value()); }
};

// Row kernels run at most ROW_THREADS threads per block (launchers/geometry.py):
// a tight launch bound lets ptxas use registers freely instead of spilling.
constexpr int ROW_THREADS = 256;

template <class S> TS_DEV S warp_allreduce(S s) {
  for (int o = WARP_SIZE / 2; o > 0; o >>= 1) s.combine(s.shfl_xor(o));
  return s;
}

// All-reduce over the blockDim.x threads of one row group. Either the group
// is one warp (blockDim.x == WARP_SIZE, any blockDim.y) or the whole block
// (blockDim.y == 1, blockDim.x a multiple of WARP_SIZE up to ROW_THREADS).
// Every thread of the block must call it (it may __syncthreads).
template <class S> TS_DEV S group_allreduce(S s) {
  __shared__ S partial[ROW_THREADS / 32];
  s = warp_allreduce(s);
  const int nwarps = blockDim.x / WARP_SIZE;
  if (nwarps == 1) return s;
  const int lane = threadIdx.x % WARP_SIZE, w = threadIdx.x / WARP_SIZE;
  __syncthreads();  // a previous call may still be reading partial[]
  if (lane == 0) partial[w] = s;
  __syncthreads();
  S t = lane < nwarps ? partial[lane] : S::identity();
  return warp_allreduce(t);
}
