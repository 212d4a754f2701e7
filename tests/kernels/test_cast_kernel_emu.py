"""cast.cu on the CPU: the real kernel source (built with g++ under a minimal device
shim: cast has no barriers or shuffles, so its threads can run one after another),
every (source, destination) pair, against tessera's cast table computed exactly
(tests/cast_reference.py). This is what keeps the GPU's eager cast equal to the CPU's
and the fused kernels' without a GPU: one rounding into fp16/bf16/fp8, and the
float -> int rule for NaN, infinities, negatives to uint8 and out-of-range values."""
import os
import shutil
import subprocess

import numpy as np
import pytest

from cast_reference import assert_same_values, cast_exact, round_f64
from tessera.fusion.ir import numpy_dtype

pytestmark = pytest.mark.cpu_only("compiles tessera/kernels/cast.cu for the CPU emulator")

HERE = os.path.dirname(os.path.abspath(__file__))
KERNELS = os.path.join(HERE, "..", "..", "tessera", "kernels")
CXX = shutil.which("g++")

# tessera dtype -> (C type in cast.cu, NumPy storage of the raw bytes)
CTYPES = {"fp64": "f64", "fp32": "f32", "fp16": "f16", "bf16": "bf16", "fp8_e4m3": "fp8e4m3",
          "fp8_e5m2": "fp8e5m2", "int8": "i8", "int16": "i16", "int32": "i32", "int64": "i64",
          "uint8": "u8", "bool": "bool"}
FLOATS = ("fp64", "fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2")
SAT = ("fp8_e4m3", "fp8_e5m2")

HARNESS = r"""
// the device API compat.cuh and cast.cu use, for serial CPU threads
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
struct dim3 { unsigned x = 1, y = 1, z = 1; };
static dim3 threadIdx, blockIdx, blockDim, gridDim;
struct __half { unsigned short x; };
float __half2float(__half h);
__half __float2half_rn(float f);
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline double __longlong_as_double(long long i) { double d; std::memcpy(&d, &i, 8); return d; }
inline float __frcp_rn(float v) { return 1.0f / v; }
inline double __drcp_rn(double v) { return 1.0 / v; }
inline int emu_lane() { return 0; }
inline void emu_syncwarp() {}
template <class K, class... A> void emu_launch(K kernel, dim3 grid, dim3 block, A... args) {
  gridDim = grid; blockDim = block;
  for (unsigned b = 0; b < grid.x; b++)
    for (unsigned t = 0; t < block.x; t++) { blockIdx = dim3{b}; threadIdx = dim3{t}; kernel(args...); }
}
#include "cast.cu"
float __half2float(__half h) { return half_bits_to_float(h.x); }
__half __float2half_rn(float f) { return __half{float_to_half_bits(f)}; }

static std::string g_dir;
template <class S, class D, bool SAT> void run(const char* s, const char* d) {
  // raw bytes, not std::vector<S>: vector<bool> has no data()
  FILE* in = fopen((g_dir + "/in_" + s + ".bin").c_str(), "rb");
  std::vector<unsigned char> x;
  int c;
  while ((c = fgetc(in)) != EOF) x.push_back((unsigned char)c);
  fclose(in);
  const i64 n = (i64)(x.size() / sizeof(S));
  std::vector<unsigned char> y(n * sizeof(D));
  emu_launch(cast<S, D, SAT>, dim3{2, 1, 1}, dim3{32, 1, 1}, (const S*)x.data(), (D*)y.data(), n);
  FILE* out = fopen((g_dir + "/out_" + s + "_" + d + (SAT ? "_sat" : "") + ".bin").c_str(), "wb");
  fwrite(y.data(), 1, y.size(), out);
  fclose(out);
}
int main(int argc, char** argv) {
  g_dir = argv[1];
%s
  return 0;
}
"""

