// gather.cu -- indexing and its adjoint: gathers and scatter-adds.
//
// index_select: out (outer, nidx, inner) = x (outer, axis_len, inner) at idx along
//   the middle axis (negative indices wrap, as numpy.take).
// gather_flat: out[i] = x[offsets[i]]: advanced indexing, where tessera has already
//   folded all index arrays into flat element offsets.
// scatter_add_axis / scatter_add_flat: the adjoints, accumulating with atomics
//   (duplicate indices add up, as numpy.add.at).
// Out-of-range indices are never dereferenced: they set *err = 1 (err may be null)
// and gathers write 0, so the op layer can raise a clear IndexError afterwards.
// Gathers move bytes (u8/u16/u32/u64 serve all dtypes); scatter-adds are typed.
#include "compat.cuh"

template <class T>
__global__ void __launch_bounds__(256) index_select(const T* __restrict__ x, const i64* __restrict__ idx,
                                                    T* __restrict__ out, i64 outer, i64 axis_len, i64 inner,
                                                    i64 nidx, i32* err) {
  const i64 n = outer * nidx * inner;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    const i64 in_ = i % inner, j = (i / inner) % nidx, o = i / (inner * nidx);
    i64 k = idx[j];
    if (k < 0) k += axis_len;
    if (k < 0 || k >= axis_len) { if (err) *err = 1; out[i] = T(); continue; }
    out[i] = x[(o * axis_len + k) * inner + in_];
  }
}

template <class T>
__global__ void __launch_bounds__(256) gather_flat(const T* __restrict__ x, const i64* __restrict__ offsets,
                                                   T* __restrict__ out, i64 n, i64 x_numel, i32* err) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    const i64 k = offsets[i];
    if (k < 0 || k >= x_numel) { if (err) *err = 1; out[i] = T(); continue; }
    out[i] = x[k];
  }
}

// ---- atomic add for every scatter dtype ----
TS_DEV void atomic_add(f32* p, f32 v) { atomicAdd(p, v); }
TS_DEV void atomic_add(f64* p, f64 v) { atomicAdd(p, v); }  // native on sm_60+ and CDNA
TS_DEV void atomic_add(i32* p, i32 v) { atomicAdd(p, v); }
TS_DEV void atomic_add(i64* p, i64 v) {  // two's complement: unsigned add is the same bits
  atomicAdd(reinterpret_cast<u64*>(p), (u64)v);
}
TS_DEV u16 bits16(f16 v) { return __half_as_ushort(v); }
TS_DEV u16 bits16(bf16 v) { return v.bits; }
template <class T> TS_DEV T from_bits16(u16 b);
template <> TS_DEV f16 from_bits16<f16>(u16 b) { return __ushort_as_half(b); }
template <> TS_DEV bf16 from_bits16<bf16>(u16 b) { bf16 r; r.bits = b; return r; }

// 16-bit floats: compare-and-swap on the aligned 32-bit word holding the element,
// adding in f32 and rounding once per update (portable to every arch and to HIP).
// The neighbouring half of the word is rewritten unchanged; allocations are padded
// to at least 4 bytes, so the containing word is always inside the buffer.
template <class T> TS_DEV void atomic_add16(T* p, float v) {
  u32* word = reinterpret_cast<u32*>((u64)p & ~(u64)3);
  const bool high = ((u64)p & 2) != 0;
  u32 old = *word, assumed;
  do {
    assumed = old;
    const u16 cur = high ? (u16)(assumed >> 16) : (u16)(assumed & 0xffffu);
    const u16 upd = bits16(Scalar<T>::down(Scalar<T>::up(from_bits16<T>(cur)) + v));
    const u32 next = high ? ((assumed & 0x0000ffffu) | ((u32)upd << 16)) : ((assumed & 0xffff0000u) | upd);
    old = atomicCAS(word, assumed, next);
  } while (assumed != old);
}
TS_DEV void atomic_add(f16* p, f16 v) { atomic_add16(p, Scalar<f16>::up(v)); }
TS_DEV void atomic_add(bf16* p, bf16 v) { atomic_add16(p, Scalar<bf16>::up(v)); }

template <class T>
__global__ void __launch_bounds__(256) scatter_add_axis(T* dst, const i64* __restrict__ idx,
                                                        const T* __restrict__ src, i64 outer, i64 axis_len,
                                                        i64 inner, i64 nidx, i32* err) {
  const i64 n = outer * nidx * inner;
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    const i64 in_ = i % inner, j = (i / inner) % nidx, o = i / (inner * nidx);
    i64 k = idx[j];
    if (k < 0) k += axis_len;
    if (k < 0 || k >= axis_len) { if (err) *err = 1; continue; }
    atomic_add(dst + (o * axis_len + k) * inner + in_, src[i]);
  }
}

template <class T>
__global__ void __launch_bounds__(256) scatter_add_flat(T* dst, const i64* __restrict__ offsets,
                                                        const T* __restrict__ src, i64 n, i64 dst_numel,
                                                        i32* err) {
  for (i64 i = (i64)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (i64)gridDim.x * blockDim.x) {
    const i64 k = offsets[i];
    if (k < 0 || k >= dst_numel) { if (err) *err = 1; continue; }
    atomic_add(dst + k, src[i]);
  }
}
