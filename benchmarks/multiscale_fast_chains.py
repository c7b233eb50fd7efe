"""Fast chains alone on rho(y | x) for 40-MoG d = 2 in the defaults' frame (issue 13).

    python benchmarks/multiscale_fast_chains.py LAMBDAS STABILITIES STEPS
    python benchmarks/multiscale_fast_chains.py 0.01,0.05 0.5,0.05 400
    python benchmarks/multiscale_fast_chains.py 0.01,0.3 0.1,0.2 400

400 chains started from exact joint draws (u ~ pi, x = sqrt(lam) u + sqrt(1 - lam) z, y = sqrt(lam) u),
so y is an exact draw of rho(y | x), x held fixed: a correct rho-sampler keeps the modes' shares of
the clean positions at pi's. Per (lambda, stability): the guarded SK-ROCK fast step (``_guarded_fast_step``)
at Delta = stability x bound / (k + Lip / lambda), the pilot's frame and Lip (MultALMC defaults, seed 1);
the mode TV from pi at the start and after each quarter (0.12 for an exact sample of 400), the share
of chains whose mode changed, the largest single-step jump in the target's units, mode 11's share (an
isolated mode at the box's edge, 1/40 in pi) and the four largest shares.
"""
import sys, numpy as np, targets, warnings
from mcsample.samplers.multiscale import _GUARD_COLUMNS, _LEFT, MultALMC, _guarded_fast_step
from mcsample._core.skrock import skrock_coefficients, stability_bound
from mcsample._core.slice import frame_to_x
warnings.simplefilter("ignore")
t, ref = targets.get("gmm40_d2")
run = MultALMC().start_run(t, np.random.default_rng(1), None, 0, 8, 3e5)
frame, lip = run.frame, run.lipschitz
kind, centre, scale, chol = frame
cen = ref.extra["mode_centres"]; truth = ref.extra["mode_weights"]
Linv = np.linalg.inv(chol)
def lab(u):
    x = frame_to_x(frame, u)
    return ((x[:, None] - cen[None]) ** 2).sum(-1).argmin(1)
def tv(l): return 0.5 * np.abs(np.bincount(l, minlength=40) / len(l) - truth).sum()
coef = skrock_coefficients(5, 0.05); bound = stability_bound(5, 0.05)
N = 400
rng = np.random.default_rng(7)
for lam in [float(a) for a in sys.argv[1].split(",")]:
    for stab in [float(a) for a in sys.argv[2].split(",")]:
        idx = rng.choice(len(ref.draws), N, replace=False)
        u = (Linv @ (ref.draws[idx] - centre).T).T
        xs = np.sqrt(lam) * u + np.sqrt(1 - lam) * rng.standard_normal(u.shape)
        ys = np.sqrt(lam) * u
        k = 1.0 / (1.0 - lam)
        delta = min(stab * bound / (k + lip / lam), 1.0)
        guard = np.zeros((N, _GUARD_COLUMNS)); guard[:, _LEFT] = np.inf
        work = np.zeros((13, 2)); beta = 1 / np.sqrt(lam)
        l0 = lab(ys / np.sqrt(lam)); out = [round(tv(l0), 3)]
        g = np.random.default_rng(3)
        maxjump = 0.0
        steps = int(sys.argv[3])
        for it in range(steps):
            for p in range(N):
                y0 = ys[p].copy()
                _guarded_fast_step(t.logp_grad_fn, t.kernel_args, frame, g, ys[p], delta, guard, p, bound, stab,
                                   coef.mu, coef.nu, coef.kappa, xs[p], k, 0.0, beta, beta, work)
                maxjump = max(maxjump, np.linalg.norm(chol @ (ys[p] - y0)) / np.sqrt(lam))
            if (it + 1) % (steps // 4) == 0:
                out.append(round(tv(lab(ys / np.sqrt(lam))), 3))
        l1 = lab(ys / np.sqrt(lam))
        w = np.bincount(l1, minlength=40) / N
        print(f"lam {lam} stability {stab} delta {delta:.3g} fast time {steps*delta:.3g}: TV path {out}, changed {np.mean(l1 != l0):.3f}, "
              f"max jump (clean) {maxjump:.1f}, mode 11 weight {w[11]:.3f}, top {np.argsort(-w)[:4]} {np.sort(w)[::-1][:4]}", flush=True)
