// reduce.cu -- one-launch reductions over one axis of a 2-D or 3-D view.
//
// tessera permutes/reshapes every reduction into one of two layouts:
//   reduce_rows: x is (rows, cols) contiguous, reduce cols (the inner axis);
//                blockDim = (WARP_SIZE, k) gives one warp per row for short rows,
//                (multiple of WARP_SIZE, 1) one block per row for long rows.
//   reduce_cols: x is (outer, R, inner) contiguous, reduce R; threads run over
//                inner so every load is coalesced, blockDim.y splits R.
// Op is a state from reduce_common.cuh (SumOp<f32>, ArgMaxOp<f64>, ...); the
// accumulation type is Op::acc. `param` is ddof for VarOp/StdOp.
#include "reduce_common.cuh"

template <class Op, class In, class Out>
__global__ void __launch_bounds__(ROW_THREADS) reduce_rows(const In* __restrict__ x, Out* __restrict__ out,
                                                    i64 rows, i64 cols, double param) {
  typedef typename Op::acc A;
  const i64 row = (i64)blockIdx.x * blockDim.y + threadIdx.y;
  Op s = Op::identity();
  if (row < rows) {
    const In* p = x + row * cols;
    for (i64 c = threadIdx.x; c < cols; c += blockDim.x) s.fold(load_as<A>(p[c]), c);
  }
  s = group_allreduce(s);  // no early return above: every thread must reach this
  if (row < rows && threadIdx.x == 0) out[row] = s.template result<Out>(cols, param);
}

constexpr int COLS_TX = 32;  // threads along inner (coalescing), independent of warp size
constexpr int COLS_TY = 8;   // threads splitting the reduced axis

// Min-blocks 1: without it ptxas capped Welford's kernel at 32 registers on sm_80
// and spilled around the reciprocal's slow-path call.
template <class Op, class In, class Out>
__global__ void __launch_bounds__(COLS_TX * COLS_TY, 1) reduce_cols(const In* __restrict__ x, Out* __restrict__ out,
                                                                 i64 outer, i64 R, i64 inner, double param) {
  typedef typename Op::acc A;
  __shared__ Op part[COLS_TY][COLS_TX + 1];  // +1: column reads below hit distinct banks
  const i64 col = (i64)blockIdx.x * COLS_TX + threadIdx.x;
  for (i64 a = blockIdx.y; a < outer; a += gridDim.y) {  // gridDim.y is capped at 65535
    Op s = Op::identity();
    if (col < inner) {
      const In* p = x + a * R * inner + col;
      for (i64 r = threadIdx.y; r < R; r += COLS_TY) s.fold(load_as<A>(p[r * inner]), r);
    }
    part[threadIdx.y][threadIdx.x] = s;
    __syncthreads();
    if (threadIdx.y == 0 && col < inner) {
      for (int k = 1; k < COLS_TY; k++) s.combine(part[k][threadIdx.x]);
      out[a * inner + col] = s.template result<Out>(R, param);
    }
    __syncthreads();  // part[] is rewritten by the next outer slice
  }
}
