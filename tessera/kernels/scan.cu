// scan.cu -- inclusive prefix sum (cumsum) along the last axis of a (rows, n) view.
//
// One block scans a segment of a row in chunks of SCAN_BLOCK * SCAN_ITEMS elements:
// a coalesced load into shared memory, a sequential scan of SCAN_ITEMS elements per
// thread, a warp-shuffle scan of the per-thread totals, a scan of the per-warp totals,
// then a coalesced store; a running carry links the chunks.
// Short or many rows: one segment per row, one launch. Few long rows (too few blocks
// to fill the GPU): the launcher splits rows into segments and runs
//   1. scan_rows(write=false) -> seg_total[row, seg]   (sum of each segment)
//   2. scan_rows on seg_total (one segment)              (inclusive scan of totals)
//   3. scan_rows(write=true, carry_in=scanned totals)   (each segment starts at its offset)
// Sums accumulate in Acc<In> (f32 for f16/bf16, i64 for integers and bool) and round
// once per output element.
#include "compat.cuh"

constexpr int SCAN_BLOCK = 256, SCAN_ITEMS = 4, SCAN_CHUNK = SCAN_BLOCK * SCAN_ITEMS;

template <class A> TS_DEV A block_exclusive_scan(A v, A* warp_tot, A* total) {
  const int lane = threadIdx.x % WARP_SIZE, w = threadIdx.x / WARP_SIZE;
  constexpr int NW = SCAN_BLOCK / WARP_SIZE;
  A inc = v;
#pragma unroll
  for (int d = 1; d < WARP_SIZE; d <<= 1) {
    const A t = shfl_up(inc, d);
    if (lane >= d) inc += t;
  }
  if (lane == WARP_SIZE - 1) warp_tot[w] = inc;
  __syncthreads();
  if (threadIdx.x == 0) {  // NW <= 8 values: a serial scan is cheaper than another shuffle round
    A run = A(0);
    for (int k = 0; k < NW; k++) { const A t = warp_tot[k]; warp_tot[k] = run; run += t; }
    *total = run;
  }
  __syncthreads();
  return warp_tot[w] + inc - v;
}

template <class In, class Out>
__global__ void __launch_bounds__(SCAN_BLOCK) scan_rows(const In* __restrict__ x, Out* __restrict__ out,
                                                        i64 rows, i64 n, i64 seg_len,
                                                        const typename Acc<In>::type* __restrict__ carry_in,
                                                        typename Acc<In>::type* __restrict__ seg_total,
                                                        bool write) {
  typedef typename Acc<In>::type A;
  __shared__ A buf[SCAN_CHUNK];
  __shared__ A warp_tot[SCAN_BLOCK / 32 + 1];
  __shared__ A chunk_total;
  const i64 segs = gridDim.x, s = blockIdx.x;
  const i64 lo = s * seg_len, hi = lo + seg_len < n ? lo + seg_len : n;
  for (i64 row = blockIdx.y; row < rows; row += gridDim.y) {
    const In* xr = x + row * n;
    Out* orow = out + row * n;
    A carry = (carry_in && s > 0) ? carry_in[row * segs + s - 1] : A(0);
    for (i64 c0 = lo; c0 < hi; c0 += SCAN_CHUNK) {
      for (int k = threadIdx.x; k < SCAN_CHUNK; k += SCAN_BLOCK)
        buf[k] = c0 + k < hi ? load_as<A>(xr[c0 + k]) : A(0);
      __syncthreads();
      A v[SCAN_ITEMS], run = A(0);
#pragma unroll
      for (int j = 0; j < SCAN_ITEMS; j++) { run += buf[threadIdx.x * SCAN_ITEMS + j]; v[j] = run; }
      const A before = block_exclusive_scan(run, warp_tot, &chunk_total) + carry;
#pragma unroll
      for (int j = 0; j < SCAN_ITEMS; j++) buf[threadIdx.x * SCAN_ITEMS + j] = before + v[j];
      __syncthreads();
      if (write)
        for (int k = threadIdx.x; k < SCAN_CHUNK; k += SCAN_BLOCK)
          if (c0 + k < hi) orow[c0 + k] = store_from<Out>(buf[k]);
      carry += chunk_total;
      __syncthreads();  // buf and chunk_total are reused by the next chunk
    }
    if (seg_total && threadIdx.x == 0) seg_total[row * segs + s] = carry;
  }
}
