// cast.cu -- elementwise dtype conversion between every pair of tessera dtypes.
//
// Values go through the destination's compute type (f32 for f16/bf16/fp8), so
// f64 -> bf16/f16/fp8 rounds twice (f64 -> f32 -> narrow); the difference from a
// direct rounding only shows within one f32 ulp of a tie. Casting to bool is
// `x != 0` (NaN is true, as numpy). Float -> integer of NaN or an out-of-range value
// follows the device's conversion instruction (CUDA saturates, NaN -> 0), where numpy
// leaves it undefined. SAT (fp8 destinations) clamps finite overflow and +-inf to
// +-max instead of producing NaN (e4m3fn) or inf (e5m2); NaN stays NaN.
#include "compat.cuh"

template <class S, class D, bool SAT>
__global__ void __launch_bounds__(256) cast(const S* __restrict__ src, D* __restrict__ dst, i64 n) {
  typedef typename Scalar<D>::compute DC;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    const DC v = static_cast<DC>(Scalar<S>::up(src[i]));
    dst[i] = SAT ? Scalar<D>::down_sat(v) : Scalar<D>::down(v);
  }
}
