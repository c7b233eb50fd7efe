"""Regressions of the API fuzz (``benchmarks/api_fuzz.py``, findings in
``benchmarks/results/api_fuzz.md``): inputs nobody tuned for must give a clear ``ValueError``
naming the argument, or work; each test here failed before its fix."""

import concurrent.futures as cf
import dataclasses

import numba
import numpy as np
import pytest

import mcsample as mc
from mcsample.samplers import _REGISTRY

pytestmark = pytest.mark.filterwarnings("ignore::mcsample.ConvergenceWarning")  # chains of 20 draws


@numba.njit
def gauss(x, c):
    return -0.5 * np.sum((x - c) ** 2)


@numba.njit
def gauss_grad(x, c):
    return -0.5 * np.sum((x - c) ** 2), -(x - c)


@numba.njit
def scaled(x, s):
    return -0.5 * np.sum(x * x) / s


@pytest.fixture(scope="module")
def target():
    return mc.Target(gauss, 2, logp_grad=gauss_grad, args=(np.zeros(2),))


def run(target, sampler="gpss", **kw):
    kw = {**dict(draws=20, tune=20, chains=2, seed=1, progressbar=False), **kw}
    return mc.sample(target, sampler, **kw)


# -- plain Python targets ------------------------------------------------------------------------

def py_logp(x, c):
    return -0.5 * float(np.sum(x * x))


def py_logp_grad(x, c):
    if x[0] < -1.0:
        raise RuntimeError(f"undefined at {x}")
    if x[0] > 1.5:
        return 0.0, np.zeros(x.size + 1)  # a gradient of the wrong length there
    return -0.5 * float(np.sum(x * x)), -x


def test_python_target_that_fails_mid_run_rejects_the_point():
    """Inside a kernel an exception of a plain Python target was dropped by numba and read as 0.0
    (flat), so the chains ran off to |x| ~ 1e6 through the region where it failed; a gradient of
    the wrong length was passed on. Both must be a rejected proposal, as for compiled targets."""
    with pytest.warns(UserWarning, match="plain Python callables"):
        t = mc.Target(py_logp, 2, logp_grad=py_logp_grad, args=(0,))
    x = run(t, "nuts", draws=100, tune=50, init=np.zeros(2)).posterior["x"].values
    assert np.all(np.isfinite(x)) and -1.0 <= x[..., 0].min() and x[..., 0].max() <= 1.5


# -- results ------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [None, 1, 2**70])
def test_every_result_writes_to_netcdf(target, seed, tmp_path):
    """A boolean ``interrupted`` attribute (and seed=None's 128-bit seed) made ``to_netcdf`` fail
    for every result."""
    idata = run(target, seed=seed)
    idata.to_netcdf(str(tmp_path / "r.nc"))
    assert idata.attrs["interrupted"] == False  # noqa: E712
    if seed is None:
        assert isinstance(idata.attrs["seed"], int) and 0 <= idata.attrs["seed"] < 2**63
        again = run(target, seed=idata.attrs["seed"]).posterior["x"].values
        np.testing.assert_array_equal(again, idata.posterior["x"].values)
    elif seed > 2**63:
        assert idata.attrs["seed"] == str(seed)


def test_seed_sequence_and_generator_seeds(target):
    base = run(target, seed=3).posterior["x"].values
    np.testing.assert_array_equal(run(target, seed=np.random.SeedSequence(3)).posterior["x"].values, base)
    np.testing.assert_array_equal(run(target, seed=np.int64(3)).posterior["x"].values, base)
    from_rng = run(target, seed=np.random.default_rng(5))
    again = run(target, seed=from_rng.attrs["seed"])  # the recorded seed reproduces the run
    np.testing.assert_array_equal(again.posterior["x"].values, from_rng.posterior["x"].values)
    child = np.random.SeedSequence(3).spawn(1)[0]
    assert not np.array_equal(run(target, seed=child).posterior["x"].values, base)


@pytest.mark.parametrize("seed", [-1, 1.5, "1", True, [1, 2]])
def test_bad_seeds_name_the_argument(target, seed):
    with pytest.raises(ValueError, match="seed must be"):
        run(target, seed=seed)


# -- arguments of sample() ----------------------------------------------------------------------

def test_target_and_executor_must_be_what_they_say(target):
    with pytest.raises(ValueError, match="target must be an mcsample.Target.*mc.Target"):
        mc.sample(gauss, "gpss")
    with pytest.raises(ValueError, match="executor must be a concurrent.futures.Executor"):
        run(target, executor="threads")
    with cf.ThreadPoolExecutor(1) as ex:  # a real one still works
        assert run(target, executor=ex).posterior["x"].shape == (2, 20, 2)


