"""Synthetic targets: gradients, exact samplers against their log densities, closed-form oracles.

Statistical checks use fixed seeds (shifted by ``MCSAMPLE_TEST_SEED_OFFSET``) and Bonferroni
corrections at a family-wise level ALPHA per test function; mutant controls show each check can fail.
"""

import math

import numpy as np
import pytest
from scipy import integrate, special, stats

from targets import synthetic as S
from targets.synthetic import CATALOGUE

NAMES = list(CATALOGUE)
ALPHA = 1e-4
N_CALIBRATION = 2000  # exact draws used only to centre and scale the Stein test functions


def _z_crit(alpha, m):
    """Two-sided normal critical value for m tests at family-wise level alpha."""
    return stats.norm.isf(alpha / (2 * m))


def _evaluate(target, xs):
    return S.logp_grad_batch(target, xs)


@pytest.fixture(scope="module")
def built(seed_offset):
    """name -> (target, reference, logp at the draws, gradients at the draws), built once."""
    cache = {}

    def get(name):
        if name not in cache:
            target, ref = CATALOGUE[name](seed=seed_offset)
            lp, g = _evaluate(target, ref.draws)
            cache[name] = (target, ref, lp, g)
        return cache[name]
    return get


# ---------------------------------------------------------------------------------------------
# Contract: names, shapes, gradients, finiteness
# ---------------------------------------------------------------------------------------------

EXPECTED_DIMS = {"student_t": 10, "cauchy100": 100, "mos10_d2": 2, "mos10_d10": 10, "mos10_d50": 50,
                 "funnel10": 10, "funnel10_slips": 10, "banana": 2, "rings": 2, "axial_modes": 10,
                 "hyperplane_disk200": 200, "mog8": 2, "gmm40_d2": 2, "gmm40_d50": 50, "two_modes": 32,
                 "dw5": 5, "dw10": 10, "dw50": 50, "manywell32": 32}


def test_catalogue_names_and_dims(built):
    assert set(NAMES) == set(EXPECTED_DIMS)
    for name in NAMES:
        target, ref, _, _ = built(name)
        assert target.name == name and target.dim == EXPECTED_DIMS[name]
        assert ref.draws.shape == (20000, target.dim)
        assert ref.mean.shape == ref.sd.shape == (target.dim,)
        assert CATALOGUE[name].__doc__
        assert np.isfinite(ref.extra["log_Z"])
        if "mode_centres" in ref.extra and "mode_weights" in ref.extra:
            k = len(ref.extra["mode_weights"])
            assert ref.extra["mode_centres"].shape == (k, target.dim)
            assert np.isclose(ref.extra["mode_weights"].sum(), 1.0)


def test_keyword_arguments_change_the_definition():
    target, ref = CATALOGUE["funnel10"](dim=5, n_exact=100, seed=3)
    assert target.dim == 5 and ref.draws.shape == (100, 5) and target.name == "funnel5"
    target, _ = CATALOGUE["funnel10"](n_exact=10)
    assert target.name == "funnel10"


def test_exact_draws_are_reproducible():
    a = CATALOGUE["dw5"](n_exact=500, seed=7)[1].draws
    b = CATALOGUE["dw5"](n_exact=500, seed=7)[1].draws
    c = CATALOGUE["dw5"](n_exact=500, seed=8)[1].draws
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _finite_difference(target, x):
    fd, hs = np.empty(x.size), np.empty(x.size)
    for i in range(x.size):
        h = 1e-6 * max(1.0, abs(x[i]))
        up, down = x.copy(), x.copy()
        up[i] += h
        down[i] -= h
        fd[i] = (target.logp(up) - target.logp(down)) / (2 * h)
        hs[i] = h
    return fd, hs


@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_finite_differences(built, name):
    target, ref, lp, g = built(name)
    norms = np.linalg.norm(ref.draws - np.median(ref.draws, axis=0), axis=1)
    for n in (0, 1, 2, int(np.argmax(norms)), int(np.argmin(norms))):  # typical and extreme draws
        x = ref.draws[n]
        value = target.logp(x)
        assert lp[n] == pytest.approx(value, rel=1e-12, abs=1e-12)
        fd, h = _finite_difference(target, x)
        tol = 1e-5 * (1 + np.abs(fd)) + 20 * np.finfo(float).eps * (1 + abs(value)) / h
        bad = np.abs(g[n] - fd) > tol
        assert not bad.any(), (name, n, np.flatnonzero(bad), g[n][bad], fd[bad])


