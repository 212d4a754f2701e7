// emu.h -- runs tessera's CUDA/HIP kernels on one CPU thread, for the simulated GPU.
//
// Owns the device API the kernels use, written for the CPU: thread and block
// indices, __shared__ memory, __syncthreads, warp shuffles and __syncwarp,
// atomics, fp16/bf16 types and conversions, the wmma fragment API, and the
// launch loop that tessera/sim/rawmodule.py calls through extern "C" entries.
//
// Every CUDA thread of a block is a fiber (a stack and a saved register set)
// on the calling OS thread; blocks run one after another, so __shared__ can
// be a function-static and a launch needs no locks. A fiber runs until it
// exits or reaches a barrier; the scheduler releases a barrier when every
// live thread of the block (of the warp, for shuffles) has reached it, and a
// barrier that can never be released (divergent __syncthreads) is reported as
// a deadlock naming the kernel instead of hanging. Switching costs tens of
// nanoseconds (a hand-written x86-64 switch; ucontext elsewhere).
//
// It checks kernel logic (indices, tile edges, reductions, NaN rules, argument
// types, launch limits), not timing or the races of a real memory model.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <type_traits>
#include <utility>
#if !defined(__x86_64__)
#include <ucontext.h>
#endif

#ifndef TS_CPU_EMU
#define TS_CPU_EMU 32
#endif
#define __global__
#define __device__
#define __host__
#define __noinline__
#define __forceinline__ inline
#define __shared__ static
#define __constant__ static
#define __launch_bounds__(...)
#define __align__(n) alignas(n)

struct dim3 {
  unsigned x, y, z;
  constexpr dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
typedef dim3 uint3;

// CUDA's vector types (16-byte loads), with the hardware's alignment
struct alignas(8) int2 { int x, y; };
struct alignas(16) int4 { int x, y, z, w; };
struct alignas(8) uint2 { unsigned x, y; };
struct alignas(16) uint4 { unsigned x, y, z, w; };
struct alignas(8) float2 { float x, y; };
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) double2 { double x, y; };
inline int4 make_int4(int x, int y, int z, int w) { return int4{x, y, z, w}; }
inline uint4 make_uint4(unsigned x, unsigned y, unsigned z, unsigned w) { return uint4{x, y, z, w}; }
inline float4 make_float4(float x, float y, float z, float w) { return float4{x, y, z, w}; }
inline int2 make_int2(int x, int y) { return int2{x, y}; }
inline uint2 make_uint2(unsigned x, unsigned y) { return uint2{x, y}; }
inline float2 make_float2(float x, float y) { return float2{x, y}; }

// ---- the emulator runtime (emu_runtime.cpp, one library per process) ----
extern "C" {
extern dim3 ts_emu_thread_idx, ts_emu_block_idx, ts_emu_block_dim, ts_emu_grid_dim;
extern char ts_emu_error_buf[512];
extern unsigned long long ts_emu_slots[1024];
void ts_emu_block_barrier();
void ts_emu_warp_barrier();
int ts_emu_current();
int ts_emu_lane();
unsigned char* ts_emu_dynamic_smem();
int ts_emu_run(const char* name, const unsigned* grid, const unsigned* block, unsigned long long dyn_smem,
               unsigned char* dyn_smem_buf, void (*body)(void*), void* ctx, int direct, int warp);
}
#if !defined(TS_EMU_RUNTIME)
static dim3& threadIdx = ts_emu_thread_idx;
static dim3& blockIdx = ts_emu_block_idx;
static dim3& blockDim = ts_emu_block_dim;
static dim3& gridDim = ts_emu_grid_dim;
#endif
constexpr int warpSize = TS_CPU_EMU;

