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

// ---- per-launch state (one launch at a time: the Python side holds a lock) ----
inline dim3 threadIdx, blockIdx, blockDim, gridDim;
constexpr int warpSize = TS_CPU_EMU;

namespace ts_emu {

enum State { RUNNABLE = 0, AT_BLOCK_BAR = 1, AT_WARP_BAR = 2, DONE = 3 };

struct Fiber {
  void* sp = nullptr;  // saved stack pointer (x86-64 switch)
#if !defined(__x86_64__)
  ucontext_t ctx;
#endif
  char* stack = nullptr;  // taken from the pool when the thread first runs
  State state = RUNNABLE;
  bool started = false;
  dim3 tid;
};

constexpr size_t STACK_BYTES = 128 * 1024;
inline Fiber* g_fibers = nullptr;
inline int g_nfibers = 0, g_capacity = 0, g_cur = 0;
inline void* g_sched_sp = nullptr;
#if !defined(__x86_64__)
inline ucontext_t g_sched_ctx;
#endif
inline void (*g_body)(void*) = nullptr;
inline void* g_body_ctx = nullptr;
inline unsigned long long g_slots[1024];       // shuffle exchange, one per thread
inline unsigned char* g_dyn_smem = nullptr;     // dynamic shared memory of the block
inline size_t g_dyn_smem_bytes = 0;
inline char g_error[512];

#if defined(__x86_64__)
extern "C" void ts_emu_switch(void** save_sp, void* load_sp);
asm(R"(
.text
.p2align 4
.hidden ts_emu_switch
.globl ts_emu_switch
.type ts_emu_switch,@function
ts_emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
.size ts_emu_switch, .-ts_emu_switch
)");
#endif

inline void yield_to_scheduler() {
#if defined(__x86_64__)
  ts_emu_switch(&g_fibers[g_cur].sp, g_sched_sp);
#else
  swapcontext(&g_fibers[g_cur].ctx, &g_sched_ctx);
#endif
}

[[noreturn]] inline void fiber_entry() {
  g_body(g_body_ctx);
  g_fibers[g_cur].state = DONE;
  yield_to_scheduler();
  __builtin_unreachable();
}

#if !defined(__x86_64__)
inline void fiber_entry_uc() { fiber_entry(); }
#endif

// Stacks are pooled: a thread takes one when it first runs and gives it back
// when it exits, so in a kernel without barriers every thread runs on the same
// (cache-hot) stack, and a block that waits at a barrier holds one per thread.
inline char** g_free_stacks = nullptr;
inline int g_nfree = 0, g_free_cap = 0;

inline char* take_stack() {
  if (g_nfree) return g_free_stacks[--g_nfree];
  // mmap'd with a guard page below, so a kernel overflowing its stack faults
  // instead of silently writing into a neighbour's.
  char* m = (char*)mmap(nullptr, STACK_BYTES + 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { fprintf(stderr, "[sim] cannot map a fiber stack\n"); abort(); }
  mprotect(m, 4096, PROT_NONE);
  return m + 4096;
}

inline void give_stack(char* st) {
  if (g_nfree == g_free_cap) {
    int cap = g_free_cap ? 2 * g_free_cap : 64;
    char** n = new char*[cap];
    for (int i = 0; i < g_nfree; i++) n[i] = g_free_stacks[i];
    delete[] g_free_stacks;
    g_free_stacks = n;
    g_free_cap = cap;
  }
  g_free_stacks[g_nfree++] = st;
}

inline void prepare(Fiber& f) {
  f.stack = take_stack();
  f.started = true;
#if defined(__x86_64__)
  // Layout for the first switch: six callee-saved registers, then the
  // "return address" fiber_entry, placed so that rsp % 16 == 8 at its entry.
  uintptr_t top = ((uintptr_t)(f.stack + STACK_BYTES)) & ~(uintptr_t)15;
  void** sp = (void**)(top - 16);
  sp[0] = (void*)&fiber_entry;
  sp -= 6;
  for (int i = 0; i < 6; i++) sp[i] = nullptr;
  f.sp = sp;
#else
  getcontext(&f.ctx);
  f.ctx.uc_stack.ss_sp = f.stack;
  f.ctx.uc_stack.ss_size = STACK_BYTES;
  f.ctx.uc_link = nullptr;
  makecontext(&f.ctx, (void (*)())fiber_entry_uc, 0);
#endif
}

inline void resume(int t) {
  g_cur = t;
  threadIdx = g_fibers[t].tid;
  if (!g_fibers[t].started) prepare(g_fibers[t]);
#if defined(__x86_64__)
  ts_emu_switch(&g_sched_sp, g_fibers[t].sp);
#else
  swapcontext(&g_sched_ctx, &g_fibers[t].ctx);
#endif
}

inline int lane() { return g_cur % TS_CPU_EMU; }

// Direct mode: kernels the simulator knows to have no barriers (rawmodule.py
// decides from the source) run each thread as a plain call, no fiber. A
// barrier reached anyway is reported as an error, never silently skipped.
inline bool g_direct = false;
inline bool g_direct_fault = false;

inline void direct_fault() {
  if (!g_direct_fault)
    snprintf(g_error, sizeof g_error, "kernel reached a barrier in the simulator's direct mode "
             "(its source was judged barrier-free); set TESSERA_SIM_FIBERS=1 and report it");
  g_direct_fault = true;
}

inline void block_barrier() {
  if (g_direct) return direct_fault();
  g_fibers[g_cur].state = AT_BLOCK_BAR;
  yield_to_scheduler();
}
inline void warp_barrier() {
  if (g_direct) return direct_fault();
  g_fibers[g_cur].state = AT_WARP_BAR;
  yield_to_scheduler();
}

// Runs one block; false (and g_error set) on a deadlock.
inline bool run_block(int n, const char* kernel) {
  for (int t = 0; t < n; t++) {
    g_fibers[t].state = RUNNABLE;
    g_fibers[t].started = false;
  }
  int done = 0;
  for (;;) {
    bool ran = false;
    for (int t = 0; t < n; t++)
      if (g_fibers[t].state == RUNNABLE) {
        ran = true;
        resume(t);
        if (g_fibers[t].state == DONE) {
          done++;
          give_stack(g_fibers[t].stack);
          g_fibers[t].stack = nullptr;
        }
      }
    if (done == n) return true;
    // release warp barriers whose live lanes have all arrived
    bool released = false;
    for (int w0 = 0; w0 < n; w0 += TS_CPU_EMU) {
      int w1 = w0 + TS_CPU_EMU < n ? w0 + TS_CPU_EMU : n, waiting = 0, live = 0;
      for (int t = w0; t < w1; t++) {
        if (g_fibers[t].state != DONE) live++;
        if (g_fibers[t].state == AT_WARP_BAR) waiting++;
      }
      if (waiting && waiting == live) {
        for (int t = w0; t < w1; t++)
          if (g_fibers[t].state == AT_WARP_BAR) g_fibers[t].state = RUNNABLE;
        released = true;
      }
    }
    if (released) continue;
    int at_block = 0;
    for (int t = 0; t < n; t++) at_block += g_fibers[t].state == AT_BLOCK_BAR;
    if (at_block && at_block == n - done) {
      for (int t = 0; t < n; t++)
        if (g_fibers[t].state == AT_BLOCK_BAR) g_fibers[t].state = RUNNABLE;
      continue;
    }
    if (!ran) {
      for (int t = 0; t < n; t++)  // the stuck threads' stacks go back to the pool
        if (g_fibers[t].stack) { give_stack(g_fibers[t].stack); g_fibers[t].stack = nullptr; }
      snprintf(g_error, sizeof g_error,
               "kernel %s deadlocked in block (%u,%u,%u): %d of %d live threads wait at "
               "__syncthreads, the others at a warp shuffle/__syncwarp (divergent barrier)",
               kernel, blockIdx.x, blockIdx.y, blockIdx.z, at_block, n - done);
      return false;
    }
  }
}

inline bool ensure_fibers(int n) {
  if (n <= g_capacity) return true;
  Fiber* f = new Fiber[n];
  delete[] g_fibers;
  g_fibers = f;
  g_capacity = g_nfibers = n;
  return true;
}

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
    snprintf(g_error, sizeof g_error,
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

// The entry every generated wrapper calls. Returns 0, or -1 with g_error set.
template <class... P>
inline int launch(void (*kernel)(P...), const char* name, const unsigned* grid, const unsigned* block,
                  unsigned long long dyn_smem, unsigned char* dyn_smem_buf, int nargs, void** argv,
                  const long* sizes, const int* kinds, bool direct) {
  g_direct = direct;
  constexpr int N = sizeof...(P);
  if (nargs != N) {
    snprintf(g_error, sizeof g_error, "kernel %s takes %d arguments, the launch passed %d", name, N, nargs);
    return -1;
  }
  if (!args_ok<P...>(std::index_sequence_for<P...>{}, sizes, kinds, name)) return -1;
  Call<P...> call{kernel, {}};
  {
    size_t i = 0;
    std::apply([&](auto&... a) { ((a = read_arg<std::decay_t<decltype(a)>>(argv[i++])), ...); }, call.args);
  }
  const int n = (int)(block[0] * block[1] * block[2]);
  ensure_fibers(n);
  g_nfibers = n;
  for (int t = 0; t < n; t++)
    g_fibers[t].tid = dim3(t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1]));
  gridDim = dim3(grid[0], grid[1], grid[2]);
  blockDim = dim3(block[0], block[1], block[2]);
  g_body = &Call<P...>::body;
  g_body_ctx = &call;
  g_dyn_smem = dyn_smem_buf;
  g_dyn_smem_bytes = dyn_smem;
  g_direct_fault = false;
  for (unsigned bz = 0; bz < grid[2]; bz++)
    for (unsigned by = 0; by < grid[1]; by++)
      for (unsigned bx = 0; bx < grid[0]; bx++) {
        blockIdx = dim3(bx, by, bz);
        if (g_direct) {
          for (int t = 0; t < n; t++) {
            g_cur = t;
            threadIdx = g_fibers[t].tid;
            Call<P...>::body(&call);
          }
          if (g_direct_fault) return -1;
        } else if (!run_block(n, name)) {
          return -1;
        }
      }
  return 0;
}

}  // namespace ts_emu

