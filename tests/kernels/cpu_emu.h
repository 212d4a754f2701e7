// cpu_emu.h -- runs tessera's CUDA kernels on CPU threads, for tests without a GPU.
//
// One std::thread per CUDA thread, blocks one after another; __shared__ becomes a
// function-static (shared by the block's threads, blocks never overlap);
// __syncthreads and warp shuffles are std::barrier rendezvous. Threads that return
// early drop out of the barriers, as exited threads do on the GPU. It checks kernel
// logic (indexing, tile edges, reductions, NaN rules), not performance or races
// that only a real memory model would expose. Include before the kernel sources.
#pragma once
#include <barrier>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#ifndef TS_CPU_EMU
#define TS_CPU_EMU 32
#endif
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(...)

struct dim3 { unsigned x = 1, y = 1, z = 1; };
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;

struct EmuBlock {
  std::unique_ptr<std::barrier<>> block_bar;
  std::vector<std::unique_ptr<std::barrier<>>> warp_bars;
  std::vector<unsigned long long> slots[2];
};
inline EmuBlock* g_blk = nullptr;
inline thread_local int t_linear = 0;
inline std::mutex g_atomic_mutex;

inline int emu_lane() { return t_linear % TS_CPU_EMU; }
inline void emu_syncwarp() { g_blk->warp_bars[t_linear / TS_CPU_EMU]->arrive_and_wait(); }
inline void __syncthreads() { g_blk->block_bar->arrive_and_wait(); }

template <class T> T emu_shfl(T v, int src) {
  static_assert(sizeof(T) <= 8, "shuffle of at most 8 bytes");
  const int w = t_linear / TS_CPU_EMU;
  std::memcpy(&g_blk->slots[0][t_linear], &v, sizeof(T));
  emu_syncwarp();
  T r;
  std::memcpy(&r, &g_blk->slots[0][w * TS_CPU_EMU + src], sizeof(T));
  emu_syncwarp();
  return r;
}

template <class K, class... Args>
void emu_launch(K kernel, dim3 grid, dim3 block, Args... args) {
  gridDim = grid;
  blockDim = block;
  const int n = block.x * block.y * block.z;
  for (unsigned bz = 0; bz < grid.z; bz++)
    for (unsigned by = 0; by < grid.y; by++)
      for (unsigned bx = 0; bx < grid.x; bx++) {
        EmuBlock blk;
        blk.block_bar = std::make_unique<std::barrier<>>(n);
        for (int w = 0; w < (n + TS_CPU_EMU - 1) / TS_CPU_EMU; w++)
          blk.warp_bars.push_back(std::make_unique<std::barrier<>>(std::min(TS_CPU_EMU, n - w * TS_CPU_EMU)));
        blk.slots[0].assign(n, 0);
        g_blk = &blk;
        std::vector<std::thread> ts;
        for (int t = 0; t < n; t++)
          ts.emplace_back([&, t] {
            t_linear = t;
            threadIdx = dim3{(unsigned)(t % block.x), (unsigned)((t / block.x) % block.y),
                             (unsigned)(t / (block.x * block.y))};
            blockIdx = dim3{bx, by, bz};
            kernel(args...);
            blk.block_bar->arrive_and_drop();
            blk.warp_bars[t / TS_CPU_EMU]->arrive_and_drop();
          });
        for (auto& th : ts) th.join();
      }
}

// ---- the device API the kernels use -------------------------------------------------
struct __half { unsigned short x; };
float __half2float(__half h);
__half __float2half_rn(float f);
inline unsigned short __half_as_ushort(__half h) { return h.x; }
inline __half __ushort_as_half(unsigned short b) { return __half{b}; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline float __frcp_rn(float v) { return 1.0f / v; }
inline double __drcp_rn(double v) { return 1.0 / v; }
inline float rsqrt(float v) { return 1.0f / std::sqrt(v); }
inline double rsqrt(double v) { return 1.0 / std::sqrt(v); }
using std::erf; using std::exp; using std::log; using std::sqrt;
template <class T> T atomicAdd(T* p, T v) { std::lock_guard<std::mutex> g(g_atomic_mutex); T o = *p; *p = o + v; return o; }
inline unsigned atomicCAS(unsigned* p, unsigned cmp, unsigned val) {
  std::lock_guard<std::mutex> g(g_atomic_mutex);
  unsigned o = *p;
  if (o == cmp) *p = val;
  return o;
}
