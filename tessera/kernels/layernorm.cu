// layernorm.cu -- layer normalisation over the last axis of a (rows, cols) view.
//
// layer_norm_fwd: y = (x - mean) * rstd * gamma + beta; saves mean and rstd (in the
//   accumulation type: f32 for f16/bf16/f32, f64 for f64). gamma/beta may be null.
// layer_norm_bwd_dx: dx = rstd * (g - mean(g) - xhat * mean(g * xhat)), g = dy * gamma.
// layer_norm_bwd_params: per-(row chunk, column) partial sums of dy * xhat and dy;
//   the launcher finishes dgamma/dbeta with reduce_cols<SumOp<A>, A, T> (reduce.cu).
#include "reduce_common.cuh"

template <class T>
__global__ void __launch_bounds__(ROW_THREADS) layer_norm_fwd(const T* __restrict__ x, const T* __restrict__ gamma,
                                                       const T* __restrict__ beta, T* __restrict__ y,
                                                       typename Acc<T>::type* __restrict__ mean_out,
                                                       typename Acc<T>::type* __restrict__ rstd_out,
                                                       i64 rows, i64 cols, double eps) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  const T* xr = x + row * cols;
  VarOp<A> s = VarOp<A>::identity();  // Welford: no E[x^2] - E[x]^2 cancellation
  if (row < rows)
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) s.fold(load_as<A>(xr[c]), c);
  s = group_allreduce(s);
  if (row >= rows) return;
  const A mean = s.mean, rstd = s.rstd((A)eps);
  if (threadIdx.x == 0) { mean_out[row] = mean; rstd_out[row] = rstd; }
  T* yr = y + row * cols;
  for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
    A v = (load_as<A>(xr[c]) - mean) * rstd;
    if (gamma) v *= load_as<A>(gamma[c]);
    if (beta) v += load_as<A>(beta[c]);
    yr[c] = store_from<T>(v);
  }
}

// Two sums reduced together: sum(g) and sum(g * xhat).
template <class A> struct Sum2Op {
  typedef A acc; A a, b;
  static TS_DEV Sum2Op identity() { Sum2Op s; s.a = A(0); s.b = A(0); return s; }
  TS_DEV void combine(const Sum2Op& o) { a += o.a; b += o.b; }
  TS_DEV Sum2Op shfl_xor(int m) const { Sum2Op s; s.a = ::shfl_xor(a, m); s.b = ::shfl_xor(b, m); return s; }
};

template <class T>
__global__ void __launch_bounds__(ROW_THREADS) layer_norm_bwd_dx(const T* __restrict__ x, const T* __restrict__ dy,
                                                          const T* __restrict__ gamma,
                                                          const typename Acc<T>::type* __restrict__ mean,
                                                          const typename Acc<T>::type* __restrict__ rstd,
                                                          T* __restrict__ dx, i64 rows, i64 cols) {
  typedef typename Acc<T>::type A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  const T* xr = x + row * cols;
  const T* gr = dy + row * cols;
  A mu = A(0), rs = A(0);
  Sum2Op<A> s = Sum2Op<A>::identity();
  if (row < rows) {
    mu = mean[row]; rs = rstd[row];
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
      A g = load_as<A>(gr[c]);
      if (gamma) g *= load_as<A>(gamma[c]);
      s.a += g;
      s.b += g * (load_as<A>(xr[c]) - mu) * rs;
    }
  }
  s = group_allreduce(s);
  if (row >= rows) return;
  const A mg = s.a / (A)cols, mgx = s.b / (A)cols;
  T* dr = dx + row * cols;
  for (i64 c = threadIdx.x; c < cols; c += blockDim.x) {
    A g = load_as<A>(gr[c]);
    if (gamma) g *= load_as<A>(gamma[c]);
    const A xhat = (load_as<A>(xr[c]) - mu) * rs;
    dr[c] = store_from<T>(rs * (g - mg - xhat * mgx));
  }
}

constexpr int LN_TX = 32, LN_TY = 8;

// grid = (ceil(cols / LN_TX), chunks); chunk j covers rows [j*rows_per_chunk, ...).
// part_* are (chunks, cols) in the accumulation type.
template <class T>
__global__ void __launch_bounds__(LN_TX * LN_TY) layer_norm_bwd_params(
    const T* __restrict__ x, const T* __restrict__ dy, const typename Acc<T>::type* __restrict__ mean,
    const typename Acc<T>::type* __restrict__ rstd, typename Acc<T>::type* __restrict__ part_dgamma,
    typename Acc<T>::type* __restrict__ part_dbeta, i64 rows, i64 cols, i64 rows_per_chunk) {
  typedef typename Acc<T>::type A;
  __shared__ A sg[LN_TY][LN_TX + 1], sb[LN_TY][LN_TX + 1];
  const i64 col = (i64)blockIdx.x * LN_TX + threadIdx.x;
  const i64 r0 = (i64)blockIdx.y * rows_per_chunk;
  const i64 r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  A dg = A(0), db = A(0);
  if (col < cols)
    for (i64 r = r0 + threadIdx.y; r < r1; r += LN_TY) {  // threads along x: coalesced columns
      const A g = load_as<A>(dy[r * cols + col]);
      dg += g * (load_as<A>(x[r * cols + col]) - mean[r]) * rstd[r];
      db += g;
    }
  sg[threadIdx.y][threadIdx.x] = dg;
  sb[threadIdx.y][threadIdx.x] = db;
  __syncthreads();
  if (threadIdx.y == 0 && col < cols) {
    for (int k = 1; k < LN_TY; k++) { dg += sg[k][threadIdx.x]; db += sb[k][threadIdx.x]; }
    part_dgamma[blockIdx.y * cols + col] = dg;
    part_dbeta[blockIdx.y * cols + col] = db;
  }
}