@pytest.mark.parametrize("name", NAMES)
def test_logp_and_gradient_finite_on_exact_draws(built, name):
    _, _, lp, g = built(name)
    assert np.all(np.isfinite(lp)) and np.all(np.isfinite(g))


# ---------------------------------------------------------------------------------------------
# Stein's identity: the exact sampler agrees with the log density
# ---------------------------------------------------------------------------------------------

def _stein_z(draws, grads, centre, scale):
    """z statistics of E[d_i log p(x) f(u_i) + f'(u_i) / s_i] = 0, f = tanh, u = (x - c) / s, per
    coordinate, and of the bounded radial field F(x) = s * u / sqrt(1 + |u|^2 / d)."""
    n, d = draws.shape
    u = (draws - centre) / scale
    t = np.tanh(u)
    terms = grads * t + (1 - t * t) / scale
    r2 = (u * u).sum(axis=1) / d
    h = 1 / np.sqrt(1 + r2)
    radial = h * (grads * scale * u).sum(axis=1) + d * h - r2 * h ** 3
    terms = np.column_stack([terms, radial])
    sd = terms.std(axis=0, ddof=1)
    return terms.mean(axis=0) * math.sqrt(n) / np.where(sd > 0, sd, np.inf)


def _stein_for(built, name, mutate=None):
    target, ref, lp, g = built(name)
    calib, draws, grads = ref.draws[:N_CALIBRATION], ref.draws[N_CALIBRATION:], g[N_CALIBRATION:]
    centre = np.median(calib, axis=0)
    q75, q25 = np.percentile(calib, [75, 25], axis=0)
    scale = (q75 - q25) / 1.349
    if mutate is not None:
        draws = mutate(draws, centre)
        _, grads = _evaluate(target, draws)
    return _stein_z(draws, grads, centre, scale)


@pytest.mark.parametrize("name", NAMES)
def test_stein_identity_on_exact_draws(built, name):
    z = _stein_for(built, name)
    crit = _z_crit(ALPHA / len(NAMES), z.size)
    assert np.max(np.abs(z)) < crit, (name, np.argmax(np.abs(z)), np.max(np.abs(z)), crit)


@pytest.mark.parametrize("name", NAMES)
def test_stein_identity_rejects_scaled_draws(built, name):
    """Mutant: exact draws stretched by 1.2 about their median must fail the same test."""
    z = _stein_for(built, name, mutate=lambda x, c: c + 1.2 * (x - c))
    assert np.max(np.abs(z)) > _z_crit(ALPHA / len(NAMES), z.size)


def _wrong_draws(name, seed):
    """Exact draws of a nearby but different target (a definition mutant)."""
    if name == "funnel10":
        return CATALOGUE["funnel10_slips"](seed=seed)[1].draws  # sd sqrt(3) instead of 3
    if name == "banana":
        x = CATALOGUE["banana"](seed=seed)[1].draws.copy()
        x[:, 1] *= -1  # curvature -0.03
        return x
    if name == "hyperplane_disk200":
        return np.random.default_rng(seed).standard_normal((20000, 200)) * math.sqrt(0.5)  # not projected
    if name == "dw10":
        return CATALOGUE["dw10"](delta=3.3, seed=seed)[1].draws
    if name == "manywell32":
        x = CATALOGUE["manywell32"](seed=seed)[1].draws.copy()
        x[:, ::2] *= -1  # deep and shallow wells swapped
        return x
    if name == "cauchy100":
        return S.student_t(dim=100, nu=1.5, seed=seed)[1].draws
    raise KeyError(name)


@pytest.mark.parametrize("name", ["funnel10", "banana", "hyperplane_disk200", "dw10", "manywell32",
                                  "cauchy100"])
