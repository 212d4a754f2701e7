// transpose.cu -- data movement: tiled transpose of the last two axes, and the
// generic strided N-d copy (any permutation / broadcast / making contiguous).
//
// Both move bytes only, so they are instantiated per element size (u8, u16, u32,
// u64) and serve every dtype of that size.
#include "compat.cuh"

// in (batch, R, C) contiguous -> out (batch, C, R) contiguous. A TILE x TILE tile is
// read with coalesced rows and written with coalesced rows through shared memory;
// the +1 column of padding puts a tile column in distinct banks, so the transposed
// reads do not serialise. blockDim = (TILE, ROWS), each thread moves TILE/ROWS elements.
template <class T, int TILE, int ROWS>
__global__ void __launch_bounds__(TILE * ROWS) transpose_tiled(const T* __restrict__ in, T* __restrict__ out,
                                                               i64 batch, i64 R, i64 C) {
  __shared__ T tile[TILE][TILE + 1];
  const i64 c0 = (i64)blockIdx.x * TILE, r0 = (i64)blockIdx.y * TILE;
  for (i64 b = blockIdx.z; b < batch; b += gridDim.z) {
    const T* ib = in + b * R * C;
    T* ob = out + b * R * C;
#pragma unroll
    for (int k = 0; k < TILE; k += ROWS) {
      const i64 r = r0 + threadIdx.y + k, c = c0 + threadIdx.x;
      if (r < R && c < C) tile[threadIdx.y + k][threadIdx.x] = ib[r * C + c];
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < TILE; k += ROWS) {
      const i64 c = c0 + threadIdx.y + k, r = r0 + threadIdx.x;  // out row = c, out col = r
      if (r < R && c < C) ob[c * R + r] = tile[threadIdx.x][threadIdx.y + k];
    }
    __syncthreads();
  }
}

// Shape and element strides (of the input, already permuted into output order; 0
// broadcasts, negative strides are allowed) passed by value: no device-side metadata
// buffer, no extra copy per launch. Layout matches the numpy structured dtype
// [("ndim", i8), ("shape", i8, 8), ("stride", i8, 8)] used by the launcher.
constexpr int MAX_DIMS = 8;
struct StridedLayout {
  i64 ndim;
  i64 shape[MAX_DIMS];
  i64 stride[MAX_DIMS];
};

// out (contiguous, shape L.shape) [i] = in[offset of multi-index i under L.stride]
template <class T>
__global__ void __launch_bounds__(256) strided_copy(const T* __restrict__ in, T* __restrict__ out, i64 n,
                                                    StridedLayout L) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    i64 rem = i, off = 0;
    for (int d = (int)L.ndim - 1; d >= 0; d--) {  // innermost first: consecutive threads, consecutive d
      const i64 q = rem / L.shape[d];
      off += (rem - q * L.shape[d]) * L.stride[d];
      rem = q;
    }
    out[i] = in[off];
  }
}