// ---- the device API -------------------------------------------------------------------
inline void __syncthreads() { ts_emu::block_barrier(); }
inline int __syncthreads_or(int p) {  // used by nothing yet; kept exact for completeness
  static int acc;
  ts_emu::block_barrier();
  acc = 0;
  ts_emu::block_barrier();
  if (p) acc = 1;
  ts_emu::block_barrier();
  return acc;
}
inline void __syncwarp(unsigned = 0xffffffffu) { ts_emu::warp_barrier(); }
inline void __threadfence() {}
inline void __threadfence_block() {}
inline int emu_lane() { return ts_emu::lane(); }
inline void emu_syncwarp() { ts_emu::warp_barrier(); }
inline unsigned char* ts_emu_dynamic_smem() { return ts_emu::g_dyn_smem; }

template <class T>
inline T emu_shfl(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  const int w0 = ts_emu::g_cur - ts_emu::lane();
  std::memcpy(&ts_emu::g_slots[ts_emu::g_cur], &v, sizeof(T));
  ts_emu::warp_barrier();
  T r;
  int s = ((src % TS_CPU_EMU) + TS_CPU_EMU) % TS_CPU_EMU;  // hardware wraps the lane index
  std::memcpy(&r, &ts_emu::g_slots[w0 + s], sizeof(T));
  ts_emu::warp_barrier();
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

// ---- wmma: every lane keeps the whole fragment, so the collective calls are
// plain loops (the values match the hardware; the lane layout is not modelled). ----
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
  for (int r = 0; r < M; r++)
    for (int c = 0; c < N; c++) (l == mem_col_major ? p[c * ldm + r] : p[r * ldm + c]) = f.x[r * N + c];
}
template <int M, int N, int K, class A, class LA, class LB, class Acc>
inline void mma_sync(fragment<accumulator, M, N, K, Acc, void>& d, const fragment<matrix_a, M, N, K, A, LA>& a,
                     const fragment<matrix_b, M, N, K, A, LB>& b, const fragment<accumulator, M, N, K, Acc, void>& c) {
  Acc out[M * N];
  for (int i = 0; i < M; i++)
    for (int j = 0; j < N; j++) {
      float s = 0.0f;  // the tensor core's fp32 accumulation of exact fp16/bf16 products
      for (int k = 0; k < K; k++) s += emu_to_float(a.x[i * K + k]) * emu_to_float(b.x[k * N + j]);
      out[i * N + j] = c.x[i * N + j] + s;
    }
  for (int i = 0; i < M * N; i++) d.x[i] = out[i];
}
}  // namespace wmma
}  // namespace nvcuda
