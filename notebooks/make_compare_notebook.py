# Builds and executes notebooks/compare.ipynb: python notebooks/make_compare_notebook.py (needs the [notebooks] extra)
import nbformat as nbf
from nbclient import NotebookClient

nb = nbf.v4.new_notebook()
md, code = nbf.v4.new_markdown_cell, nbf.v4.new_code_cell
nb.cells = [
    md("# Comparing samplers at an equal budget\n\n"
       "`mc.compare` runs several samplers on one target, gives each the same number of target "
       "evaluations (warmup included; a log density or a gradient counts as one) and measures the "
       "draws against the target's reference answer. Until the other families land, NUTS is the only "
       "sampler; the point here is the harness and what it shows about NUTS."),
    code("import numpy as np\nimport mcsample as mc\nimport targets\nfrom IPython.display import Image, display\n"
         "print(mc.samplers.available())\nprint(targets.available())"),
    md("## A 2-D mixture of 40 Gaussians\n\nMeans uniform in [-20, 20]^2 (stored constants), unit variances. "
       "Gradient-based MCMC started in [-2, 2]^2 cannot hop between well separated modes."),
    code("ds = mc.compare('gmm40_d2', ['nuts'], budget=2e5, chains=4, seed=0, progressbar=False, out='compare_out/gmm40_d2')\n"
         "print(mc.compare_table(ds))"),
    code("display(Image('compare_out/gmm40_d2/pairs.png'))\ndisplay(Image('compare_out/gmm40_d2/mode_weights.png'))"),
    md("R-hat far above 1.01, an ESS of a handful of draws and a mode-weight total variation of about 0.2: "
       "the chains each cover a neighbourhood of modes and disagree about their weights."),
    md("## A real posterior: eight schools (non-centred)\n\nHere NUTS is the right tool: the reference is "
       "posteriordb's Stan run, and NUTS matches it within Monte Carlo error."),
    code("ds = mc.compare('eight_schools_noncentered', ['nuts'], budget=2e5, seed=0, progressbar=False, "
         "out='compare_out/eight_schools')\nprint(mc.compare_table(ds))"),
    code("display(Image('compare_out/eight_schools/marginals.png'))"),
    md("## The same on your own target\n\nA `Target` plus a `Reference` (here: exact draws of a correlated Gaussian)."),
    code("from mcsample.testing import models\nfrom targets import Reference\n\n"
         "model = models.gaussian(np.zeros(3), np.array([[1.0, 0.9, 0.0], [0.9, 1.0, 0.0], [0.0, 0.0, 4.0]]))\n"
         "exact = model.exact(np.random.default_rng(1), 20000)\n"
         "ref = Reference.from_draws(exact, model.target.names, source='exact draws')\n"
         "ds = mc.compare(model.target, ['nuts'], budget=1e5, reference=ref, progressbar=False)\n"
         "print(mc.compare_table(ds))"),
]
client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": "."}})
client.execute()
nbf.write(nb, "compare.ipynb")
print("ok")
