// emu_harness.cpp -- runs tessera's kernels under cpu_emu.h on fixed awkward shapes and
// dumps inputs and outputs (raw little-endian arrays) for test_cpu_emulation.py to
// compare against NumPy. Launch geometry mirrors launchers/geometry.py.
#include "cpu_emu.h"
#include <cstdio>
#include <random>
#include <string>
#include "reduce.cu"
#include "softmax.cu"
#include "layernorm.cu"
#include "cross_entropy.cu"
#include "scan.cu"
#include "transpose.cu"
#include "gather.cu"
#include "matmul.cu"

float __half2float(__half h) { return half_bits_to_float(h.x); }
__half __float2half_rn(float f) { return __half{float_to_half_bits(f)}; }

static std::string g_dir;
template <class T> void dump(const std::string& name, const std::vector<T>& v) {
  FILE* f = fopen((g_dir + "/" + name + ".bin").c_str(), "wb");
  fwrite(v.data(), sizeof(T), v.size(), f);
  fclose(f);
}
static std::mt19937 rng(1234);
template <class T> std::vector<T> uniform(size_t n, double lo = -2, double hi = 2) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto& x : v) x = (T)d(rng);
  return v;
}
static unsigned cdiv(long long a, long long b) { return (unsigned)((a + b - 1) / b); }
static dim3 rows_grid(long long rows, long long cols, dim3* block) {  // geometry.rows_geometry
  if (cols <= 2048) { *block = dim3{TS_CPU_EMU, 256 / TS_CPU_EMU, 1}; return dim3{cdiv(rows, 256 / TS_CPU_EMU), 1, 1}; }
  *block = dim3{256, 1, 1};
  return dim3{(unsigned)rows, 1, 1};
}

template <class Op, class In, class Out>
void run_rows(const char* name, std::vector<In> x, long long rows, long long cols, double ddof = 0) {
  std::vector<Out> out(rows);
  dim3 b, g = rows_grid(rows, cols, &b);
  emu_launch(reduce_rows<Op, In, Out>, g, b, (const In*)x.data(), out.data(), rows, cols, ddof);
  dump(std::string(name) + ".x", x); dump(std::string(name) + ".out", out);
}
template <class Op, class In, class Out>
void run_cols(const char* name, std::vector<In> x, long long outer, long long R, long long inner) {
  std::vector<Out> out(outer * inner);
  emu_launch(reduce_cols<Op, In, Out>, dim3{cdiv(inner, 32), (unsigned)outer, 1}, dim3{32, 8, 1},
             (const In*)x.data(), out.data(), outer, R, inner, 0.0);
  dump(std::string(name) + ".x", x); dump(std::string(name) + ".out", out);
}

