"""Bit-exact checks of compat.cuh's bf16/fp16/fp8 conversions against ml_dtypes.

The helpers are `__host__ __device__` in device builds and plain inline C++
under a host compiler, so this compiles them with g++ on the CPU and compares
every 16-bit and 8-bit pattern, and a sweep of float inputs, with ml_dtypes.
"""
import os
import shutil
import subprocess

import numpy as np
import pytest

pytestmark = pytest.mark.cpu_only("compat.cuh conversions compiled with g++ on the host; no tensors")

ml_dtypes = pytest.importorskip("ml_dtypes")

KERNELS = os.path.join(os.path.dirname(__file__), "..", "..", "tessera", "kernels")
CXX = shutil.which("g++") or shutil.which("clang++")

HARNESS = r"""
#include <cstdio>
#include <vector>
#include "compat.cuh"
// argv: sweep-file out-file. Writes, in order: widen(bf16[65536]), widen(fp16[65536]),
// widen(e4m3[256]), widen(e5m2[256]) as f32 bits, then for each sweep float:
// bf16, fp16 (u16), e4m3, e4m3 sat, e5m2, e5m2 sat (u8).
int main(int argc, char** argv) {
  FILE* in = fopen(argv[1], "rb"); FILE* out = fopen(argv[2], "wb");
  std::vector<float> xs; float x;
  while (fread(&x, 4, 1, in) == 1) xs.push_back(x);
  for (u32 i = 0; i < 65536; i++) { u32 b = f32_bits(bf16_bits_to_float((u16)i)); fwrite(&b, 4, 1, out); }
  for (u32 i = 0; i < 65536; i++) { u32 b = f32_bits(half_bits_to_float((u16)i)); fwrite(&b, 4, 1, out); }
  for (u32 i = 0; i < 256; i++) { u32 b = f32_bits(fp8e4m3_bits_to_float((u8)i)); fwrite(&b, 4, 1, out); }
  for (u32 i = 0; i < 256; i++) { u32 b = f32_bits(fp8e5m2_bits_to_float((u8)i)); fwrite(&b, 4, 1, out); }
  for (float v : xs) { u16 h = float_to_bf16_bits(v); fwrite(&h, 2, 1, out); }
  for (float v : xs) { u16 h = float_to_half_bits(v); fwrite(&h, 2, 1, out); }
  for (float v : xs) { u8 h = float_to_fp8e4m3_bits(v, false); fwrite(&h, 1, 1, out); }
  for (float v : xs) { u8 h = float_to_fp8e4m3_bits(v, true); fwrite(&h, 1, 1, out); }
  for (float v : xs) { u8 h = float_to_fp8e5m2_bits(v, false); fwrite(&h, 1, 1, out); }
  for (float v : xs) { u8 h = float_to_fp8e5m2_bits(v, true); fwrite(&h, 1, 1, out); }
  fclose(out); return 0;
}
"""


def _sweep():
    rng = np.random.default_rng(0)
    bits = [
        rng.integers(0, 2**32, 400_000, dtype=np.uint64).astype(np.uint32),
        # every bf16/fp16 pattern widened, and their midpoints: exercises ties to even
        (np.arange(65536, dtype=np.uint32) << 16),
        (np.arange(65536, dtype=np.uint32) << 16) | 0x8000,
        (np.arange(65536, dtype=np.uint32) << 16) | 0x8001,
        (np.arange(65536, dtype=np.uint32) << 16) | 0x7FFF,
        np.arange(65536, dtype=np.uint16).view(np.float16).astype(np.float32).view(np.uint32),
    ]
    f = np.concatenate(bits).view(np.float32)
    # values around the fp8/fp16 ranges: dense logarithmic sweep, both signs
    mags = np.geomspace(2.0**-28, 2.0**20, 200_001, dtype=np.float64).astype(np.float32)
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 448, 464, 480, 57344, 61440,
                        65504, 65520, 2.0**-10, 2.0**-17, 3 * 2.0**-11], np.float32)
    return np.concatenate([f, mags, -mags, special, -special]).astype(np.float32)


