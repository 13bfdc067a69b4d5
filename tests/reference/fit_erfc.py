"""Coefficients of the erfc approximation behind sd_wavlm_gelu (src/wavlm/wavlm_kernels.c).

    erfc(z) = t * exp(-z^2 + P(u)),  t = 1 / (1 + z/2),  u = (2 t - (1 + t0)) / (1 - t0),
    t0 = 1 / (1 + Z/2),  z in [0, Z],  Z = 9.5 (erfc(9.5) ~ 7e-41 is below float's normal range)

P is a degree-10 polynomial in u in [-1, 1], the least-squares Chebyshev fit of
log(erfc(z) e^{z^2} / t) on 400001 evenly spaced z (Python's math.erfc, double), converted to the
power basis for Horner's rule. The fitted function is smooth and bounded on the whole interval, so
a low-degree polynomial reaches float precision. Prints the C initialiser and the fit error.

    /usr/bin/python3 tests/reference/fit_erfc.py
"""
import math

import numpy as np

Z, DEG = 9.5, 10
z = np.linspace(0.0, Z, 400001)
t = 1.0 / (1.0 + 0.5 * z)
t0 = 1.0 / (1.0 + 0.5 * Z)
u = (2.0 * t - (1.0 + t0)) / (1.0 - t0)
f = np.array([math.log(math.erfc(a)) for a in z]) + z * z - np.log(t)
cheb = np.polynomial.chebyshev.Chebyshev.fit(u, f, DEG, domain=[-1, 1])
coef = cheb.convert(kind=np.polynomial.Polynomial).coef
c32 = coef.astype(np.float32)
acc = np.full_like(u, c32[-1], dtype=np.float32)
uf = u.astype(np.float32)
for a in c32[-2::-1]:
    acc = acc * uf + a
print("/* P(u), highest power first */")
print("static const float erfc_p[%d] = {%s};" % (DEG + 1, ", ".join("%.9ef" % c for c in coef[::-1])))
print("t0 = %.17g; max |P - f|: double %.2e, float Horner %.2e" %
      (t0, np.max(np.abs(cheb(u) - f)), np.max(np.abs(acc.astype(np.float64) - f))))
