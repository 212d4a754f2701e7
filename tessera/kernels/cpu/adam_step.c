/* One pass of Adam over a parameter on the CPU: the update of
 * tessera/optim/_fused.py `adam` (itself the per-op path's sequence in
 * tessera/optim/sgd_adam.py), element by element instead of a dozen NumPy passes
 * over the whole arrays. The same IEEE operations in the same order, each rounded
 * to T (compiled with -ffp-contract=off: no fused multiply-add), so the bits are
 * those of the NumPy sequence.
 *
 * d: the gradient as the update uses it; vmax: NULL without amsgrad.
 * sc: c1 = 1 - beta1, beta2, c2 = 1 - beta2, sqrt(bias correction 2), eps, step size.
 */
#include <math.h>
#include <stdint.h>

#define TS_ADAM_STEP(T, SQRT, NAME)                                                    \
  void NAME(void *np_, void *pp, void *pd, void *pm, void *pv, void *pvmax, void *psc) { \
    const int64_t n = *(const int64_t *)np_;                                           \
    T *p = (T *)pp, *m = (T *)pm, *v = (T *)pv, *vmax = (T *)pvmax;                    \
    const T *d = (const T *)pd, *sc = (const T *)psc;                                  \
    const T c1 = sc[0], b2 = sc[1], c2 = sc[2], bc2 = sc[3], eps = sc[4], lr = sc[5];  \
    /* no `simd` clause: gcc 12 then left the loop 7x slower */                    \
    _Pragma("omp parallel for schedule(static) if (n >= 32768)")                  \
    for (int64_t i = 0; i < n; i++) {                                                  \
      const T di = d[i];                                                               \
      const T mi = m[i] + (di - m[i]) * c1;                                            \
      T vi = v[i] * b2 + (di * di) * c2;                                               \
      m[i] = mi;                                                                       \
      v[i] = vi;                                                                       \
      if (vmax) { /* numpy.maximum(vmax, v): NaN from either side propagates */        \
        const T a = vmax[i];                                                           \
        vi = (a != a) ? a : (vi != vi) ? vi : (a >= vi ? a : vi);                      \
        vmax[i] = vi;                                                                  \
      }                                                                                \
      p[i] = p[i] - (mi / (SQRT(vi) / bc2 + eps)) * lr;                                \
    }                                                                                  \
  }

TS_ADAM_STEP(float, sqrtf, ts_adam_step_f32)
TS_ADAM_STEP(double, sqrt, ts_adam_step_f64)
