// emu_runtime.cpp -- the emulator's scheduler and state, compiled once into one
// library that every simulated kernel library uses (tessera/sim/rawmodule.py loads
// it first, with RTLD_GLOBAL): one pool of fiber stacks and one set of thread
// indices for the whole process, however many kernel libraries are loaded.
#define TS_EMU_RUNTIME 1
#include "emu.h"

extern "C" {
dim3 ts_emu_thread_idx, ts_emu_block_idx, ts_emu_block_dim, ts_emu_grid_dim;
char ts_emu_error_buf[512];
unsigned long long ts_emu_slots[1024];  // shuffle exchange, one per thread
}

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
static Fiber* g_fibers = nullptr;
static int g_nfibers = 0, g_capacity = 0, g_cur = 0;
static void* g_sched_sp = nullptr;
#if !defined(__x86_64__)
static ucontext_t g_sched_ctx;
#endif
static void (*g_body)(void*) = nullptr;
static void* g_body_ctx = nullptr;
static unsigned char* g_dyn_smem = nullptr;     // dynamic shared memory of the block
static size_t g_dyn_smem_bytes = 0;
static char* const g_error = ts_emu_error_buf;
static int g_warp = 32;

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

static void yield_to_scheduler() {
#if defined(__x86_64__)
  ts_emu_switch(&g_fibers[g_cur].sp, g_sched_sp);
#else
  swapcontext(&g_fibers[g_cur].ctx, &g_sched_ctx);
#endif
}

[[noreturn]] static void fiber_entry() {
  g_body(g_body_ctx);
  g_fibers[g_cur].state = DONE;
  yield_to_scheduler();
  __builtin_unreachable();
}

#if !defined(__x86_64__)
static void fiber_entry_uc() { fiber_entry(); }
#endif

// Stacks are pooled: a thread takes one when it first runs and gives it back
// when it exits, so in a kernel without barriers every thread runs on the same
// (cache-hot) stack, and a block that waits at a barrier holds one per thread.
static char** g_free_stacks = nullptr;
static int g_nfree = 0, g_free_cap = 0;

static char* take_stack() {
  if (g_nfree) return g_free_stacks[--g_nfree];
  // mmap'd with a guard page below, so a kernel overflowing its stack faults
  // instead of silently writing into a neighbour's.
  char* m = (char*)mmap(nullptr, STACK_BYTES + 4096, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) { fprintf(stderr, "[sim] cannot map a fiber stack\n"); abort(); }
  mprotect(m, 4096, PROT_NONE);
  return m + 4096;
}

static void give_stack(char* st) {
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

static void prepare(Fiber& f) {
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

static void resume(int t) {
  g_cur = t;
  ts_emu_thread_idx = g_fibers[t].tid;
  if (!g_fibers[t].started) prepare(g_fibers[t]);
#if defined(__x86_64__)
  ts_emu_switch(&g_sched_sp, g_fibers[t].sp);
#else
  swapcontext(&g_sched_ctx, &g_fibers[t].ctx);
#endif
}



// Direct mode: kernels the simulator knows to have no barriers (rawmodule.py
// decides from the source) run each thread as a plain call, no fiber. A
// barrier reached anyway is reported as an error, never silently skipped.
static bool g_direct = false;
static bool g_direct_fault = false;

static void direct_fault() {
  if (!g_direct_fault)
    snprintf(g_error, sizeof ts_emu_error_buf, "kernel reached a barrier in the simulator's direct mode "
             "(its source was judged barrier-free); set TESSERA_SIM_FIBERS=1 and report it");
  g_direct_fault = true;
}

static void block_barrier() {
  if (g_direct) return direct_fault();
  g_fibers[g_cur].state = AT_BLOCK_BAR;
  yield_to_scheduler();
}
static void warp_barrier() {
  if (g_direct) return direct_fault();
  g_fibers[g_cur].state = AT_WARP_BAR;
  yield_to_scheduler();
}

// Runs one block; false (and g_error set) on a deadlock.
static bool run_block(int n, const char* kernel) {
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
    for (int w0 = 0; w0 < n; w0 += g_warp) {
      int w1 = w0 + g_warp < n ? w0 + g_warp : n, waiting = 0, live = 0;
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
      snprintf(g_error, sizeof ts_emu_error_buf,
               "kernel %s deadlocked in block (%u,%u,%u): %d of %d live threads wait at "
               "__syncthreads, the others at a warp shuffle/__syncwarp (divergent barrier)",
               kernel, ts_emu_block_idx.x, ts_emu_block_idx.y, ts_emu_block_idx.z, at_block, n - done);
      return false;
    }
  }
}

static bool ensure_fibers(int n) {
  if (n <= g_capacity) return true;
  Fiber* f = new Fiber[n];
  delete[] g_fibers;
  g_fibers = f;
  g_capacity = g_nfibers = n;
  return true;
}

}  // namespace ts_emu

using namespace ts_emu;

extern "C" {
void ts_emu_block_barrier() { block_barrier(); }
void ts_emu_warp_barrier() { warp_barrier(); }
int ts_emu_current() { return g_cur; }
int ts_emu_lane() { return g_cur % g_warp; }
unsigned char* ts_emu_dynamic_smem() { return g_dyn_smem; }

// Runs `body(ctx)` once per thread of every block; 0, or -1 with the error set.
int ts_emu_run(const char* name, const unsigned* grid, const unsigned* block, unsigned long long dyn_smem,
               unsigned char* dyn_smem_buf, void (*body)(void*), void* ctx, int direct, int warp) {
  const int n = (int)(block[0] * block[1] * block[2]);
  ensure_fibers(n);
  g_nfibers = n;
  g_warp = warp;
  for (int t = 0; t < n; t++)
    g_fibers[t].tid = dim3(t % block[0], (t / block[0]) % block[1], t / (block[0] * block[1]));
  ts_emu_grid_dim = dim3(grid[0], grid[1], grid[2]);
  ts_emu_block_dim = dim3(block[0], block[1], block[2]);
  g_body = body;
  g_body_ctx = ctx;
  g_dyn_smem = dyn_smem_buf;
  g_dyn_smem_bytes = dyn_smem;
  g_direct = direct != 0;
  g_direct_fault = false;
  for (unsigned bz = 0; bz < grid[2]; bz++)
    for (unsigned by = 0; by < grid[1]; by++)
      for (unsigned bx = 0; bx < grid[0]; bx++) {
        ts_emu_block_idx = dim3(bx, by, bz);
        if (g_direct) {
          for (int t = 0; t < n; t++) {
            g_cur = t;
            ts_emu_thread_idx = g_fibers[t].tid;
            body(ctx);
          }
          if (g_direct_fault) return -1;
        } else if (!run_block(n, name)) {
          return -1;
        }
      }
  return 0;
}
}