def test_stein_identity_rejects_draws_of_a_nearby_target(built, name, seed_offset):
    target, ref, _, _ = built(name)
    calib = ref.draws[:N_CALIBRATION]
    centre = np.median(calib, axis=0)
    q75, q25 = np.percentile(calib, [75, 25], axis=0)
    draws = _wrong_draws(name, 99 + seed_offset)[N_CALIBRATION:]
    z = _stein_z(draws, _evaluate(target, draws)[1], centre, (q75 - q25) / 1.349)
    assert np.max(np.abs(z)) > _z_crit(ALPHA / len(NAMES), z.size)


# ---------------------------------------------------------------------------------------------
# Closed forms
# ---------------------------------------------------------------------------------------------

def _assert_pvalues(pvalues, alpha=ALPHA):
    p = np.atleast_1d(pvalues)
    assert np.all(p > alpha / p.size), p


def _binom_p(k, n, p):
    return stats.binomtest(int(k), n, p).pvalue


@pytest.mark.parametrize("name, sd", [("funnel10", 3.0), ("funnel10_slips", math.sqrt(3.0))])
def test_funnel_closed_form(built, name, sd):
    _, ref, _, _ = built(name)
    x = ref.draws
    n = len(x)
    v = x[:, 0]
    q = stats.norm.ppf(0.999) * sd
    if sd == 3.0:
        assert q == pytest.approx(9.2707, abs=1e-4)  # the GPSS notebook's quantiles
    chi = (n - 1) * v.var(ddof=1) / sd ** 2  # exact: v is normal
    p_sd = 2 * min(stats.chi2.cdf(chi, n - 1), stats.chi2.sf(chi, n - 1))
    _assert_pvalues([p_sd, _binom_p((v < -q).sum(), n, 1e-3), _binom_p((v > q).sum(), n, 1e-3),
                     stats.kstest(v / sd, "norm").pvalue,
                     stats.kstest((x[:, 1:] * np.exp(-v / 2)[:, None]).ravel()[:n], "norm").pvalue])
    assert ref.sd[0] == sd and ref.sd[1] == pytest.approx(math.exp(sd * sd / 4))


def test_funnel_sd_mutant_fails(built):
    _, ref, _, _ = built("funnel10")
    v = ref.draws[:, 0] * math.sqrt(3.0) / 3.0  # the SLIPS funnel's x_1 tested against sd 3
    n = len(v)
    chi = (n - 1) * v.var(ddof=1) / 9.0
    assert 2 * min(stats.chi2.cdf(chi, n - 1), stats.chi2.sf(chi, n - 1)) < ALPHA


def test_cauchy_closed_form(built):
    _, ref, _, _ = built("cauchy100")
    x = ref.draws
    n, d = x.shape
    r = np.linalg.norm(x, axis=1)
    assert ref.extra["median_norm"] == pytest.approx(14.7721, abs=1e-4)
    _assert_pvalues([_binom_p((r < 14.7721).sum(), n, 0.5),
                     _binom_p(((r > 14.7721) & (x[:, 0] > 0)).sum(), n, 0.25),
                     _binom_p((np.abs(x[:, 0]) < 1).sum(), n, 0.5),
                     stats.kstest(r ** 2 / d, stats.f(d, 1).cdf).pvalue,
                     stats.kstest(x[:, 0], "cauchy").pvalue])
    assert np.all(np.isnan(ref.mean)) and np.all(np.isnan(ref.sd))


def test_student_t_closed_form(built):
    _, ref, _, _ = built("student_t")
    x = ref.draws
    d = x.shape[1]
    _assert_pvalues([stats.kstest((x ** 2).sum(1) / d, stats.f(d, 3.0).cdf).pvalue,
                     stats.kstest(x[:, 0], stats.t(3.0).cdf).pvalue])
    # mutants: 1.2x draws, and draws with nu = 4, fail the F test
    assert stats.kstest((1.44 * x ** 2).sum(1) / d, stats.f(d, 3.0).cdf).pvalue < ALPHA
    y = S.student_t(dim=d, nu=4.0, seed=5)[1].draws
    assert stats.kstest((y ** 2).sum(1) / d, stats.f(d, 3.0).cdf).pvalue < ALPHA