int main(int argc, char** argv) {
  g_dir = argv[1];
  const float nan = std::nanf(""), inf = INFINITY;
  // ---- reductions: warp-per-row and block-per-row, rows and cols layouts ----
  run_rows<SumOp<f32>, f32, f32>("sum_rows_warp", uniform<f32>(37 * 100), 37, 100);
  run_rows<SumOp<f32>, f32, f32>("sum_rows_block", uniform<f32>(5 * 2500), 5, 2500);
  run_rows<VarOp<f64>, f64, f64>("var_rows", uniform<f64>(7 * 3001), 7, 3001, 1.0);
  run_rows<LogSumExpOp<f32>, f32, f32>("lse_rows", uniform<f32>(9 * 33, -20, 20), 9, 33);
  run_rows<SumOp<i64>, i32, i64>("isum_rows", std::vector<i32>(3 * 4097, 3), 3, 4097);
  std::vector<f32> am = {1, 3, 3, nan, 2, nan, 5, 5, 1, 5, -inf, 0, -inf, -inf, -inf, -inf, -inf, -inf};
  run_rows<ArgMaxOp<f32>, f32, i64>("argmax_rows", am, 3, 6);
  run_rows<ArgMinOp<f32>, f32, i64>("argmin_rows", am, 3, 6);
  run_rows<MaxOp<f32>, f32, f32>("max_rows", am, 3, 6);
  run_rows<LogSumExpOp<f32>, f32, f32>("lse_special", am, 3, 6);
  auto big = uniform<f32>(2 * 3000);
  big[1234] = nan;
  run_rows<ArgMaxOp<f32>, f32, i64>("argmax_long", big, 2, 3000);
  run_cols<SumOp<f32>, f32, f32>("sum_cols", uniform<f32>(3 * 77 * 45), 3, 77, 45);
  run_cols<ArgMinOp<f32>, f32, i64>("argmin_cols", uniform<f32>(1 * 50 * 33), 1, 50, 33);
  run_cols<StdOp<f32>, f32, f32>("std_cols", uniform<f32>(2 * 19 * 40), 2, 19, 40);

  // ---- softmax ----
  {
    long long R = 33, C = 70;
    auto x = uniform<f32>(R * C, -5, 5), dy = uniform<f32>(R * C);
    std::vector<f32> y(R * C), ly(R * C), dx(R * C), ldx(R * C);
    dim3 b, g = rows_grid(R, C, &b);
    emu_launch(softmax_fwd<f32, false>, g, b, (const f32*)x.data(), y.data(), R, C);
    emu_launch(softmax_fwd<f32, true>, g, b, (const f32*)x.data(), ly.data(), R, C);
    emu_launch(softmax_bwd<f32, false>, g, b, (const f32*)y.data(), (const f32*)dy.data(), dx.data(), R, C);
    emu_launch(softmax_bwd<f32, true>, g, b, (const f32*)ly.data(), (const f32*)dy.data(), ldx.data(), R, C);
    dump("sm.x", x); dump("sm.dy", dy); dump("sm.y", y); dump("sm.ly", ly); dump("sm.dx", dx); dump("sm.ldx", ldx);
  }
  // ---- layer norm (block per row: cols > 2048) ----
  {
    long long R = 20, C = 2100;
    auto x = uniform<f32>(R * C), g = uniform<f32>(C), bt = uniform<f32>(C), dy = uniform<f32>(R * C);
    std::vector<f32> y(R * C), mean(R), rstd(R), dx(R * C);
    dim3 b, gr = rows_grid(R, C, &b);
    emu_launch(layer_norm_fwd<f32>, gr, b, (const f32*)x.data(), (const f32*)g.data(), (const f32*)bt.data(),
               y.data(), mean.data(), rstd.data(), R, C, 1e-5);
    emu_launch(layer_norm_bwd_dx<f32>, gr, b, (const f32*)x.data(), (const f32*)dy.data(), (const f32*)g.data(),
               (const f32*)mean.data(), (const f32*)rstd.data(), dx.data(), R, C);
    long long rpc = 16, chunks = cdiv(R, rpc);
    std::vector<f32> pg(chunks * C), pb(chunks * C), dg(C), db(C);
    emu_launch(layer_norm_bwd_params<f32>, dim3{cdiv(C, 32), (unsigned)chunks, 1}, dim3{32, 8, 1},
               (const f32*)x.data(), (const f32*)dy.data(), (const f32*)mean.data(), (const f32*)rstd.data(),
               pg.data(), pb.data(), R, C, rpc);
    emu_launch(reduce_cols<SumOp<f32>, f32, f32>, dim3{cdiv(C, 32), 1, 1}, dim3{32, 8, 1},
               (const f32*)pg.data(), dg.data(), 1LL, chunks, C, 0.0);
    emu_launch(reduce_cols<SumOp<f32>, f32, f32>, dim3{cdiv(C, 32), 1, 1}, dim3{32, 8, 1},
               (const f32*)pb.data(), db.data(), 1LL, chunks, C, 0.0);
    dump("ln.x", x); dump("ln.g", g); dump("ln.b", bt); dump("ln.dy", dy); dump("ln.y", y);
    dump("ln.mean", mean); dump("ln.rstd", rstd); dump("ln.dx", dx); dump("ln.dg", dg); dump("ln.db", db);
  }
  // ---- cross-entropy ----
  {
    long long N = 20, C = 37;
    auto x = uniform<f32>(N * C, -3, 3), dl = uniform<f32>(N);
    std::vector<i64> t(N);
    for (long long i = 0; i < N; i++) t[i] = (i % 4 == 0) ? -100 : (i * 7) % C;
    std::vector<f32> loss(N), lse(N), dx(N * C);
    dim3 b, g = rows_grid(N, C, &b);
    emu_launch(ce_fwd<f32>, g, b, (const f32*)x.data(), (const i64*)t.data(), loss.data(), lse.data(), N, C, -100LL);
    emu_launch(ce_bwd<f32>, g, b, (const f32*)x.data(), (const i64*)t.data(), (const f32*)lse.data(),
               (const f32*)dl.data(), dx.data(), N, C, -100LL);
    dump("ce.x", x); dump("ce.t", t); dump("ce.dl", dl); dump("ce.loss", loss); dump("ce.dx", dx);
  }
  // ---- scan: three-phase multi-segment path and the one-launch path ----
  {
    long long R = 2, n = 5000, seg = 2048, segs = cdiv(n, seg);
    auto x = uniform<f32>(R * n, -1, 1);
    std::vector<f32> out(R * n), tot(R * segs), scanned(R * segs);
    emu_launch(scan_rows<f32, f32>, dim3{(unsigned)segs, (unsigned)R, 1}, dim3{256, 1, 1}, (const f32*)x.data(),
               out.data(), R, n, seg, (const f32*)nullptr, tot.data(), false);
    emu_launch(scan_rows<f32, f32>, dim3{1, (unsigned)R, 1}, dim3{256, 1, 1}, (const f32*)tot.data(),
               scanned.data(), R, segs, 1024LL, (const f32*)nullptr, (f32*)nullptr, true);
    emu_launch(scan_rows<f32, f32>, dim3{(unsigned)segs, (unsigned)R, 1}, dim3{256, 1, 1}, (const f32*)x.data(),
               out.data(), R, n, seg, (const f32*)scanned.data(), (f32*)nullptr, true);
    dump("scan.x", x); dump("scan.out", out);
    std::vector<i32> xi(3 * 1500);
    for (size_t i = 0; i < xi.size(); i++) xi[i] = (i32)(i % 7) - 3;
    std::vector<i64> oi(xi.size());
    emu_launch(scan_rows<i32, i64>, dim3{1, 3, 1}, dim3{256, 1, 1}, (const i32*)xi.data(), oi.data(), 3LL, 1500LL,
               2048LL, (const i64*)nullptr, (i64*)nullptr, true);
    dump("iscan.x", xi); dump("iscan.out", oi);
  }
  // ---- movement ----
  {
    long long B = 2, R = 33, C = 65;
    std::vector<u32> x(B * R * C), t(B * R * C), s(B * R * C);
    for (size_t i = 0; i < x.size(); i++) x[i] = (u32)i;
    emu_launch(transpose_tiled<u32, 32, 8>, dim3{cdiv(C, 32), cdiv(R, 32), (unsigned)B}, dim3{32, 8, 1},
               (const u32*)x.data(), t.data(), B, R, C);
    StridedLayout L{3, {C, B, R, 1, 1, 1, 1, 1}, {1, R * C, C, 0, 0, 0, 0, 0}};  // perm (2, 0, 1)
    emu_launch(strided_copy<u32>, dim3{cdiv(B * R * C, 256), 1, 1}, dim3{256, 1, 1}, (const u32*)x.data(), s.data(),
               B * R * C, L);
    dump("tr.t", t); dump("tr.s", s);
    std::vector<i64> idx = {0, -1, 7, 7, 32};
    std::vector<u32> sel(B * idx.size() * C);
    i32 err = 0;
    emu_launch(index_select<u32>, dim3{cdiv(sel.size(), 256), 1, 1}, dim3{256, 1, 1}, (const u32*)x.data(),
               (const i64*)idx.data(), sel.data(), B, R, C, (long long)idx.size(), &err);
    dump("is.out", sel);
    std::vector<i64> bad = {33};
    i32 err2 = 0;
    std::vector<u32> sel2(B * C);
    emu_launch(index_select<u32>, dim3{1, 1, 1}, dim3{256, 1, 1}, (const u32*)x.data(), (const i64*)bad.data(),
               sel2.data(), B, R, C, 1LL, &err2);
    dump("is.err", std::vector<i32>{err, err2});
    // fp16 scatter-add through the 32-bit CAS loop; 7 slots so neighbours share words
    std::vector<i64> off(600);
    std::vector<f16> src(600), dst(7, __half{0});
    for (int i = 0; i < 600; i++) { off[i] = (i * 5) % 7; src[i] = __float2half_rn((float)((i % 9) - 4) * 0.25f); }
    emu_launch(scatter_add_flat<f16>, dim3{3, 1, 1}, dim3{256, 1, 1}, dst.data(), (const i64*)off.data(),
               (const f16*)src.data(), 600LL, 7LL, (i32*)nullptr);
    dump("sa.off", off); dump("sa.src", src); dump("sa.dst", dst);
  }
  // ---- matmul (SIMT): all transposes, epilogue, tile edges ----
  {
    long long M = 70, N = 45, K = 33;
    auto a = uniform<f32>(M * K), b = uniform<f32>(K * N), bias = uniform<f32>(N);
    std::vector<f32> at(K * M), bt(N * K);
    for (long long i = 0; i < M; i++) for (long long k = 0; k < K; k++) at[k * M + i] = a[i * K + k];
    for (long long k = 0; k < K; k++) for (long long j = 0; j < N; j++) bt[j * K + k] = b[k * N + j];
    dim3 g{cdiv(N, 64), cdiv(M, 64), 1}, blk{256, 1, 1};
    std::vector<f32> c0(M * N), c1(M * N), c2(M * N), c3(M * N);
    emu_launch(matmul_simt<f32, 64, 64, 8, 4, 4, false, false, 0>, g, blk, (const f32*)a.data(), (const f32*)b.data(),
               c0.data(), (const f32*)nullptr, M, N, K, K, N, N, 1LL, 0LL, 0LL, 0LL, 1.0);
    emu_launch(matmul_simt<f32, 64, 64, 8, 4, 4, true, false, 1>, g, blk, (const f32*)at.data(), (const f32*)b.data(),
               c1.data(), (const f32*)bias.data(), M, N, K, M, N, N, 1LL, 0LL, 0LL, 0LL, 0.5);
    emu_launch(matmul_simt<f32, 64, 64, 8, 4, 4, false, true, 2>, g, blk, (const f32*)a.data(), (const f32*)bt.data(),
               c2.data(), (const f32*)bias.data(), M, N, K, K, K, N, 1LL, 0LL, 0LL, 0LL, 1.0);
    emu_launch(matmul_simt<f32, 64, 64, 8, 4, 4, true, true, 3>, g, blk, (const f32*)at.data(), (const f32*)bt.data(),
               c3.data(), (const f32*)nullptr, M, N, K, M, K, N, 1LL, 0LL, 0LL, 0LL, 1.0);
    dump("mm.a", a); dump("mm.b", b); dump("mm.bias", bias);
    dump("mm.c0", c0); dump("mm.c1", c1); dump("mm.c2", c2); dump("mm.c3", c3);
    // batched bf16 with a broadcast B (batch stride 0), 128x128 tile on a 3 x 70 x 45 problem
    std::vector<bf16> ab(3 * M * K), bb(K * N), cb(3 * M * N);
    auto av = uniform<f32>(3 * M * K);
    for (size_t i = 0; i < ab.size(); i++) ab[i].bits = float_to_bf16_bits(av[i]);
    for (size_t i = 0; i < bb.size(); i++) bb[i].bits = float_to_bf16_bits(b[i]);
    emu_launch(matmul_simt<bf16, 128, 128, 8, 8, 8, false, false, 0>, dim3{1, 1, 3}, blk, (const bf16*)ab.data(),
               (const bf16*)bb.data(), cb.data(), (const bf16*)nullptr, M, N, K, K, N, N, 3LL, M * K, 0LL, M * N, 1.0);
    dump("mmb.a", ab); dump("mmb.b", bb); dump("mmb.c", cb);
  }
  return 0;
}