@pytest.mark.parametrize("max_evals", [np.inf, "100", True, -1.0, np.nan])
def test_bad_max_evals(target, max_evals):
    with pytest.raises(ValueError, match="max_evals must be"):
        run(target, max_evals=max_evals)


def test_a_budget_spent_in_warmup_warns(target):
    with pytest.warns(RuntimeWarning, match="no draws kept"):
        idata = run(target, max_evals=30)
    assert idata.posterior["x"].shape == (2, 0, 2)


@pytest.mark.parametrize("init, match", [("ab", "init must be an array of real numbers"),
                                         (np.array([1 + 1j, 0]), "init must be an array of real numbers"),
                                         ([[0.0, 0.0]] * 3, "init must have shape")])
def test_bad_init(target, init, match):
    with pytest.raises(ValueError, match=match):
        run(target, init=init)


def test_particle_budget_error_quotes_the_runs_own_numbers(target):
    """The throwaway compile run (2 particles) had the chain's whole budget, so the error quoted
    a per-particle budget draws/2 times the real one."""
    with pytest.raises(ValueError, match=r"a budget of 500 evaluations per particle"):
        run(target, "ensemble_score", draws=20, chains=2, max_evals=2e4)


# -- sampler names and settings -----------------------------------------------------------------

@pytest.mark.parametrize("name, suggestion", [("NUTS", "nuts"), ("hit_and_run", "hit_and_run_slice"),
                                              ("walkjump", "walk_jump"), ("elliptical", "elliptical_slice")])
def test_near_miss_sampler_names_get_a_suggestion(target, name, suggestion):
    with pytest.raises(ValueError, match=f"unknown sampler '{name}' \\(did you mean '{suggestion}'\\?\\)"):
        run(target, name)


def test_misspelled_setting_gets_a_suggestion(target):
    with pytest.raises(ValueError, match=r"max_treedepth \(did you mean 'max_depth'\?\)"):
        run(target, "nuts", max_treedepth=5)


@pytest.mark.parametrize("name", sorted(_REGISTRY))
def test_settings_of_the_wrong_type_name_the_setting(name):
    """A string for a number, 2.5 for an integer or NaN reached the families' comparisons
    (TypeError) or their kernels (NaN step sizes ran); every field of every family is checked."""
    for f in dataclasses.fields(_REGISTRY[name]):
        kind = str(f.type)
        bad = {"int": [2.5, "3", True], "float": ["0.1", float("nan")], "bool": ["yes", 1], "str": [3]}
        for value in bad.get(kind.split(" |")[0], []):
            with pytest.raises(ValueError, match=f"setting {f.name} must be"):
                mc.samplers.resolve(name, {f.name: value})


@pytest.mark.parametrize("name, setting, value", [("nuts", "gamma", 0.0), ("nuts", "t0", -1.0), ("nuts", "kappa", 0.0),
                                                   ("nuts", "max_energy_error", 0.0), ("walk_jump", "tau", -1.0),
                                                   ("walk_jump", "mixture", (1.0,)),
                                                   ("rdmc", "importance_boost", np.inf), ("rdmc", "horizon", np.inf),
                                                   ("multalmc", "noise_scale", np.inf),
                                                   ("multcdiff", "cld_friction", np.inf)])
def test_out_of_range_constants_name_the_setting(target, name, setting, value):
    """NUTS with gamma = 0 or t0 = -1 raised ZeroDivisionError in its warmup; kappa = 0 and a
    negative max_energy_error (every step a divergence) or tau ran without a word; a walk-jump
    mixture that is not a triple was an unpacking error. Infinite rdMC importance_boost /
    horizon were an OverflowError / a message about max_step, multalmc's noise_scale = inf gave NaN
    draws and multcdiff's cld_friction = inf a ZeroDivisionError."""
    with pytest.raises(ValueError, match=setting):
        mc.samplers.resolve(name, {setting: value}).validate(2)


# -- the Target's data and names ----------------------------------------------------------------

def test_data_arrays_keep_their_values_and_shape():
    """A 0-d array reached the user's function as a 1-d one (``ascontiguousarray``); big-endian
    arrays (from files) were a NumbaValueError that named no argument."""
    t = mc.Target(scaled, 2, args=(np.array(2.0),))
    assert t.args[0].shape == () and t.logp(np.ones(2)) == -0.5
    t = mc.Target(gauss, 2, args=(np.array([1.0, 2.0], dtype=">f8"),))
    assert t.logp(np.array([1.0, 2.0])) == 0.0
    assert run(t, draws=200, tune=50, chains=1).posterior["x"].values.mean() == pytest.approx(1.5, abs=0.5)


def test_names_given_as_one_string():
    with pytest.raises(ValueError, match="names must be a list of 2 names, got the string 'ab'"):
        mc.Target(gauss, 2, args=(np.zeros(2),), names="ab")
    assert mc.Target(gauss, 1, args=(np.zeros(1),), names="mu").names == ["mu"]