SPECIAL = [0.0, -0.0, 0.5, -0.5, 1.0, -1.0, 1.5, -2.5, -3.0, 100.75, 127.0, 128.0, -129.0, 255.0, 255.9,
           256.0, 300.0, -300.0, 448.0, 464.0, 464.5, 480.0, 40000.0, -40000.0, 57344.0, 61440.0, 65504.0,
           65520.0, 1e6, 2.0 ** 31, -(2.0 ** 31), -(2.0 ** 31) - 1, 2.0 ** 63, -(2.0 ** 63), 1e10, 3e38, 1e300,
           1e-40, 2.0 ** -149, 2.0 ** -150, 1 + 2.0 ** -8 + 2.0 ** -30, 1 + 2.0 ** -11 + 2.0 ** -40,
           2.0 ** 24 + 2.0 ** 16 + 1, np.inf, -np.inf, np.nan]
INTS = [0, 1, -1, 5, 127, -128, 200, 255, 300, -300, 70000, 2 ** 24 + 2 ** 16 + 1, -(2 ** 24 + 2 ** 16 + 1),
        2 ** 31 - 1, -(2 ** 31), 2 ** 60 + 2 ** 52 + 1, -(2 ** 60 + 2 ** 52 + 1), 2 ** 63 - 1, -(2 ** 63)]


def _source(src):
    """(raw storage array, exact Python values) of the test inputs for `src`."""
    if src in FLOATS:
        vals = np.array(SPECIAL) if src == "fp64" else round_f64(np.array(SPECIAL), src)
        raw = vals.astype(numpy_dtype(src)) if src != "fp64" else vals  # exact: on the grid
        return raw, vals.tolist()
    if src == "bool":
        return np.array([False, True]), [0, 1]
    info = np.iinfo(numpy_dtype(src))
    vals = [v for v in INTS if info.min <= v <= info.max]
    return np.array(vals, numpy_dtype(src)), vals


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    if CXX is None:
        pytest.skip("g++ not available for the CPU kernel emulator")
    d = tmp_path_factory.mktemp("cast_emu")
    calls = [f'  run<{CTYPES[s]}, {CTYPES[t]}, false>("{s}", "{t}");' for s in CTYPES for t in CTYPES]
    calls += [f'  run<{CTYPES[s]}, {CTYPES[t]}, true>("{s}", "{t}");' for s in CTYPES for t in SAT]
    (d / "harness.cpp").write_text(HARNESS % "\n".join(calls))
    for s in CTYPES:
        _source(s)[0].tofile(d / f"in_{s}.bin")
    exe = d / "cast_emu"
    build = subprocess.run([CXX, "-std=c++17", "-O0", "-DTS_CPU_EMU=32", f"-I{KERNELS}",
                            str(d / "harness.cpp"), "-o", str(exe)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr[-3000:]
    subprocess.run([str(exe), str(d)], check=True, timeout=300)

    def load(src, dst, sat=False):
        return np.fromfile(d / f"out_{src}_{dst}{'_sat' if sat else ''}.bin", dtype=numpy_dtype(dst))
    return load


@pytest.mark.parametrize("src", list(CTYPES))
def test_cast_kernel_follows_the_table(out, src):
    exact = _source(src)[1]
    for dst in CTYPES:
        got, ref = out(src, dst), cast_exact(exact, dst)
        if dst in FLOATS or dst == "bool":
            assert_same_values(got.astype(np.float64), ref, f"{src} -> {dst}")
        else:
            np.testing.assert_array_equal(got.astype(np.int64), ref, err_msg=f"{src} -> {dst}")


@pytest.mark.parametrize("src", ["fp64", "fp32", "bf16", "int64"])
@pytest.mark.parametrize("dst", SAT)
def test_saturating_fp8_cast_kernel(out, src, dst):
    exact = _source(src)[1]
    m = 448.0 if dst == "fp8_e4m3" else 57344.0
    clipped = [v if v != v else min(max(float(v), -m), m) for v in exact]
    assert_same_values(out(src, dst, sat=True).astype(np.float64), round_f64(np.array(clipped), dst), f"{src} -> {dst}")