def test_hyperplane_closed_form(built):
    _, ref, _, _ = built("hyperplane_disk200")
    x = ref.draws
    n, d = x.shape
    assert d * d / (2 * (d + 1)) == pytest.approx(99.5025, abs=1e-4)
    assert ref.extra["mean_sq_norm"] == pytest.approx(99.5025, abs=1e-4)
    sq = (x ** 2).sum(1)
    var_sq = 2 * ((d - 1) * 0.25 + (0.5 / (d + 1)) ** 2)  # 2 tr(Sigma^2)
    z = (sq.mean() - 99.5025) / math.sqrt(var_sq / n)
    assert abs(z) < _z_crit(ALPHA, 2)
    assert abs(((1.2 * x) ** 2).sum(1).mean() - 99.5025) / math.sqrt(var_sq / n) > _z_crit(ALPHA, 2)
    _assert_pvalues([stats.kstest(x.sum(1) / math.sqrt(d / (2 * (d + 1))), "norm").pvalue])
    assert ref.sd[0] ** 2 == pytest.approx(0.497512, abs=1e-6)


def test_banana_closed_form(built):
    _, ref, _, _ = built("banana")
    x = ref.draws
    _assert_pvalues([stats.kstest(x[:, 0] / 10, "norm").pvalue,
                     stats.kstest(x[:, 1] - 0.03 * (x[:, 0] ** 2 - 100), "norm").pvalue])
    assert ref.sd[1] == pytest.approx(math.sqrt(19.0))


def test_rings_closed_form(built):
    _, ref, _, _ = built("rings")
    x = ref.draws
    r = np.linalg.norm(x, axis=1)
    radii, sigma = np.array([1.0, 2.0, 3.0, 4.0]), 0.15
    w = stats.norm.cdf(radii / sigma)
    w /= w.sum()

    def cdf(s):  # the radius: mixture of N(r_k, sigma^2) truncated to (0, inf)
        s = np.asarray(s)[..., None]
        lo = stats.norm.cdf(-radii / sigma)
        return ((stats.norm.cdf((s - radii) / sigma) - lo) / (1 - lo) * w).sum(-1)
    _assert_pvalues([stats.kstest(r, cdf).pvalue,
                     stats.kstest(np.arctan2(x[:, 1], x[:, 0]), stats.uniform(-np.pi, 2 * np.pi).cdf).pvalue])
    assert stats.kstest(1.05 * r, cdf).pvalue < ALPHA  # mutant


def test_axial_modes_closed_form(built):
    _, ref, _, _ = built("axial_modes")
    x = ref.draws
    n, d = x.shape
    a = np.abs(x)
    j = a.argmax(1)
    counts = np.bincount(j, minlength=d)
    p_axis = stats.chisquare(counts).pvalue
    p_sign = _binom_p((x[np.arange(n), j] > 0).sum(), n, 0.5)
    # the largest |x_j| has density prop. to t^4 e^-t (1 - e^-t)^(d-1), from the density alone
    grid = np.linspace(0, 60, 60001)
    dens = np.where(grid > 0, grid ** 4 * np.exp(-grid) * (-np.expm1(-grid)) ** (d - 1), 0.0)
    cum = integrate.cumulative_trapezoid(dens, grid, initial=0)
    cdf = lambda t: np.interp(t, grid, cum / cum[-1])  # noqa: E731
    _assert_pvalues([p_axis, p_sign, stats.kstest(a.max(1), cdf).pvalue])
    assert stats.kstest(1.1 * a.max(1), cdf).pvalue < ALPHA  # mutant


def _quartic_cdf(c4, c2, c1):
    grid = np.linspace(-8, 8, 160001)
    v = ((c4 * grid ** 2 + c2) * grid + c1) * grid
    dens = np.exp(-(v - v.min()))
    cum = integrate.cumulative_trapezoid(dens, grid, initial=0)
    return lambda t: np.interp(t, grid, cum / cum[-1])


@pytest.mark.parametrize("name, delta", [("dw5", 4.0), ("dw10", 3.0), ("dw50", 2.0)])
def test_double_well_marginals(built, name, delta):
    _, ref, _, _ = built(name)
    x = ref.draws
    m = 5
    cdf = _quartic_cdf(1.0, -2 * delta, 0.0)
    pv = [stats.kstest(x[:, i], cdf).pvalue for i in range(m)]
    pv += [stats.kstest(x[:, i] * math.sqrt(2), "norm").pvalue for i in range(m, x.shape[1])]
    _assert_pvalues(pv)
    assert stats.kstest(1.05 * x[:, 0], cdf).pvalue < ALPHA  # mutant