@numba.njit
def grad_as_list(x, c):
    return 0.0, [x[0], x[1]]


def test_numba_errors_reach_the_user_without_terminal_colour_codes():
    with pytest.raises(ValueError, match="logp_grad could not be compiled") as err:
        mc.Target(gauss, 2, logp_grad=grad_as_list, args=(np.zeros(2),))
    assert "\x1b[" not in str(err.value)
    with pytest.raises(ValueError, match=r"args\[0\] of type ndarray cannot be passed to numba") as err:
        mc.Target(gauss, 2, args=(np.zeros(2, dtype=np.longdouble),))  # was a bare NumbaValueError
    assert "\x1b[" not in str(err.value)


# -- compare and the command line ---------------------------------------------------------------

@pytest.mark.parametrize("kw, match", [(dict(budget=-5), "budget must be"), (dict(budget=np.inf), "budget must be"),
                                       (dict(budget=1e4, chains=0), "chains must be"),
                                       (dict(budget=1e4, tune=-1), "tune must be")])
def test_compare_checks_shared_arguments_before_running(target, kw, match):
    """A negative budget gave a table of per-sampler errors, chains=0 a ZeroDivisionError."""
    with pytest.raises(ValueError, match=match):
        mc.compare(target, ["nuts", "gpss"], progressbar=False, **kw)


def test_cli_budget_zero_is_an_error_not_the_default(capsys):
    from mcsample.cli import main
    assert main(["compare", "--budget", "0", "--target", "std_normal", "--samplers", "nuts", "--no-progress"]) == 2
    assert "budget must be a positive" in capsys.readouterr().err
    assert main(["sample", "std_normal", "--sampler", "NUTS", "--no-progress"]) == 2
    assert "did you mean 'nuts'" in capsys.readouterr().err


# -- a function that starts raising mid-run (a lost connection, a bug off the beaten path) ---------
#
# Inside the kernels an exception is a NaN (the guard in mcsample.target), so a run could not tell
# "raised" from "undefined there": NUTS stood still for the rest of its chain and returned the
# repeated draw without a word, multalmc returned NaN draws warned as "outside the support", rdMC and
# walk_jump said "no finite log density" without the user's error. Now the error reaches the user.


@numba.njit(cache=True)
def _fails_after(x, calls):
    calls[0] += 1
    if calls[0] > calls[1]:
        raise RuntimeError("the model's service went away")
    return -0.5 * np.sum(x * x)


@numba.njit(cache=True)
def _fails_after_grad(x, calls):
    calls[0] += 1
    if calls[0] > calls[1]:
        raise RuntimeError("the model's service went away")
    return -0.5 * np.sum(x * x), -x


def _failing_target(after):
    calls = np.array([0.0, np.inf])
    t = mc.Target(_fails_after, 2, logp_grad=_fails_after_grad, args=(calls,))
    calls[:] = 0.0, after
    return t


@pytest.mark.parametrize("sampler, after", [pytest.param("rdmc", 2_000, marks=pytest.mark.slow),  # its pilot: ~20 s
                                            ("multalmc", 20_000), ("multcdiff", 20_000), ("walk_jump", 20_000)])
def test_particle_runs_hand_on_the_users_error(sampler, after):
    """The function fails from its ``after``-th call: inside the run's kernels (every particle ends
    where it raises: a RuntimeError) or in the pilot (rdMC's start pool, walk_jump's searches: the
    family's ValueError); either way the message names the function's error and its cause is the
    function's own exception, with its traceback."""
    with pytest.raises((RuntimeError, ValueError), match="raised RuntimeError: the model's service went away") as info:
        run(_failing_target(after), sampler, chains=1, draws=20, max_evals=8e4)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_a_pilot_that_sees_only_failures_names_the_users_error():
    """Failing from the 10th call: walk_jump's bulk searches see only NaN ('no bulk search found a
    point with finite log density'); the message now says that the function raised, and why."""
    with pytest.raises(ValueError, match="finite log density.*raised RuntimeError: the model's service") as info:
        run(_failing_target(10), "walk_jump", chains=1, draws=20, max_evals=8e4)
    assert isinstance(info.value.__cause__, RuntimeError)


def test_nuts_warns_when_its_chain_diverges_where_the_function_raises():
    """From the 1,000th call on, every NUTS trajectory diverges and the chain stands still: the run
    warns with the divergences and the function's error at the last draw (it was silent)."""
    with pytest.warns(mc.ConvergenceWarning, match="diverged.*raises at a chain's last draw: RuntimeError"):
        run(_failing_target(1_000), "nuts", chains=1, draws=300, tune=300)
