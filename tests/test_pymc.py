"""Target.from_pymc (issue #17): eight schools written in PyMC against the hand-written catalogue
target (log density up to a constant, gradient), the Target contract, the result on the model's
scale, errors; and (slow) the posterior against posteriordb's reference draws."""

import subprocess
import sys

import numpy as np
import pytest

import mcsample as mc
from mcsample import _arviz


def test_import_mcsample_does_not_import_pymc():
    code = ("import sys, mcsample, mcsample.target, mcsample.sample; "
            "bad = [m for m in ('pymc', 'pytensor', 'mcsample._pymc') if m in sys.modules]; "
            "print(', '.join(bad))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import mcsample imported {out.stdout.strip()}"


@pytest.fixture(scope="module")
def pm():
    return pytest.importorskip("pymc")


@pytest.fixture(scope="module")
def catalogue():
    import targets
    return targets.get("eight_schools_noncentered")


def eight_schools(pm, y, sigma):
    """posteriordb's eight_schools_noncentered, as a PyMC user writes it."""
    coords = {"school": [f"s{j}" for j in range(len(y))]}
    with pm.Model(coords=coords) as model:
        mu = pm.Normal("mu", 0.0, 5.0)
        tau = pm.HalfCauchy("tau", 5.0)
        theta_trans = pm.Normal("theta_trans", 0.0, 1.0, dims="school")
        theta = pm.Deterministic("theta", mu + tau * theta_trans, dims="school")
        pm.Normal("y", theta, sigma=sigma, observed=y, dims="school")
    return model


@pytest.fixture(scope="module")
def schools(pm, catalogue):
    y, sigma = catalogue[0].args
    model = eight_schools(pm, y, sigma)
    return model, mc.Target.from_pymc(model, name="eight_schools_pymc")


# PyMC's flat vector is [mu, tau_log__, theta_trans[0..7]]; the catalogue's [theta_trans, mu, log_tau]
TO_CATALOGUE = np.r_[2:10, 0, 1]


def offsets_and_gradient_errors(lp_grad, ref_lp_grad, points):
    """log p - log p_ref at each point (constant if the densities agree up to normalisation) and
    the largest relative gradient difference."""
    offsets, grad_err = [], 0.0
    for x in points:
        lp, g = lp_grad(x)
        lp_ref, g_ref = ref_lp_grad(x[TO_CATALOGUE])
        offsets.append(lp - lp_ref)
        grad_err = max(grad_err, np.max(np.abs(g[TO_CATALOGUE] - g_ref) / (1.0 + np.abs(g_ref))))
    return np.array(offsets), grad_err


def random_points(n=20, seed=0):
    return np.random.default_rng(seed).normal(0.0, 1.5, size=(n, 10))


def test_eight_schools_logp_and_gradient_equal_the_catalogue_target(schools, catalogue):
    _, target = schools
    ref = catalogue[0]
    offsets, grad_err = offsets_and_gradient_errors(target.logp_grad, ref.logp_grad, random_points())
    assert np.ptp(offsets) < 1e-11, offsets
    assert grad_err < 1e-10
    # the constant is the normalising constants the catalogue drops: 17 normal densities (mu,
    # theta_trans, y) and the half-Cauchy's log(2 / (5 pi)); PyTensor casts the literal 5.0 to
    # float32 and takes its log in float32 (3e-8 off in each of the two priors)
    sigma = ref.args[1]
    assert offsets[0] == pytest.approx(-8.5 * np.log(2 * np.pi) - np.log(5.0) - np.sum(np.log(sigma))
                                       + np.log(2.0 / (5.0 * np.pi)), abs=1e-7)
    for x in random_points(3, seed=1):
        assert target.logp(x) == pytest.approx(target.logp_grad(x)[0], rel=1e-12)


def test_the_comparison_catches_a_missing_jacobian(schools, catalogue, pm):
    """The mutant: PyMC's log density without the log-Jacobian of tau's log transform differs
    from the catalogue's by log tau, not by a constant; the check above must see it."""
    model, _ = schools
    no_jacobian = model.compile_logp(jacobian=False, mode="FAST_COMPILE")
    with_jacobian = model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    ref = catalogue[0]

    def as_point(x):
        return {"mu": x[0], "tau_log__": x[1], "theta_trans": x[2:]}

    for fn, constant in ((with_jacobian, True), (no_jacobian, False)):
        offsets = np.array([fn(as_point(x)) - ref.logp(x[TO_CATALOGUE]) for x in random_points()])
        assert (np.ptp(offsets) < 1e-11) == constant


def test_target_contract(schools):
    model, target = schools
    assert target.dim == 10 and target.has_grad and target.is_compiled
    assert target.names == ["mu", "tau_log__"] + [f"theta_trans[{j}]" for j in range(8)]
    assert target.name == "eight_schools_pymc"
    assert target.model.data_names == ["y"]
    # the Target validated it: a finite test point (PyMC's initial point) and the gradient checked
    assert np.isfinite(target.logp(target.test_point))
    fd, _ = target._finite_difference_gradient(np.linspace(-1, 1, 10))
    assert np.allclose(target.logp_grad(np.linspace(-1, 1, 10))[1], fd, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="shape"):
        target.logp(np.zeros(9))
    with pytest.raises(ValueError, match="shape"):
        target.logp_grad(np.zeros((2, 10)))
    n = target.n_grad
    target.logp_grad(np.zeros(10))
    assert target.n_grad == n + 1
    # the compiled cfuncs the kernels call agree with the Python path
    x = random_points(1)[0]
    # (from compiled code: the guards rebuild the data from an address, which Python cannot)
    from mcsample.target import _call_logp, _call_logp_grad
    lp, g = _call_logp_grad(target.logp_grad_fn, x, target.kernel_args)
    assert lp == pytest.approx(target.logp_grad(x)[0], rel=1e-12) and np.allclose(g, target.logp_grad(x)[1])
    assert _call_logp(target.logp_fn, x, target.kernel_args) == pytest.approx(lp, rel=1e-12)


def test_new_data_without_compiling(schools, pm):
    model, target = schools
    y2 = target.model.data["y"] + 3.0
    moved = target.model.with_data(y=y2)
    assert moved._logp_grad_user is target._logp_grad_user  # the same compiled function
    x = random_points(1)[0]
    sigma = np.asarray(model["y"].owner.inputs[-1].eval())
    shift = (np.sum(-0.5 * ((y2 - (x[0] + np.exp(x[1]) * x[2:])) / sigma) ** 2)
             - np.sum(-0.5 * ((y2 - 3.0 - (x[0] + np.exp(x[1]) * x[2:])) / sigma) ** 2))
    assert moved.logp(x) - target.logp(x) == pytest.approx(shift, rel=1e-10)
    assert np.array_equal(target.model.data["y"], y2 - 3.0)  # the original target is unchanged
    with pytest.raises(ValueError, match="unknown data z"):
        target.model.with_data(z=y2)
    with pytest.raises(ValueError, match="dimension"):
        target.model.with_data(y=y2[None])


def test_a_pymc_target_pickles_as_its_model_and_is_not_compiled_again(schools):
    """Pickled, a target is its model's bytes, fingerprint and data; unpickled in a process that
    has compiled that model (here), it reuses the compiled functions. Other processes: the slow
    Dask test (tests/test_dask.py), which counts one compile per worker."""
    import pickle

    from mcsample import _pymc
    _, target = schools
    moved = target.model.with_data(y=target.model.data["y"] + 3.0)
    before = _pymc.travel_counts()
    blob = pickle.dumps(moved)
    assert len(blob) < 1_000_000
    back = pickle.loads(blob)
    assert _pymc.travel_counts() == (before.compiled, before.arrived + 1)  # arrived, not compiled
    assert back._logp_grad_user is target._logp_grad_user
    assert np.array_equal(back.args[0], moved.args[0]) and back.model.data_names == ["y"]
    x = random_points(1)[0]
    assert back.logp_grad(x)[0] == moved.logp_grad(x)[0] != target.logp_grad(x)[0]
    assert back.name == target.name and back.names == target.names
    assert pickle.loads(pickle.dumps(target)).logp_grad(x)[0] == target.logp_grad(x)[0]
    assert _pymc.travel_counts().compiled == before.compiled


def test_sample_returns_the_model_variables(schools):
    model, target = schools
    idata = mc.sample(target, "nuts", draws=200, tune=200, chains=2, seed=3, progressbar=False)
    post = idata.posterior
    assert set(post.data_vars) == {"mu", "tau", "theta_trans", "theta"}
    assert post["theta"].dims == ("chain", "draw", "school")
    assert list(post["school"].values) == [f"s{j}" for j in range(8)]
    assert post["mu"].shape == (2, 200) and post["theta"].shape == (2, 200, 8)
    x = _arviz.draws_array(idata)
    assert x.shape == (2, 200, 10)
    assert list(idata["unconstrained_posterior"]["param"].values) == target.names
    assert np.array_equal(post["mu"].values, x[..., 0])
    assert np.allclose(post["tau"].values, np.exp(x[..., 1]), rtol=1e-14)
    assert np.allclose(post["theta"].values, x[..., :1] + np.exp(x[..., 1:2]) * x[..., 2:], rtol=1e-12)
    assert "sample_stats" in _arviz.group_names(idata) and idata.attrs["sampler"] == "nuts"
    table = _arviz.summary(idata, var_names=["mu", "tau"])
    assert list(table.index) == ["mu", "tau"]
    # the same seed gives the same draws
    again = mc.sample(target, "nuts", draws=200, tune=200, chains=2, seed=3, progressbar=False)
    assert np.array_equal(_arviz.draws_array(again), x)


def test_compare_runs_on_a_pymc_target(schools):
    _, target = schools
    ds = mc.compare(target, ["nuts", "gpss"], budget=4000, chains=2, tune=100, progressbar=False)
    assert list(ds["status"].values) == ["ok", "ok"]
    assert np.all(np.isfinite(ds["ess_bulk"].values))


def test_no_free_variables(pm):
    with pm.Model() as model:
        pm.Normal("y", 0.0, 1.0, observed=np.zeros(3))
    with pytest.raises(ValueError, match="no free variables"):
        mc.Target.from_pymc(model)


def test_discrete_free_variables_are_named(pm):
    with pm.Model() as model:
        n = pm.Poisson("n", 3.0)
        pm.Normal("mu", 0.0, 1.0)
        pm.Normal("y", n, 1.0, observed=np.zeros(3))
    with pytest.raises(ValueError, match=r"discrete free variables: n\b.*Marginalise"):
        mc.Target.from_pymc(model)


def test_not_a_model():
    pytest.importorskip("pymc")
    with pytest.raises(ValueError, match="pymc.Model"):
        mc.Target.from_pymc(object())


def test_an_op_without_numba_implementation_is_named(pm):
    import pytensor.tensor as pt
    from pytensor.graph.basic import Apply
    from pytensor.graph.op import Op

    class BlackBoxSine(Op):
        def make_node(self, a):
            a = pt.as_tensor_variable(a)
            return Apply(self, [a], [a.type()])

        def perform(self, node, inputs, outputs):
            outputs[0][0] = np.sin(inputs[0])

        def grad(self, inputs, output_grads):
            return [output_grads[0] * pt.cos(inputs[0])]

    with pm.Model() as model:
        mu = pm.Normal("mu", 0.0, 1.0)
        pm.Potential("black_box", BlackBoxSine()(mu))
    with pytest.raises(ValueError, match="BlackBoxSine"):
        mc.Target.from_pymc(model)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["nuts", "gpss"])
def test_eight_schools_posterior_matches_posteriordb(schools, catalogue, sampler):
    """Means and sds of mu, tau, theta within MCSE-derived bounds (ours and the reference's) of
    posteriordb's reference draws."""
    from mcsample.testing.accuracy import assert_matches_reference
    _, target = schools
    _, ref = catalogue
    idata = mc.sample(target, sampler, draws=4000, tune=1000, chains=4, seed=11, progressbar=False)
    post = idata.posterior
    x = np.concatenate([post["mu"].values[..., None], post["tau"].values[..., None], post["theta"].values], axis=-1)
    assert_matches_reference(x, ref.mean, ref.sd, len(ref.draws))