@pytest.fixture(scope="module")
def harness_out(tmp_path_factory):
    if CXX is None:
        pytest.skip("no host C++ compiler (g++/clang++) to build the conversion harness")
    d = tmp_path_factory.mktemp("conv")
    src = d / "harness.cpp"
    src.write_text(HARNESS)
    exe = d / "harness"
    subprocess.run([CXX, "-O2", "-std=c++17", f"-I{KERNELS}", str(src), "-o", str(exe)], check=True)
    xs = _sweep()
    (d / "in.bin").write_bytes(xs.tobytes())
    subprocess.run([str(exe), str(d / "in.bin"), str(d / "out.bin")], check=True)
    raw = (d / "out.bin").read_bytes()
    n = xs.size
    parts, off = {}, 0
    for name, count, dt in [("bf16_w", 65536, np.uint32), ("f16_w", 65536, np.uint32),
                            ("e4_w", 256, np.uint32), ("e5_w", 256, np.uint32),
                            ("bf16_n", n, np.uint16), ("f16_n", n, np.uint16),
                            ("e4_n", n, np.uint8), ("e4_s", n, np.uint8),
                            ("e5_n", n, np.uint8), ("e5_s", n, np.uint8)]:
        size = count * np.dtype(dt).itemsize
        parts[name] = np.frombuffer(raw[off:off + size], dt)
        off += size
    assert off == len(raw)
    return xs, parts


def _widen_ref(bits, dtype):
    with np.errstate(all="ignore"):
        return bits.view(dtype).astype(np.float32).view(np.uint32)


def test_widen_all_16bit_patterns(harness_out):
    _, p = harness_out
    all16 = np.arange(65536, dtype=np.uint16)
    np.testing.assert_array_equal(p["bf16_w"], _widen_ref(all16, ml_dtypes.bfloat16))
    np.testing.assert_array_equal(p["f16_w"], _widen_ref(all16, np.float16))


def test_widen_all_fp8_patterns(harness_out):
    _, p = harness_out
    all8 = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(p["e4_w"], _widen_ref(all8, ml_dtypes.float8_e4m3fn))
    np.testing.assert_array_equal(p["e5_w"], _widen_ref(all8, ml_dtypes.float8_e5m2))


@pytest.mark.parametrize("key,dtype", [("bf16_n", ml_dtypes.bfloat16), ("f16_n", np.float16),
                                       ("e4_n", ml_dtypes.float8_e4m3fn),
                                       ("e5_n", ml_dtypes.float8_e5m2)])
def test_narrow_matches_ml_dtypes(harness_out, key, dtype):
    xs, p = harness_out
    with np.errstate(all="ignore"):
        ref = xs.astype(dtype)
    ref = ref.view(np.uint16 if ref.itemsize == 2 else np.uint8)
    bad = np.nonzero(p[key] != ref)[0]
    assert bad.size == 0, [(hex(xs[i:i+1].view(np.uint32)[0]), hex(p[key][i]), hex(ref[i])) for i in bad[:8]]


@pytest.mark.parametrize("key,dtype", [("e4_s", ml_dtypes.float8_e4m3fn), ("e5_s", ml_dtypes.float8_e5m2)])
def test_saturating_fp8(harness_out, key, dtype):
    # Saturating = clamp to +-max finite first (inf included), NaN stays NaN.
    xs, p = harness_out
    fmax = float(ml_dtypes.finfo(dtype).max)
    with np.errstate(all="ignore"):
        ref = np.clip(xs, -fmax, fmax).astype(dtype).view(np.uint8)
    bad = np.nonzero(p[key] != ref)[0]
    assert bad.size == 0, [(float(xs[i]), hex(p[key][i]), hex(ref[i])) for i in bad[:8]]
