# Builds and executes notebooks/ensemble_score.ipynb: python notebooks/make_ensemble_notebook.py
# (needs the [notebooks] extra). The ensemble score sampler against NUTS on multimodal and strongly
# non-Gaussian targets, d = 1..20, at equal evaluations and at equal wall time. ~7-12 minutes on 2 cores
# (15 minutes at load 6 on 2026-12-01).
import os
import time

import nbformat as nbf
from nbclient import NotebookClient

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
    md("# Ensemble score sampler: gradient-free Föllmer sampling\n\n"
       "Riel & Bischoff (2025), *Gradient-free score-based sampling methods with ensembles* (arXiv:2401.17539), "
       "building on the Schrödinger–Föllmer sampler of Huang et al. (2021). The Föllmer process starts every "
       "particle at a point and reaches the target at time 1:\n\n"
       "X₀ = 0,  dX = b(X, t) dt + √γ dB,  b(x, t) = (E[X₁ | X_t = x] − x) / (1 − t),\n\n"
       "where X₁ | X_t = x has density ∝ p(x₁)/N(x₁; 0, γI) · N(x₁; x, γ(1−t)I). The drift is a posterior mean "
       "under a Gaussian likelihood, estimated by importance sampling with log densities only. mcsample's default "
       "estimator pools the candidates of groups of 100 particles (each evaluation serves the whole group; the "
       "notes' reconstruction of the paper's *ensemble* drift, whose body we could not read); `estimator=\"particle\"` "
       "is Huang et al.'s per-particle estimate. Half of a particle's candidates come from N(x, γ(1−t)), half from "
       "the likelihood N(x/t, γ(1−t)/t), weighed against their mixture; half of each step's candidates are shared "
       "equally, the other half go to the particles whose last estimate rested on few candidates (1/ESS). "
       "Before the run, bulk searches (CMA-ES; up to 4 rounds while every search ended in one mode) and a ladder "
       "of importance rounds standardise the target and "
       "choose γ so that the reference N(0, γI) covers all of it; a pilot ensemble of a quarter of the particles "
       "then runs in that frame, and its output's mean and covariance become the frame of the run. "
       "NUTS is the gradient-based control: it gets the same number of evaluations (a gradient counts as one)."),
    code("import time\nimport warnings\nimport numpy as np\nimport pandas as pd\nimport matplotlib.pyplot as plt\n"
         "import mcsample as mc\nimport targets\nfrom targets import synthetic\nfrom mcsample import _arviz, metrics\n"
         "from mcsample.testing import models\n\n"
         "warnings.simplefilter('ignore', mc.ConvergenceWarning)  # NUTS stuck in modes is the point here\n"
         "plt.rcParams.update({'figure.dpi': 80, 'axes.grid': True, 'grid.alpha': 0.3})\n"
         "T_START = time.perf_counter()\n\n\n"
         "def run(target, sampler, draws, chains=4, seed=1, **kw):\n"
         "    t0 = time.perf_counter()\n"
         "    idata = mc.sample(target, sampler, draws=draws, chains=chains, seed=seed, progressbar=False, **kw)\n"
         "    x = np.asarray(_arviz.group(idata, 'posterior')['x'].values).reshape(-1, target.dim)\n"
         "    return x, int(idata.attrs['n_logp'] + idata.attrs['n_grad']), time.perf_counter() - t0, idata\n\n\n"
         "def versus_nuts(target, seed=1):\n"
         "    \"\"\"The ensemble sampler (4 runs of 1000 particles), NUTS at its evaluations, and NUTS at its wall time.\"\"\"\n"
         "    xe, evals, secs, idata = run(target, 'ensemble_score', 1000, seed=seed)\n"
         "    xn, n_evals, n_secs, _ = run(target, 'nuts', evals // 4, seed=seed, max_evals=evals)\n"
         "    per_draw = n_secs / len(xn)\n"
         "    xw, w_evals, w_secs, _ = run(target, 'nuts', max(50, int(secs / per_draw / 4)), seed=seed)\n"
         "    return dict(ensemble=(xe, evals, secs), nuts_same_evals=(xn, n_evals, n_secs),\n"
         "                nuts_same_time=(xw, w_evals, w_secs)), idata"),
    md("## 1. Eight Gaussians on a circle (mog8, d = 2)\n\nEqual weights, radius 10, sd 0.84, off the origin. NUTS "
       "chains start in one mode each and stay there; the Föllmer particles are spread by the drift from the start."),
    code("target, ref = targets.get('mog8')\ncentres, weights = ref.extra['mode_centres'], ref.extra['mode_weights']\n"
         "res, idata = versus_nuts(target)\n"
         "fig, axes = plt.subplots(1, 3, figsize=(13, 4), sharex=True, sharey=True)\n"
         "rows = []\n"
         "for ax, (name, (x, evals, secs)) in zip(axes, res.items()):\n"
         "    ax.scatter(x[:4000, 0], x[:4000, 1], s=2, alpha=0.4)\n"
         "    ax.scatter(centres[:, 0], centres[:, 1], c='r', marker='x')\n"
         "    tv = metrics.total_variation(metrics.mode_weights(x, centres), weights)\n"
         "    ax.set_title(f'{name}: TV {tv:.3f}')\n"
         "    rows.append(dict(target='mog8', sampler=name, evaluations=evals, seconds=round(secs, 1), mode_tv=round(tv, 3)))\n"
         "plt.show()\npd.DataFrame(rows)"),
    md("Per-step diagnostics sit in the `step_stats` group: the importance-sampling effective sample size of the "
       "drift estimate (mean and minimum over particles) and the mean drift norm, along the time grid."),
    code("steps = _arviz.group(idata, 'step_stats')\n"
         "fig, axes = plt.subplots(1, 2, figsize=(10, 3))\n"
         "t = steps['time'].values[0]\n"
         "axes[0].semilogy(t, steps['importance_ess'].values.T, alpha=0.7); axes[0].set(xlabel='t', title='mean ESS per particle (4 runs)')\n"
         "axes[1].semilogy(t, steps['drift_norm'].values.T, alpha=0.7); axes[1].set(xlabel='t', title='mean drift norm')\n"
         "plt.show()"),
    md("## 2. Unequal weights: 0.3 / 0.7 at ∓3 (sd 0.5, d = 1)\n\nLangevin-type samplers keep whatever split "
       "their starting points gave them; the drift of the Föllmer process carries the weights."),
    code("mix = models.mixture([0.3, 0.7], np.array([[-3.0], [3.0]]), 0.5, name='mix_0.3_0.7').target\n"
         "res, _ = versus_nuts(mix)\n"
         "fig, ax = plt.subplots(figsize=(7, 3))\n"
         "for name, (x, evals, secs) in res.items():\n"
         "    w = metrics.mode_weights(x, np.array([[-3.0], [3.0]]))\n"
         "    ax.hist(x[:, 0], bins=120, density=True, histtype='step', label=f'{name}: weight(-3) = {w[0]:.3f}')\n"
         "    rows.append(dict(target='mix 0.3/0.7', sampler=name, evaluations=evals, seconds=round(secs, 1),\n"
         "                     mode_tv=round(abs(w[0] - 0.3), 3)))\n"
         "ax.legend(); plt.show()"),
    md("## 3. Strongly non-Gaussian: banana (d = 2) and Neal's funnel (d = 10)\n\nMeans and sds against the exact "
       "reference, in reference sds. The funnel's neck is where every fixed-scale method struggles."),
    code("fig, axes = plt.subplots(1, 2, figsize=(11, 4))\n"
         "for ax, name in zip(axes, ['banana', 'funnel10']):\n"
         "    target, ref = targets.get(name)\n"
         "    res, _ = versus_nuts(target)\n"
         "    for sampler, (x, evals, secs) in res.items():\n"
         "        if sampler != 'nuts_same_time':\n"
         "            ax.scatter(x[:3000, 0], x[:3000, 1], s=2, alpha=0.3, label=sampler)\n"
         "        rows.append(dict(target=name, sampler=sampler, evaluations=evals, seconds=round(secs, 1),\n"
         "                         max_mean_err_sd=round(float(np.max(np.abs(x.mean(0) - ref.mean) / ref.sd)), 3),\n"
         "                         max_sd_ratio_err=round(float(np.max(np.abs(x.std(0) / ref.sd - 1))), 3)))\n"
         "    ax.set_title(name); ax.legend(markerscale=5)\nplt.show()"),
    md("## 4. Two modes with weights 2:1 as the dimension grows (d = 2, 5, 10, 20)\n\n"
       "`two_modes`: 2/3 N(−(2/3)·1, 0.05 I) + 1/3 N((4/3)·1, 0.05 I). The drift's importance sampling sees the "
       "target through Gaussians the size of the reference: its effective sample size falls with d, and the "
       "standardising searches must find both modes."),
    code("for d in (2, 5, 10, 20):\n"
         "    target, ref = synthetic.two_modes(d)\n"
         "    x, evals, secs, _ = run(target, 'ensemble_score', 500, chains=2)\n"
         "    xn, n_evals, n_secs, _ = run(target, 'nuts', evals // 4, max_evals=evals)\n"
         "    for sampler, xx, ev, s in (('ensemble', x, evals, secs), ('nuts_same_evals', xn, n_evals, n_secs)):\n"
         "        w = metrics.mode_weights(xx, ref.extra['mode_centres'])\n"
         "        rows.append(dict(target=f'two_modes d={d}', sampler=sampler, evaluations=ev, seconds=round(s, 1),\n"
         "                         mode_tv=round(metrics.total_variation(w, ref.extra['mode_weights']), 3)))\n"
         "table = pd.DataFrame(rows)\ntable"),
    code("ens = table[table.sampler == 'ensemble']\n"
         "print('ensemble evaluations per sample (draws = 4 x 1000, two_modes 2 x 500):',\n"
         "      (ens.evaluations / np.where(ens.target.str.startswith('two_modes'), 1000, 4000)).round().tolist())"),
    md("## Summary\n\nRead the table above. At equal evaluations, and at equal wall time, NUTS keeps each chain's "
       "starting mode on the mixtures (its mode weights are those of its starting points), while the Föllmer particles "
       "carry the weights in low dimension (mog8 TV 0.013, the 0.3/0.7 mixture 0.000). On the banana the ensemble is "
       "within 0.035 sd and 7% of the sds, NUTS at equal evaluations within 0.05 sd and 11%, NUTS at equal wall time "
       "within 0.01 sd and 2%. The ensemble sampler spends 2,030-2,110 evaluations per particle, standardisation and "
       "pilot included; it has no Metropolis correction, so it is biased at any finite grid and pool. "
       "**Where it fails here:** on the funnel its weights collapse (the warning above, median ESS 3.8 below 5) and "
       "its means are 1.7 sd off, one sd 3.6x the reference's: use NUTS. On two_modes at d = 10 one of the two runs "
       "put every particle in the heavier mode (first-mode weights 0.696 and 1.000 per run, measured with the same call "
       "outside the notebook), so the pooled TV is 0.18: a run can still lose a mode, although the searches now run "
       "in rounds while every search ended in one mode and `benchmarks/ensemble_score_two_modes.py` found no run of "
       "20 losing one at d = 8 (seeds 1-20); this seed at d = 10 is a miss the warnings do not flag. d = 5, which "
       "lost a mode the same way before the rounds (TV 0.18 in the run of 2026-12-01 00:04), is right now (0.010). "
       "At d = 20 the run warns before it starts (beyond d = 10, where it was measured to work) and both runs warn "
       "that the weights collapsed (median ESS 3.1 and 2.8, below 10); its TV is 0.11. The dimension benchmark "
       "(`benchmarks/results/ensemble_score.md`, `python benchmarks/ensemble_score.py`, 500 particles, seeds 1-2) "
       "finds it right to d = 10, at d = 20 two_modes TV 0.22/0.33 and a Gaussian's means 0.095-0.103 sd off, at "
       "d = 50 0.20-0.27 sd. Run several chains: a lost mode shows as runs that disagree."),
    code("print(f'notebook run time: {time.perf_counter() - T_START:.0f} s')"),
]
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "ensemble_score.ipynb")
t0 = time.time()
NotebookClient(nb, timeout=1800, kernel_name="python3").execute()
nbf.write(nb, path)
print(f"wrote {path} in {time.time() - t0:.0f} s")
