// softmax.cu -- softmax and log_softmax over the last axis of a (rows, cols) view.
//
// Forward: one online pass computes (max, sum exp(x - max)) per row (LogSumExpOp),
// a second pass writes the result, so x is read twice and y written once.
// Backward: dx = y * (dy - sum(dy * y))       (softmax)
//           dx = dy - exp(y) * sum(dy)         (log_softmax; y is the log-probabilities)
// Row groups as in reduce_rows: blockDim = (WARP_SIZE, k) for short rows, one warp
// per row; (multiple of WARP_SIZE, 1) for long rows, one block per row.
// NaN anywhere in a row makes the whole row NaN; a row of all -inf gives NaN (as torch).
#include "reduce_common.cuh"

template <class T, bool LOG>
__global__ void __launch_bounds__(ROW_THREADS) softmax_fwd(const T* __restrict__ x, T* __restrict__ y, i64 rows, i64 cols) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  LogSumExpOp<A> s = LogSumExpOp<A>::identity();
  const T* xr = x + row * cols;
  if (row < rows)
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) s.fold(load_as<A>(xr[c]), c);
  s = group_allreduce(s);
  if (row >= rows) return;
  const A lse = s.m + log(s.s), inv = A(1) / s.s;
  T* yr = y + row * cols;
  for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
    const A v = load_as<A>(xr[c]);
    yr[c] = store_from<T>(LOG ? v - lse : exp(v - s.m) * inv);
  }
}

template <class T, bool LOG>
__global__ void __launch_bounds__(ROW_THREADS) softmax_bwd(const T* __restrict__ y, const T* __restrict__ dy,
                                                    T* __restrict__ dx, i64 rows, i64 cols) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  const T* yr = y + row * cols;
  const T* gr = dy + row * cols;
  SumOp<A> s = SumOp<A>::identity();
  if (row < rows)
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x)
      s.fold(LOG ? load_as<A>(gr[c]) : load_as<A>(gr[c]) * load_as<A>(yr[c]), c);
  s = group_allreduce(s);
  if (row >= rows) return;
  T* dr = dx + row * cols;
  for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
    const A yv = load_as<A>(yr[c]), g = load_as<A>(gr[c]);
    dr[c] = store_from<T>(LOG ? g - exp(yv) * s.v : yv * (g - s.v));
  }
}
