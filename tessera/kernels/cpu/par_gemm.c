/* A row-major GEMM C = A @ B split over the OpenMP threads that run tessera's fused
 * CPU kernels: each thread calls NumPy's OpenBLAS (single-threaded) on a slab of
 * C's rows or columns.
 *
 * Why: OpenBLAS's own worker threads busy-wait after each call and then fight the
 * OpenMP workers for the cores (see tessera/backend/cpu_gemm.py); one pool for
 * both GEMMs and fused kernels keeps every core to one thread.
 *
 * BLASINT is the BLAS integer (int64_t for the ILP64 OpenBLAS that NumPy >= 2
 * ships, int otherwise), set by the Python side when it compiles this file.
 * The dims array: M N K lda ldb ldc transA transB split_columns threads.
 */
#include <stdint.h>
#include <omp.h>

#ifndef BLASINT
#define BLASINT int64_t
#endif

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };

#define TS_PAR_GEMM(T, NAME)                                                            \
  typedef void (*NAME##_blas)(int, int, int, BLASINT, BLASINT, BLASINT, T, const T *,   \
                              BLASINT, const T *, BLASINT, T, T *, BLASINT);            \
  void NAME(void *fn, void *dims, void *pa, void *pb, void *pc) {                       \
    NAME##_blas gemm = (NAME##_blas)fn;                                                 \
    const int64_t *d = (const int64_t *)dims;                                           \
    const int64_t M = d[0], N = d[1], K = d[2], lda = d[3], ldb = d[4], ldc = d[5];     \
    const int ta = (int)d[6], tb = (int)d[7], by_cols = (int)d[8], nt = (int)d[9];      \
    const T *A = (const T *)pa, *B = (const T *)pb;                                     \
    T *C = (T *)pc;                                                                     \
    _Pragma("omp parallel num_threads(nt)")                                             \
    {                                                                                   \
      const int64_t E = by_cols ? N : M, parts = omp_get_num_threads();                 \
      /* slabs of a multiple of 16 so that BLAS keeps its full-width micro-tiles */     \
      const int64_t q = ((E + parts - 1) / parts + 15) / 16 * 16;                       \
      const int64_t lo = omp_get_thread_num() * q, hi = lo + q < E ? lo + q : E;        \
      if (lo < hi) {                                                                    \
        if (by_cols)                                                                    \
          gemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, M, hi - lo, K,  \
               (T)1, A, lda, tb ? B + lo * ldb : B + lo, ldb, (T)0, C + lo, ldc);       \
        else                                                                            \
          gemm(ROW_MAJOR, ta ? TRANS : NO_TRANS, tb ? TRANS : NO_TRANS, hi - lo, N, K,  \
               (T)1, ta ? A + lo : A + lo * lda, lda, B, ldb, (T)0, C + lo * ldc, ldc); \
      }                                                                                 \
    }                                                                                   \
  }

TS_PAR_GEMM(float, ts_par_sgemm)
TS_PAR_GEMM(double, ts_par_dgemm)

int ts_omp_max_threads(void) { return omp_get_max_threads(); }
