# Builds and executes notebooks/pymc.ipynb: PYTHONPATH=. python notebooks/make_pymc_notebook.py
# (needs the [pymc] and [notebooks] extras). PyMC models as mcsample targets (issue #17): eight schools
# (non-centred) and a hierarchical logistic regression, sampled by every mcsample family and by
# pm.sample, summaries side by side. Takes about 10 minutes on 2 busy cores (compilation included).
import os
import time

import nbformat as nbf
from nbclient import NotebookClient

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
    md("# PyMC models as mcsample targets\n\n"
       "`mc.Target.from_pymc(model)` turns a PyMC model into a target on the model's **unconstrained** flat "
       "vector (PyMC's value variables, `tau_log__` for a positive `tau`, with the log-Jacobians of the "
       "transforms), its log density and gradient compiled to numba by PyTensor. Every mcsample sampler then "
       "runs on it, and `mc.sample` returns the model's own variables on their constrained scale with PyMC's "
       "names, dims and coords (and the deterministics), as `pm.sample` does; the sampler's unconstrained draws "
       "stay in the `unconstrained_posterior` group.\n\n"
       "Two models: eight schools, non-centred (d = 10), and a hierarchical logistic regression on simulated "
       "data (d = 13, data in `pm.Data`). Each is sampled by mcsample's NUTS and GPSS, by every other family "
       "registered in `mc.samplers.available()`, and by PyMC's own `pm.sample`, and the `az.summary` tables "
       "are put side by side."),
    code("import time, warnings\nimport numpy as np\nimport pandas as pd\nimport arviz as az\nimport pymc as pm\n"
         "import mcsample as mc\nfrom mcsample import _arviz\n\n"
         "warnings.filterwarnings('ignore', category=FutureWarning)\n"
         "pd.set_option('display.width', 250); pd.set_option('display.max_columns', 30)\n"
         "T_START = time.perf_counter()\n"
         "print('pymc', pm.__version__, '| mcsample samplers:', mc.samplers.available())"),
    md("## Eight schools, non-centred\n\nThe model of posteriordb's `eight_schools_noncentered`, written as a PyMC user "
       "writes it. `theta` is a deterministic."),
    code("y = np.array([28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0])\n"
         "sigma = np.array([15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0])\n"
         "with pm.Model(coords={'school': ['Choate', 'Deerfield', 'Phillips Andover', 'Phillips Exeter',\n"
         "                                 'Hotchkiss', 'Lawrenceville', \"St. Paul's\", 'Mt. Hermon']}) as schools:\n"
         "    mu = pm.Normal('mu', 0.0, 5.0)\n"
         "    tau = pm.HalfCauchy('tau', 5.0)\n"
         "    theta_trans = pm.Normal('theta_trans', 0.0, 1.0, dims='school')\n"
         "    theta = pm.Deterministic('theta', mu + tau * theta_trans, dims='school')\n"
         "    pm.Normal('y', theta, sigma=sigma, observed=y, dims='school')\n\n"
         "t0 = time.perf_counter()\n"
         "target = mc.Target.from_pymc(schools, name='eight_schools')\n"
         "print(f'from_pymc: {time.perf_counter() - t0:.1f} s;', target)\n"
         "print('parameters:', target.names)\nprint('data passed as arguments:', target.model.data_names)"),
    md("NUTS and GPSS, 4 chains of 1000 draws after 1000 warmup iterations. The result's `posterior` has the "
       "model's variables with the `school` coordinate; `unconstrained_posterior` has the sampler's `x`."),
    code("runs = {}\nfor name in ['nuts', 'gpss']:\n"
         "    runs[name] = mc.sample(target, name, draws=1000, tune=1000, chains=4, seed=1, progressbar=False)\n"
         "    a = runs[name].attrs\n"
         "    print(f\"{name}: {a['n_logp'] + a['n_grad']} evaluations, {a['wall_time']:.1f} s\")\n"
         "runs['nuts']"),
    code("runs['nuts'].posterior"),
    md("PyMC's own NUTS on the same model, with its defaults:"),
    code("t0 = time.perf_counter()\n"
         "with schools:\n"
         "    pm_idata = pm.sample(draws=1000, tune=1000, chains=4, cores=2, random_seed=1, progressbar=False)\n"
         "print(f'pm.sample: {time.perf_counter() - t0:.1f} s (compilation included)')"),
    code("cols = ['mean', 'sd', 'ess_bulk', 'r_hat']\n"
         "def side_by_side(results, var_names):\n"
         "    tables = {k: az.summary(v, var_names=var_names)[cols] for k, v in results.items()}\n"
         "    return pd.concat(tables, axis=1)\n\n"
         "side_by_side({'mcsample nuts': runs['nuts'], 'mcsample gpss': runs['gpss'], 'pm.sample': pm_idata},\n"
         "             ['mu', 'tau', 'theta'])"),
    md("posteriordb's reference (Stan, 10,000 draws) for the same quantities, from the `targets` catalogue:"),
    code("import targets\n_, ref = targets.get('eight_schools_noncentered')\n"
         "pd.DataFrame({'mean': ref.mean, 'sd': ref.sd}, index=ref.names).round(2).T"),
    md("`az.plot_trace` reads the result as it reads `pm.sample`'s:"),
    code("az.plot_trace(runs['nuts'], var_names=['mu', 'tau'], compact=True);"),
    md("The posterior has PyMC's layout, so PyMC's posterior predictive sampling works on it as it is:"),
    code("with schools:\n"
         "    ppc = pm.sample_posterior_predictive(runs['nuts'], progressbar=False)\n"
         "ppc.posterior_predictive['y'].mean(('chain', 'draw')).to_series().round(1)"),
    md("Every other family on the same target (particle samplers: a chain is an independent run, a draw a particle, "
       "and the budget is set in evaluations). "
       "Diffusion-based families are approximate: compare their means with the reference above."),
    code("others = [s for s in mc.samplers.available() if s not in ('nuts', 'gpss')]\n"
         "def run_family(target, name, seed):\n"
         "    \"\"\"Markov chains: 4 x 1000 draws after 1000 warmup. Particle samplers: 2 runs of 500 particles\n"
         "    with 10^6 evaluations in all (1000 per particle), which each family turns into its own time grid.\"\"\"\n"
         "    if mc.samplers.resolve(name, {}).kind == 'particles':\n"
         "        return mc.sample(target, name, draws=500, chains=2, seed=seed, max_evals=1e6, progressbar=False)\n"
         "    return mc.sample(target, name, draws=1000, tune=1000, chains=4, seed=seed, progressbar=False)\n\n"
         "rows = {}\nfor name in others:\n"
         "    t0 = time.perf_counter()\n"
         "    try:\n"
         "        r = run_family(target, name, seed=1)\n"
         "    except Exception as err:\n"
         "        print(f'{name}: {type(err).__name__}: {err}'); continue\n"
         "    s = az.summary(r, var_names=['mu', 'tau'])\n"
         "    rows[name] = {'mu mean': s.loc['mu', 'mean'], 'mu sd': s.loc['mu', 'sd'], 'tau mean': s.loc['tau', 'mean'],\n"
         "                  'tau sd': s.loc['tau', 'sd'], 'evaluations': r.attrs['n_logp'] + r.attrs['n_grad'],\n"
         "                  'seconds': round(time.perf_counter() - t0, 1)}\n"
         "pd.DataFrame(rows).T"),
    md("## Hierarchical logistic regression\n\n"
       "Simulated data: 400 rows in 8 groups, 3 covariates; varying intercepts (non-centred) and common slopes. "
       "The design matrix, the group index and the outcomes are in `pm.Data` / `observed`, so they become "
       "arguments of the compiled function: `target.model.with_data(...)` gives a target on a new dataset "
       "without compiling again."),
    code("rng = np.random.default_rng(0)\nn, groups = 400, 8\n"
         "group = rng.integers(0, groups, n)\nX = rng.normal(size=(n, 3))\n"
         "alpha_true = 0.5 + 0.8 * rng.normal(size=groups)\nbeta_true = np.array([1.0, -0.5, 0.25])\n"
         "y_obs = (rng.random(n) < 1 / (1 + np.exp(-(alpha_true[group] + X @ beta_true)))).astype(np.int64)\n\n"
         "coords = {'group': [f'g{j}' for j in range(groups)], 'covariate': ['x1', 'x2', 'x3'], 'obs': np.arange(n)}\n"
         "with pm.Model(coords=coords) as logistic:\n"
         "    X_data = pm.Data('X', X, dims=('obs', 'covariate'))\n"
         "    g_data = pm.Data('group_idx', group, dims='obs')\n"
         "    mu_a = pm.Normal('mu_a', 0.0, 1.5)\n"
         "    sigma_a = pm.HalfNormal('sigma_a', 1.0)\n"
         "    z_a = pm.Normal('z_a', 0.0, 1.0, dims='group')\n"
         "    alpha = pm.Deterministic('alpha', mu_a + sigma_a * z_a, dims='group')\n"
         "    beta = pm.Normal('beta', 0.0, 1.0, dims='covariate')\n"
         "    pm.Bernoulli('y', logit_p=alpha[g_data] + X_data @ beta, observed=y_obs, dims='obs')\n\n"
         "t0 = time.perf_counter()\n"
         "ltarget = mc.Target.from_pymc(logistic, name='hierarchical_logistic')\n"
         "print(f'from_pymc: {time.perf_counter() - t0:.1f} s;', ltarget, '| data:', ltarget.model.data_names)"),
    code("lruns = {name: mc.sample(ltarget, name, draws=1000, tune=1000, chains=4, seed=2, progressbar=False)\n"
         "         for name in ['nuts', 'gpss']}\n"
         "with logistic:\n"
         "    lpm = pm.sample(draws=1000, tune=1000, chains=4, cores=2, random_seed=2, progressbar=False)\n"
         "side_by_side({'mcsample nuts': lruns['nuts'], 'mcsample gpss': lruns['gpss'], 'pm.sample': lpm},\n"
         "             ['mu_a', 'sigma_a', 'beta', 'alpha'])"),
    code("rows = {}\nfor name in others:\n"
         "    t0 = time.perf_counter()\n"
         "    try:\n"
         "        r = run_family(ltarget, name, seed=2)\n"
         "    except Exception as err:\n"
         "        print(f'{name}: {type(err).__name__}: {err}'); continue\n"
         "    s = az.summary(r, var_names=['mu_a', 'sigma_a', 'beta'])\n"
         "    rows[name] = {**{f'{k} mean': s.loc[k, 'mean'] for k in s.index},\n"
         "                  'evaluations': r.attrs['n_logp'] + r.attrs['n_grad'], 'seconds': round(time.perf_counter() - t0, 1)}\n"
         "pd.DataFrame(rows).T"),
    md("A new dataset, same model, no new compile: the compiled functions are reused (`with_data` returns a new "
       "Target)."),
    code("y_new = (rng.random(n) < 1 / (1 + np.exp(-(alpha_true[group] + X @ (-beta_true))))).astype(np.int64)\n"
         "t0 = time.perf_counter()\nnew_target = ltarget.model.with_data(y=y_new)\n"
         "print(f'with_data: {time.perf_counter() - t0:.2f} s')\n"
         "new = mc.sample(new_target, 'nuts', draws=1000, tune=1000, chains=4, seed=3, progressbar=False)\n"
         "az.summary(new, var_names=['beta'])[cols]"),
    md("## What is and is not covered\n\n"
       "* Free variables come back constrained, with dims and coords, plus the model's deterministics; "
       "`pm.sample_posterior_predictive` works on the result.\n"
       "* Observed values and `pm.Data` are arguments of the compiled function; numpy arrays written directly "
       "into the model (not through `pm.Data`) are folded into it, and a new one means a new `from_pymc`.\n"
       "* Discrete free variables are refused with a message (none of mcsample's samplers moves on a discrete "
       "space); so is an op without a numba implementation, by name.\n"
       "* The compiled functions are closures and do not pickle: run PyMC targets on threads (the default), "
       "not on process pools or Dask workers."),
    code("print(f'notebook executed in {time.perf_counter() - T_START:.0f} s (compilation included)')"),
]

here = os.path.dirname(os.path.abspath(__file__))
start = time.perf_counter()
client = NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": here}})
client.execute()
nbf.write(nb, os.path.join(here, "pymc.ipynb"))
print(f"ok ({time.perf_counter() - start:.0f} s)")
