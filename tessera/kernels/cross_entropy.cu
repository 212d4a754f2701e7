// cross_entropy.cu -- softmax cross-entropy of logits (N, C) with int64 targets.
//
// ce_fwd: loss[r] = logsumexp(x[r]) - x[r, t[r]], 0 where t[r] == ignore_index; saves
//   lse[r]. loss and lse are in the accumulation type (f32 for f16/bf16/f32, f64 for
//   f64); the op layer applies the reduction ('mean' over non-ignored rows, 'sum').
//   A target outside [0, C) that is not ignore_index gives NaN (the op layer checks
//   targets first; NaN keeps a bad label visible instead of reading out of bounds).
// ce_bwd: dx[r, c] = dloss[r] * (softmax(x[r])[c] - [c == t[r]]), 0 for ignored rows.
#include "reduce_common.cuh"

template <class T>
__global__ void __launch_bounds__(ROW_THREADS) ce_fwd(const T* __restrict__ x, const i64* __restrict__ target,
                                               typename Acc<T>::type* __restrict__ loss,
                                               typename Acc<T>::type* __restrict__ lse_out,
                                               i64 rows, i64 C, i64 ignore_index) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  const T* xr = x + row * C;
  LogSumExpOp<A> s = LogSumExpOp<A>::identity();
  if (row < rows)
    for (i64 c = threadIdx.x; c < C; c += blockDim.x) s.fold(load_as<A>(xr[c]), c);
  s = group_allreduce(s);
  if (row >= rows || threadIdx.x != 0) return;
  const A lse = s.value();
  const i64 t = target[row];
  lse_out[row] = lse;
  if (t == ignore_index) loss[row] = A(0);
  else if (t < 0 || t >= C) loss[row] = A(0) / A(0);
  else loss[row] = lse - load_as<A>(xr[t]);
}

template <class T>
__global__ void __launch_bounds__(ROW_THREADS) ce_bwd(const T* __restrict__ x, const i64* __restrict__ target,
                                               const typename Acc<T>::type* __restrict__ lse,
                                               const typename Acc<T>::type* __restrict__ dloss,
                                               T* __restrict__ dx, i64 rows, i64 C, i64 ignore_index) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  if (row >= rows) return;  // no block-wide synchronisation in this kernel
  const i64 t = target[row];
  const bool ignored = t == ignore_index;
  const A g = ignored ? A(0) : dloss[row], l = lse[row];
  const T* xr = x + row * C;
  T* dr = dx + row * C;
  for (i64 c = threadIdx.x; c < C; c += blockDim.x) {
    const A p = exp(load_as<A>(xr[c]) - l);
    dr[c] = store_from<T>(ignored ? A(0) : g * (p - (c == t ? A(1) : A(0))));
  }
}