def test_many_well_marginals_and_log_z(built):
    _, ref, _, _ = built("manywell32")
    x = ref.draws
    n = len(x)
    assert ref.extra["log_Z"] == pytest.approx(16 * (math.log(11784.50927) + 0.5 * math.log(2 * math.pi)),
                                               rel=1e-8)
    cdf = _quartic_cdf(1.0, -6.0, -0.5)
    wells = ref.extra["well_coords"]
    assert np.array_equal(wells, np.arange(0, 32, 2))
    pv = [stats.kstest(x[:, i], cdf).pvalue for i in wells]
    pv += [stats.kstest(x[:, i], "norm").pvalue for i in range(1, 32, 2)]
    upper = ref.extra["well_weights"][1]
    pv += [_binom_p((x[:, i] > ref.extra["well_split"]).sum(), n, upper) for i in wells]
    _assert_pvalues(pv)
    assert ref.extra["well_split"] == pytest.approx(-0.0417, abs=1e-4)


# ---------------------------------------------------------------------------------------------
# Normalizing constants: logp - log_Z against independent scipy densities
# ---------------------------------------------------------------------------------------------

def _scipy_logpdf(name, ref, x):
    e = ref.extra
    if name in ("student_t", "cauchy100"):
        d = x.shape[1]
        return stats.multivariate_t(np.zeros(d), np.eye(d), df=e["nu"]).logpdf(x)
    if name.startswith("mos10"):
        comp = [stats.t(2.0, loc=m).logpdf(x).sum(1) for m in e["mode_centres"]]
        return special.logsumexp(np.array(comp), axis=0, b=e["component_weights"][:, None])
    if name.startswith("funnel"):
        v = x[:, 0]
        return (stats.norm(0, e["x0_sd"]).logpdf(v)
                + stats.norm.logpdf(x[:, 1:], scale=np.exp(v / 2)[:, None]).sum(1))
    if name == "banana":
        return stats.norm(0, 10).logpdf(x[:, 0]) + stats.norm.logpdf(x[:, 1], 0.03 * (x[:, 0] ** 2 - 100))
    if name == "hyperplane_disk200":
        return stats.multivariate_normal(np.zeros(x.shape[1]), e["cov"]).logpdf(x)
    if name in ("mog8", "gmm40_d2", "gmm40_d50", "two_modes"):
        scales = {"mog8": math.sqrt(0.7), "two_modes": math.sqrt(0.05)}.get(name, 1.0)
        comp = [stats.norm.logpdf(x, m, scales).sum(1) for m in e["mode_centres"]]
        return special.logsumexp(np.array(comp), axis=0, b=e["component_weights"][:, None])
    if name == "rings":
        r = np.linalg.norm(x, axis=1)
        radii, sigma, w = e["radii"], e["sigma"], e["radius_weights"]
        trunc = stats.norm.cdf(radii / sigma)
        dens = (w * stats.norm.pdf(r[:, None], radii, sigma) / trunc).sum(1)
        return np.log(dens) - np.log(2 * np.pi * r)
    if name == "axial_modes":
        d = x.shape[1]
        # Z = 2^d d int t^4 e^-t (1 - e^-t)^(d-1) dt, the integral as an exact binomial sum
        k = np.arange(d)
        integral = np.sum(special.comb(d - 1, k, exact=False) * (-1.0) ** k * 24.0 / (k + 1.0) ** 5)
        return 4 * np.log(np.abs(x).max(1)) - np.abs(x).sum(1) - (d * math.log(2) + math.log(d)
                                                                   + math.log(integral))
    if name.startswith("dw") or name == "manywell32":
        c4, c2, c1 = e["coefficients"]
        out = np.zeros(len(x))
        for i in range(x.shape[1]):
            v = lambda t, i=i: ((c4[i] * t * t + c2[i]) * t + c1[i]) * t  # noqa: E731
            z = integrate.quad(lambda t: math.exp(-v(t)), -np.inf, np.inf)[0]
            out += -v(x[:, i]) - math.log(z)
        return out
    raise KeyError(name)


