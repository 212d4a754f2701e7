/* One pass of SGD over a parameter on the CPU: tessera/optim/_fused.py `sgd`
 * element by element, the same IEEE operations in the same order (compiled
 * without FMA contraction), so the same bits as its NumPy sequence.
 *
 * d: the gradient as the update uses it; buf: the momentum buffer, NULL without
 * momentum. sc: momentum, lr, dampening coefficient, has coefficient, nesterov.
 */
#include <stdint.h>

#define TS_SGD_STEP(T, NAME)                                                            \
  void NAME(void *np_, void *pp, void *pd, void *pbuf, void *psc) {                     \
    const int64_t n = *(const int64_t *)np_;                                            \
    T *p = (T *)pp, *buf = (T *)pbuf;                                                   \
    const T *d = (const T *)pd, *sc = (const T *)psc;                                   \
    const T mom = sc[0], lr = sc[1], coef = sc[2];                                      \
    const int has_coef = sc[3] != 0, nesterov = sc[4] != 0;                             \
    /* no `simd` clause: gcc 12 then left the loop 7x slower */                    \
    _Pragma("omp parallel for schedule(static) if (n >= 32768)")                   \
    for (int64_t i = 0; i < n; i++) {                                                   \
      T di = d[i];                                                                      \
      if (buf) {                                                                        \
        const T b = buf[i] * mom + (has_coef ? di * coef : di);                         \
        buf[i] = b;                                                                     \
        di = nesterov ? di + b * mom : b;                                               \
      }                                                                                 \
      p[i] = p[i] - di * lr;                                                            \
    }                                                                                   \
  }

TS_SGD_STEP(float, ts_sgd_step_f32)
TS_SGD_STEP(double, ts_sgd_step_f64)