namespace ts_emu {
static char* const g_error_buf = ts_emu_error_buf;

// Argument kinds as rawmodule.py packs them (CuPy's rules: arrays are
// pointers, Python ints int64, floats float64, NumPy scalars their own type).
enum Kind { K_POINTER = 0, K_SIGNED = 1, K_UNSIGNED = 2, K_FLOAT = 3, K_BOOL = 4 };

template <class P>
inline bool arg_ok(int i, long size, int kind, const char* kernel) {
  const char* want;
  bool ok;
  if constexpr (std::is_pointer_v<P>) {
    want = "a pointer (an array)";
    ok = kind == K_POINTER || (kind == K_UNSIGNED && size == 8);  // uint64 0: a null pointer
  } else if constexpr (std::is_floating_point_v<P>) {
    want = sizeof(P) == 8 ? "a double (numpy.float64)" : "a float (numpy.float32)";
    ok = kind == K_FLOAT && size == (long)sizeof(P);
  } else if constexpr (std::is_same_v<P, bool>) {
    want = "a bool (numpy.bool_)";
    ok = (kind == K_BOOL || kind == K_SIGNED || kind == K_UNSIGNED) && size == 1;
  } else if constexpr (std::is_integral_v<P>) {
    static const char* names[] = {"", "an 8-bit integer", "a 16-bit integer", "", "a 32-bit integer",
                                  "", "", "", "a 64-bit integer (numpy.int64)"};
    want = names[sizeof(P)];
    ok = (kind == K_SIGNED || kind == K_UNSIGNED || kind == K_BOOL) && size == (long)sizeof(P);
  } else {
    want = "a struct of that size";
    ok = kind != K_POINTER && size == (long)sizeof(P);
  }
  if (!ok) {
    static const char* kinds[] = {"an array pointer", "a signed integer", "an unsigned integer",
                                  "a float", "a bool"};
    snprintf(g_error_buf, 512,
             "kernel %s: argument %d is %s of %ld bytes, the kernel's parameter wants %s (%zu bytes)",
             kernel, i, kind >= 0 && kind <= 4 ? kinds[kind] : "?", size, want, sizeof(P));
  }
  return ok;
}

template <class... P, size_t... I>
inline bool args_ok(std::index_sequence<I...>, const long* sizes, const int* kinds, const char* kernel) {
  return (arg_ok<P>((int)I, sizes[I], kinds[I], kernel) && ...);
}

template <class... P>
struct Call {
  void (*kernel)(P...);
  std::tuple<std::decay_t<P>...> args;
  static void body(void* self) {
    Call* c = (Call*)self;
    std::apply(c->kernel, c->args);
  }
};

template <class T>
inline T read_arg(void* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// The entry every generated wrapper calls. Returns 0, or -1 with the error set.
template <class... P>
inline int launch(void (*kernel)(P...), const char* name, const unsigned* grid, const unsigned* block,
                  unsigned long long dyn_smem, unsigned char* dyn_smem_buf, int nargs, void** argv,
                  const long* sizes, const int* kinds, bool direct) {
  constexpr int N = sizeof...(P);
  if (nargs != N) {
    snprintf(g_error_buf, 512, "kernel %s takes %d arguments, the launch passed %d", name, N, nargs);
    return -1;
  }
  if (!args_ok<P...>(std::index_sequence_for<P...>{}, sizes, kinds, name)) return -1;
  Call<P...> call{kernel, {}};
  {
    size_t i = 0;
    std::apply([&](auto&... a) { ((a = read_arg<std::decay_t<decltype(a)>>(argv[i++])), ...); }, call.args);
  }
  return ts_emu_run(name, grid, block, dyn_smem, dyn_smem_buf, &Call<P...>::body, &call, direct, TS_CPU_EMU);
}

}  // namespace ts_emu

// ---- the device API -------------------------------------------------------------------
inline void __syncthreads() { ts_emu_block_barrier(); }
inline int __syncthreads_or(int p) {  // used by nothing yet; kept exact for completeness
  static int acc;
  ts_emu_block_barrier();
  acc = 0;
  ts_emu_block_barrier();
  if (p) acc = 1;
  ts_emu_block_barrier();
  return acc;
}
inline void __syncwarp(unsigned = 0xffffffffu) { ts_emu_warp_barrier(); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline int emu_lane() { return ts_emu_lane(); }
inline void emu_syncwarp() { ts_emu_warp_barrier(); }

template <class T>
inline T emu_shfl(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  const int cur = ts_emu_current(), w0 = cur - ts_emu_lane();
  std::memcpy(&ts_emu_slots[cur], &v, sizeof(T));
  ts_emu_warp_barrier();
  T r;
  int s = ((src % TS_CPU_EMU) + TS_CPU_EMU) % TS_CPU_EMU;  // hardware wraps the lane index
  std::memcpy(&r, &ts_emu_slots[w0 + s], sizeof(T));
  ts_emu_warp_barrier();
  return r;
}
template <class T> inline T __shfl_sync(unsigned, T v, int src, int = TS_CPU_EMU) { return emu_shfl(v, src); }
template <class T> inline T __shfl_xor_sync(unsigned, T v, int m, int = TS_CPU_EMU) { return emu_shfl(v, emu_lane() ^ m); }
template <class T> inline T __shfl_up_sync(unsigned, T v, int d, int = TS_CPU_EMU) {
  int l = emu_lane();
  return emu_shfl(v, l >= d ? l - d : l);
}
template <class T> inline T __shfl_down_sync(unsigned, T v, int d, int = TS_CPU_EMU) {
  int l = emu_lane();
  return emu_shfl(v, l + d < TS_CPU_EMU ? l + d : l);
}

// ---- fp16 / bf16 storage types and conversions (round to nearest even) ----
struct __half { unsigned short x; };
struct __nv_bfloat16 { unsigned short x; };
inline float emu_half_to_float(unsigned short h) {
  unsigned s = (unsigned)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, b;
  if (e == 0x1f) b = s | 0x7f800000u | (m << 13);
  else if (e) b = s | ((e + 112) << 23) | (m << 13);
  else if (!m) b = s;
  else {
    int ex = 113;
    while (!(m & 0x400)) { m <<= 1; ex--; }
    b = s | ((unsigned)ex << 23) | ((m & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &b, 4);
  return f;
}
inline unsigned short emu_float_to_half(float f) {
  unsigned b;
  std::memcpy(&b, &f, 4);
  unsigned s = (b >> 16) & 0x8000u, a = b & 0x7fffffffu;
  if (a > 0x7f800000u) { unsigned m = 0x7c00u | ((a & 0x7fffffu) >> 13); return (unsigned short)(s | (m == 0x7c00u ? 0x7c01u : m)); }
  if (a >= 0x477ff000u) return (unsigned short)(s | 0x7c00u);  // rounds to >= 65520: inf
  if (a < 0x38800000u) {  // subnormal half (or zero)
    int e = (int)(a >> 23);
    if (e < 102) return (unsigned short)s;
    unsigned m = (a & 0x7fffffu) | 0x800000u, shift = (unsigned)(126 - e);
    unsigned q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
    if (rem > half || (rem == half && (q & 1))) q++;
    return (unsigned short)(s | q);
  }
  unsigned q = ((a - 0x38000000u) >> 13), rem = a & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (q & 1))) q++;
  return (unsigned short)(s | q);
}
inline float __half2float(__half h) { return emu_half_to_float(h.x); }
inline __half __float2half_rn(float f) { return __half{emu_float_to_half(f)}; }
inline __half __float2half(float f) { return __float2half_rn(f); }
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline float __bfloat162float(__nv_bfloat16 h) { unsigned b = (unsigned)h.x << 16; float f; std::memcpy(&f, &b, 4); return f; }
inline float emu_to_float(__half h) { return __half2float(h); }
inline float emu_to_float(__nv_bfloat16 h) { return __bfloat162float(h); }
inline float emu_to_float(float v) { return v; }
inline int emu_to_float(signed char v) { return v; }

// ---- bit casts, fast math, integer intrinsics ----
template <class To, class From> inline To emu_bitcast(From v) { To t; std::memcpy(&t, &v, sizeof(To)); return t; }
inline float __int_as_float(int i) { return emu_bitcast<float>(i); }
inline float __uint_as_float(unsigned i) { return emu_bitcast<float>(i); }
inline int __float_as_int(float f) { return emu_bitcast<int>(f); }
inline unsigned __float_as_uint(float f) { return emu_bitcast<unsigned>(f); }
inline double __longlong_as_double(long long i) { return emu_bitcast<double>(i); }
inline long long __double_as_longlong(double d) { return emu_bitcast<long long>(d); }
inline float __frcp_rn(float v) { return 1.0f / v; }
inline double __drcp_rn(double v) { return 1.0 / v; }
inline float __fdividef(float a, float b) { return a / b; }
inline float __expf(float v) { return expf(v); }
inline float __logf(float v) { return logf(v); }
inline float rsqrtf(float v) { return 1.0f / sqrtf(v); }
inline float rsqrt(float v) { return 1.0f / sqrtf(v); }
inline double rsqrt(double v) { return 1.0 / sqrt(v); }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
inline int __popcll(unsigned long long v) { return __builtin_popcountll(v); }
inline int __clz(int v) { return v ? __builtin_clz((unsigned)v) : 32; }
inline int __clzll(long long v) { return v ? __builtin_clzll((unsigned long long)v) : 64; }
inline int __ffs(int v) { return __builtin_ffs(v); }
inline int __dp4a(int a, int b, int c) {
  for (int i = 0; i < 4; i++) c += (int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i));
  return c;
}
template <class T> inline T __ldg(const T* p) { return *p; }
using std::erf; using std::exp; using std::log; using std::sqrt;
template <class A, class B> inline auto min(A a, B b) -> std::common_type_t<A, B> { return b < a ? b : a; }
template <class A, class B> inline auto max(A a, B b) -> std::common_type_t<A, B> { return a < b ? b : a; }

// Atomics: one OS thread runs every fiber and fibers switch only at barriers,
// so a read-modify-write is already atomic.
template <class T> inline T atomicAdd(T* p, T v) { T o = *p; *p = o + v; return o; }
template <class T> inline T atomicMax(T* p, T v) { T o = *p; if (o < v) *p = v; return o; }
template <class T> inline T atomicMin(T* p, T v) { T o = *p; if (v < o) *p = v; return o; }
template <class T> inline T atomicExch(T* p, T v) { T o = *p; *p = v; return o; }
template <class T> inline T atomicCAS(T* p, T cmp, T val) { T o = *p; if (o == cmp) *p = val; return o; }

// ---- wmma: every lane loads whole A/B fragments; of an accumulator each lane
// computes and stores the elements i with i % 32 == its lane (as the hardware
// spreads them over the warp, though not in its layout), so a warp does one
// 16x16x16 product's work, not 32. The values match the hardware's. ----
namespace nvcuda {
namespace wmma {
struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };
template <class Use, int M, int N, int K> struct frag_dims;
template <int M, int N, int K> struct frag_dims<matrix_a, M, N, K> { static constexpr int R = M, C = K; };
template <int M, int N, int K> struct frag_dims<matrix_b, M, N, K> { static constexpr int R = K, C = N; };
template <int M, int N, int K> struct frag_dims<accumulator, M, N, K> { static constexpr int R = M, C = N; };
template <class Use, int M, int N, int K, class T, class Layout = void>
struct fragment {
  static constexpr int R = frag_dims<Use, M, N, K>::R, C = frag_dims<Use, M, N, K>::C;
  static constexpr int num_elements = R * C;
  T x[R * C];
};
template <class Use, int M, int N, int K, class T, class L, class V>
inline void fill_fragment(fragment<Use, M, N, K, T, L>& f, V v) {
  for (int i = 0; i < f.num_elements; i++) f.x[i] = (T)v;
}
template <class Use, int M, int N, int K, class T, class L, class S>
inline void load_matrix_sync(fragment<Use, M, N, K, T, L>& f, const S* p, unsigned ldm) {
  constexpr bool col = std::is_same_v<L, col_major>;
  for (int r = 0; r < f.R; r++)
    for (int c = 0; c < f.C; c++) f.x[r * f.C + c] = col ? p[c * ldm + r] : p[r * ldm + c];
}
template <int M, int N, int K, class T>
inline void store_matrix_sync(T* p, const fragment<accumulator, M, N, K, T, void>& f, unsigned ldm, layout_t l) {
  for (int e = ts_emu_lane(); e < M * N; e += TS_CPU_EMU) {
    const int r = e / N, c = e % N;
    (l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[e];
  }
}
template <int M, int N, int K, class A, class LA, class LB, class Acc>
inline void mma_sync(fragment<accumulator, M, N, K, Acc, void>& d, const fragment<matrix_a, M, N, K, A, LA>& a,
                     const fragment<matrix_b, M, N, K, A, LB>& b, const fragment<accumulator, M, N, K, Acc, void>& c) {
  for (int e = ts_emu_lane(); e < M * N; e += TS_CPU_EMU) {
    const int i = e / N, j = e % N;
    float s = 0.0f;  // the tensor core's fp32 accumulation of exact fp16/bf16 products
    for (int k = 0; k < K; k++) s += emu_to_float(a.x[i * K + k]) * emu_to_float(b.x[k * N + j]);
    d.x[e] = c.x[e] + s;  // d may be c: each element is read before it is written
  }
}
}  // namespace wmma
}  // namespace nvcuda