@pytest.mark.parametrize("name", NAMES)
def test_log_z_normalizes_logp(built, name):
    target, ref, lp, _ = built(name)
    x = ref.draws[:50]
    assert np.allclose(lp[:50] - ref.extra["log_Z"], _scipy_logpdf(name, ref, x), rtol=1e-9, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# Mixtures: mode weights
# ---------------------------------------------------------------------------------------------

MODE_NAMES = [n for n in NAMES if n.startswith(("mos10", "mog8", "gmm40", "two_modes", "dw", "axial"))]


def _nearest(x, centres):
    d2 = (x ** 2).sum(1)[:, None] - 2 * x @ centres.T + (centres ** 2).sum(1)[None]
    return d2.argmin(1)


def _mode_z(ref, draws):
    centres, w = ref.extra["mode_centres"], ref.extra["mode_weights"]
    n = len(draws)
    frac = np.bincount(_nearest(draws, centres), minlength=len(w)) / n
    err = ref.extra.get("mode_weights_error", 0.0)
    return (frac - w) / np.sqrt(w * (1 - w) / n + err ** 2)


@pytest.mark.parametrize("name", MODE_NAMES)
def test_nearest_centre_fractions_match_mode_weights(built, name):
    _, ref, _, _ = built(name)
    z = _mode_z(ref, ref.draws)
    assert np.max(np.abs(z)) < _z_crit(ALPHA / len(MODE_NAMES), z.size)


def test_mode_weight_mutant_fails(built):
    """Two modes drawn 1:1 instead of 2:1 (half the first mode's draws dropped)."""
    _, ref, _, _ = built("two_modes")
    first = _nearest(ref.draws, ref.extra["mode_centres"]) == 0
    keep = ~first | (np.arange(len(first)) % 2 == 0)
    z = _mode_z(ref, ref.draws[keep])
    assert np.max(np.abs(z)) > _z_crit(ALPHA / len(MODE_NAMES), z.size)


MIXTURES = [n for n in NAMES if n.startswith(("mos10", "mog8", "gmm40", "two_modes"))]


def _responsibilities(name, ref, x):
    e = ref.extra
    if name.startswith("mos10"):
        comp = np.array([stats.t(2.0, loc=m).logpdf(x).sum(1) for m in e["mode_centres"]])
    else:
        scales = {"mog8": math.sqrt(0.7), "two_modes": math.sqrt(0.05)}.get(name, 1.0)
        comp = np.array([stats.norm.logpdf(x, m, scales).sum(1) for m in e["mode_centres"]])
    comp += np.log(e["component_weights"])[:, None]
    return np.exp(comp - special.logsumexp(comp, axis=0)).T


@pytest.mark.parametrize("name", MIXTURES)
def test_mean_responsibility_is_component_weight(built, name):
    """E_p[w_k p_k(X) / p(X)] = w_k whatever the overlap: component weights against the density."""
    _, ref, _, _ = built(name)
    resp = _responsibilities(name, ref, ref.draws)
    w = ref.extra["component_weights"]
    n = len(resp)
    sd = np.maximum(resp.std(0, ddof=1), np.sqrt(w * (1 - w) / n))  # never 0
    z = (resp.mean(0) - w) / (sd / math.sqrt(n))
    assert np.max(np.abs(z)) < _z_crit(ALPHA / len(MIXTURES), z.size)


def test_stored_constants_follow_the_documented_seed():
    consts = S._load_constants()
    assert consts["seed"] == S.CONSTANTS_SEED
    for key, (k, d) in {"gmm40_unit_K40_d2": (40, 2), "gmm40_unit_K40_d50": (40, 50),
                        "mos_unit_K10_d2": (10, 2), "mos_unit_K10_d10": (10, 10),
                        "mos_unit_K10_d50": (10, 50)}.items():
        assert np.array_equal(np.asarray(consts[key]), S._draw_unit_box(k, d))


def test_mode_weights_fall_back_when_half_width_changes():
    _, ref = CATALOGUE["mos10_d2"](half_width=10.0, n_exact=100)
    assert "mode_weights" not in ref.extra and ref.extra["half_width"] == 10.0
