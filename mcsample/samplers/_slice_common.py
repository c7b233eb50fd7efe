"""What the three slice samplers share outside their kernels: the frame settings (an affine map
fitted during warmup and frozen before the kept draws), adaptation of the window width w, and a
chain runner that drives a family's compiled chunk function.

Warmup, when the frame is fitted (``centring`` not "none", no ``loc``/``cov``):

1. Find the bulk (``find_bulk``): a gradient-free CMA-ES search from the chain's start
   (``mcsample._core.bulk``) moves the start into the bulk and gives a first frame, the Gaussian
   of its best-ELBO generation. Without it a chain started in a far tail of a badly scaled
   posterior fitted its frames to its own transient and could stay out for the whole run (a
   flat-prior regression: |beta| ~ 1e5 after 2000 iterations; mesquite at seeds 14 and 18).
2. Refit the frame at the end of each of Stan's doubling windows (75-iteration initial buffer,
   windows of 25, 50, 100, ..., 50-iteration terminal buffer; Stan's ``windowed_adaptation``)
   from the draws of the window just finished, shrinking the variances towards the previous
   frame's, then freeze it. The state keeps its x and is re-expressed in the new frame.

The width w (GPSS, hit-and-run) is adapted in every warmup iteration towards one step-out per
update, restarting at each refit, and frozen with the frame at the end of warmup. Changing either
during the kept draws would break the Markov property.
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

import numpy as np

from .._core.adaptation import WarmupSchedule, regularized_variance, stan_schedule, windowless_schedule
from .._core.bulk import find_bulk
from .._core.slice import FRAME_DENSE, dense_frame, diagonal_frame, identity_frame, logp_in_frame, x_to_frame
from ._base import SamplerSettings, WindowedChain

CENTRINGS = ("none", "diag", "dense")
# Floor on the eigenvalues of a fitted correlation matrix. A pilot window that moved in few
# directions gave a frame with condition number 2e6 on arK, in which hit-and-run mixed so slowly
# that 4 x 8000 draws missed the reference by 0.8 sd; the floor bounds the condition number by
# about d / 0.01 and still leaves kidiq's correlation of -0.999 mostly whitened.
_MIN_CORR_EIGENVALUE = 0.01
# Above this dimension the fitted scales are pooled (``pool_scales``); the frames of d <= 10 are
# those the posteriordb sweeps validated, and a spread over so few coordinates is itself noisy.
_MIN_POOLING_DIM = 10


@dataclasses.dataclass(frozen=True)
class SliceSettings(SamplerSettings):
    """Frame settings shared by the slice samplers (see the module docstring).

    centring : "dense" (default), "diag" or "none": fit x = c + L z during warmup, with c the
        coordinate-wise median and L from robust scales (and rank correlations); see ``fit_frame``.
    loc, cov : a fixed frame instead: x = loc + L z with L L^T = cov ((d,) variances or a
        (d, d) covariance). For elliptical slice sampling this is the prior N(loc, cov).
    find_bulk : before warmup fits the frame, search for the bulk of the target from the chain's
        start (``mcsample._core.bulk.find_bulk``: CMA-ES, returning the generation whose Gaussian
        has the largest ELBO) and start the chain there, in the frame of that Gaussian. Spends
        about 1e3 log densities in d <= 10 (at most 2000 + 500 d), counted with warmup's. Only when
        the frame is fitted (``centring`` not "none", no ``loc``/``cov``) and ``tune`` > 0.
    max_proposals : log-density evaluations allowed in each stepping-out or shrinkage loop
        before the update gives up, keeps the current point and counts the draw as ``exhausted``
        (a guard against improper densities and unresolvable slices, never a silent hang). The
        default is large because heavy tails need long step-outs: on the Cauchy in d = 100 with
        w = 100, 4 radius updates in 10^6 needed more than 10^4.
    """

    centring: str = "dense"
    loc: np.ndarray | None = None
    cov: np.ndarray | None = None
    find_bulk: bool = True
    max_proposals: int = 100_000

    def validate(self, dim: int) -> None:
        if self.centring not in CENTRINGS:
            raise ValueError(f"centring must be one of {CENTRINGS}, got {self.centring!r}")
        if self.max_proposals < 4:
            raise ValueError(f"max_proposals must be at least 4, got {self.max_proposals}")
        if self.loc is not None:
            c = np.asarray(self.loc, dtype=float)
            if c.shape != (dim,) or not np.all(np.isfinite(c)):
                raise ValueError(f"loc must be a finite array of shape ({dim},), got {c.shape}")
        if self.cov is not None:
            fixed_frame(self, dim)  # raises on a bad covariance


@dataclasses.dataclass(frozen=True)
class WidthSettings(SliceSettings):
    """Adds the window width of stepping-out (GPSS radius, hit-and-run line).

    w : initial width, in frame units. adapt_w : tune w during warmup only, then freeze it.
    """

    w: float = 1.0
    adapt_w: bool = True

    def validate(self, dim: int) -> None:
        super().validate(dim)
        if not (np.isfinite(self.w) and self.w > 0):
            raise ValueError(f"w must be a positive number, got {self.w}")


def fixed_frame(settings: SliceSettings, dim: int):
    """The frame given by ``loc``/``cov``, or None when it is to be fitted (or is the identity)."""
    if settings.loc is None and settings.cov is None:
        return None
    centre = np.zeros(dim) if settings.loc is None else np.asarray(settings.loc, dtype=float)
    if settings.cov is None:
        return diagonal_frame(centre, np.ones(dim))
    cov = np.asarray(settings.cov, dtype=float)
    if cov.shape == (dim,):
        if not np.all(np.isfinite(cov)) or np.any(cov <= 0):
            raise ValueError("cov given as variances must be finite and positive")
        return diagonal_frame(centre, np.sqrt(cov))
    if cov.shape != (dim, dim):
        raise ValueError(f"cov must have shape ({dim},) or ({dim}, {dim}), got {cov.shape}")
    try:
        return dense_frame(centre, np.linalg.cholesky(cov))
    except np.linalg.LinAlgError:
        raise ValueError("cov is not positive definite") from None


def fit_frame(x: np.ndarray, centring: str, inflation: float = 1.0, keep_central_origin: bool = False,
              prior_var=1e-3):
    """Frame from warmup draws x (n, d), robust to heavy tails (a Cauchy has no mean or
    covariance) and exact for Gaussians: centre = coordinate-wise median, scales = IQR / 1.349,
    and for "dense" the correlation 2 sin(pi rho_S / 6) from Spearman's rank correlation rho_S
    (when n >= 10 d; with fewer draws the correlations are noise and the frame stays diagonal).
    Variances are shrunk like Stan's metric, with weight 5 / (n + 5), towards ``prior_var``, so a
    coordinate that did not move in the window cannot give a zero scale. The chains pass the
    previous frame's variances (``frame_variance``): Stan's absolute 1e-3 made the frame of
    sblrc_blr, whose coefficients have posterior sd 0.001, 3x too wide in them, and hit-and-run
    then reached R-hat 1.08-1.12 on 4 seeds in 4. See ``frame_from_moments`` for the rest."""
    n, d = x.shape
    centre = np.median(x, axis=0)
    scale = np.sqrt(regularized_variance(n, robust_scale(x) ** 2, prior_var))
    if d > _MIN_POOLING_DIM:
        scale = pool_scales(x, scale)
    corr = None
    if centring == "dense" and n >= 10 * d and d > 1:  # else too few draws for d(d-1)/2 correlations
        corr = rank_correlation(x)
        if d > _MIN_POOLING_DIM:
            corr = pool_correlations(x, corr)
    return frame_from_moments(centre, scale, corr, centring, inflation, keep_central_origin)


def rank_correlation(x: np.ndarray) -> np.ndarray:
    """2 sin(pi rho_S / 6) from Spearman's rank correlation rho_S of the columns of x: the
    correlation for a Gaussian, defined for any law."""
    ranks = np.argsort(np.argsort(x, axis=0), axis=0).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.nan_to_num(np.corrcoef(ranks, rowvar=False))
    return 2.0 * np.sin(np.pi * rho / 6.0)


def pool_correlations(x: np.ndarray, corr: np.ndarray) -> np.ndarray:
    """Shrink the correlations ``corr`` of the window ``x`` towards 0 (the diagonal frame) by as
    much as they are noise, as ``pool_scales`` does the scales: weight max(0, 1 - noise / mean
    square), the noise of a correlation estimated from the two halves of the window (Ledoit & Wolf
    2004 and Schäfer & Strimmer 2005 shrink towards the diagonal the same way, with the noise from
    a formula for independent draws, which a window of a chain is not). On the AR(1) Gaussian
    (correlation 0.9) at d = 50, GPSS's last window (500 = 10 d draws) fitted a dense frame in which
    the target's variances spanned 0.09-2,490 where its diagonal predecessor's spanned 0.4-136."""
    half = x.shape[0] // 2
    off = ~np.eye(corr.shape[0], dtype=bool)
    noise = 0.25 * float(np.mean((rank_correlation(x[:half]) - rank_correlation(x[half:]))[off] ** 2))
    weight = _kept_share(noise, float(np.mean(corr[off] ** 2)))
    return weight * corr + (1.0 - weight) * np.eye(corr.shape[0])


def robust_scale(x: np.ndarray) -> np.ndarray:
    """IQR / 1.349 of each column: the sd for a Gaussian, finite for a Cauchy."""
    q75, q25 = np.percentile(x, [75, 25], axis=0)
    return (q75 - q25) / 1.349


def pool_scales(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Shrink the log ``scale`` s of the columns of the window ``x`` towards their mean, by as much
    as their spread is noise (positive-part James-Stein / empirical Bayes, Efron & Morris 1973):
    log s_i <- m + max(0, 1 - noise / spread) (log s_i - m), with spread the variance of the log s_i
    across coordinates and noise that of one log s_i about its true value, estimated from the two
    halves of the window (their log scales differ by noise with variance ~4 x the whole window's,
    autocorrelation and drift included).

    A frame fitted from a window with few effective draws for d is noisy in every coordinate, and
    elliptical slice sampling's prior pays for the noise in all of them at once: on N(0, I) at d = 50
    the fitted scales spanned 0.56-1.34 and the chain kept a bulk ESS of 2-3 in 1000 draws. When the
    scales truly differ (sds from 0.1 to 10) the spread dwarfs the noise and they are left as they are."""
    half = x.shape[0] // 2
    with np.errstate(divide="ignore", invalid="ignore"):
        split = np.log(robust_scale(x[:half])) - np.log(robust_scale(x[half:]))
        log_s = np.log(scale)
    if half < 4 or not (np.all(np.isfinite(split)) and np.all(np.isfinite(log_s))):
        return scale
    noise = 0.25 * float(np.mean(split ** 2))
    mean = float(log_s.mean())
    return np.exp(mean + _kept_share(noise, float(log_s.var())) * (log_s - mean))


def _kept_share(noise: float, spread: float) -> float:
    """The positive-part James-Stein weight max(0, 1 - noise / spread) of estimates whose spread
    about their common target is ``spread`` and whose own noise is ``noise`` (0 when no spread)."""
    return max(0.0, 1.0 - noise / spread) if spread > 0 else 0.0


def frame_variance(frame, inflation: float = 1.0) -> np.ndarray:
    """The marginal variances of x under a frame (of z ~ N(0, I)), without its inflation."""
    kind, _, scale, chol = frame
    var = (chol ** 2).sum(axis=1) if kind == FRAME_DENSE else scale ** 2
    return var / inflation ** 2


def frame_from_moments(centre, scale, corr, centring: str, inflation: float = 1.0,
                       keep_central_origin: bool = False):
    """Frame x = centre + L z with L L^T = (inflation * scale)^2 * corr (diagonal when ``corr`` is
    None or ``centring`` is "diag"); correlation eigenvalues are floored at
    ``_MIN_CORR_EIGENVALUE``.

    ``keep_central_origin`` (GPSS): when x = 0 lies inside the bulk (the centre is within
    sqrt(d) of it in fitted units, about the typical radius), keep 0 as the centre and fit the
    scales only. Polar moves are at their best about a target's own centre of symmetry (funnel,
    Cauchy, hyperplane disk), and an estimated shift there only adds noise: GPSS on funnel10 with
    a fitted shift had ESS(log|x|) 51 against 452 without."""
    d = centre.size
    scale = inflation * np.asarray(scale, dtype=float)
    if keep_central_origin and np.linalg.norm(centre / scale) < np.sqrt(d):
        centre = np.zeros(d)
    if centring == "diag" or corr is None or d == 1:
        return diagonal_frame(centre, scale)
    corr = np.array(corr, dtype=float)
    np.fill_diagonal(corr, 1.0)
    vals, vecs = np.linalg.eigh(corr)  # a rank-based matrix need not be positive definite
    corr = (vecs * np.maximum(vals, _MIN_CORR_EIGENVALUE)) @ vecs.T
    return dense_frame(centre, np.linalg.cholesky(corr * np.outer(scale, scale)))


def min_fit_window(dim: int) -> int:
    """Shortest warmup window whose draws may refit the frame: 2 d. In d = 200, frames fitted from
    Stan's first windows (25, 50 draws) came out with some scales 10x too small, and the chain
    then mixed so badly in them that every later window was worse: a vicious circle. In low
    dimension the early windows are what moves an off-centre chain quickly into place."""
    return 2 * dim


def frame_is_fitted(settings: SliceSettings) -> bool:
    """Whether warmup fits the frame (else it is the identity or given by ``loc``/``cov``)."""
    return settings.centring != "none" and settings.loc is None and settings.cov is None


def frame_schedule(tune: int, settings: SliceSettings, dim: int) -> WarmupSchedule:
    """Warmup whose windows refit the frame at their end (none: it never changes): Stan's
    doubling windows, keeping those of at least ``min_fit_window`` draws."""
    if not frame_is_fitted(settings):
        return windowless_schedule(tune)
    return stan_schedule(tune).only_windows_of(min_fit_window(dim))


def new_width_state(w: float) -> np.ndarray:
    """[log w, adaptation count], updated in place by ``adapt_width`` inside the kernels."""
    return np.array([np.log(w), 0.0])


class SliceChain(WindowedChain):
    """Chain runner for a slice family: holds the frame and the state z in it, runs the family's
    compiled chunk on the frame's warmup schedule (refitting the frame as each window closes), and
    records what warmup tuned.

    Subclasses set ``stat_dtypes`` and implement ``_reset_state()`` (recompute cached
    quantities after z or the frame changed) and ``_run_chunk(lo, hi, adapt)``. ``frame``, ``z``
    and ``width`` start a chain inside a given frame (a pilot), sharing the width state."""

    stat_dtypes: ClassVar[dict] = {}
    frame_inflation: ClassVar[float] = 1.0  # fitted scales are multiplied by this
    keep_central_origin: ClassVar[bool] = False  # see fit_frame

    def __init__(self, settings, target, rng, q0, tune, draws, *, frame=None, z=None, width=None):
        super().__init__(settings, target, rng, q0, tune, draws)
        d = target.dim
        self.frame = frame if frame is not None else fixed_frame(settings, d) or identity_frame(d)
        self.schedule = frame_schedule(tune, settings, d)
        self.width = width if width is not None else new_width_state(getattr(settings, "w", 1.0))
        if frame is None and settings.find_bulk and tune > 0 and frame_is_fitted(settings):
            self._start_in_bulk()
        self.z = np.ascontiguousarray(x_to_frame(self.frame, self.q) if z is None else z)
        self._reset_state()

    def _start_in_bulk(self):
        """Move the start to the bulk and take the search's Gaussian as the first frame (see
        ``SliceSettings.find_bulk``); its evaluations count as warmup's."""
        bulk = find_bulk(self.target.logp_fn, self.target.kernel_args, self.q, self.rng)
        self.extra_logp += bulk.n_evals
        if not np.isfinite(bulk.elbo):
            return  # no generation lay inside the support: keep the start and the identity frame
        self.q = bulk.point
        sd = np.sqrt(np.diag(bulk.cov))
        self.frame = frame_from_moments(bulk.mean, sd, bulk.cov / np.outer(sd, sd), self.settings.centring,
                                        self.frame_inflation, self.keep_central_origin)

    def _reset_state(self):
        raise NotImplementedError

    def _run_chunk(self, lo, hi, adapt):
        raise NotImplementedError

    def _logp_at_z(self, x_buffer):
        """log p at the current state (an evaluation outside the iterations, counted as such)."""
        self.extra_logp += 1
        return logp_in_frame(self.target.logp_fn, self.target.kernel_args, self.frame, self.z, x_buffer)

    def _run_pilot(self, lo, hi):
        """Warmup iterations before the frame's last refit; the family's own kernel by default."""
        self._run_chunk(lo, hi, True)

    def _advance(self, lo, hi):
        if lo < self.schedule.last_window_end:
            self._run_pilot(lo, hi)
        else:
            self._run_chunk(lo, hi, lo < self.tune)

    def _end_window(self, begin, end):
        self.frame = fit_frame(self.draws[begin:end], self.settings.centring, self.frame_inflation,
                               self.keep_central_origin, frame_variance(self.frame, self.frame_inflation))
        self.z = np.ascontiguousarray(x_to_frame(self.frame, self.draws[end - 1]))
        self.width[1] = 0.0  # w restarts its adaptation in the new units
        self._reset_state()

    def tuned(self):
        kind, centre, scale, chol = self.frame
        out = {"frame": ["identity", "diag", "dense"][kind]}
        if kind:
            out["loc"] = centre.tolist()
            out["scale"] = scale.tolist() if kind == 1 else chol.tolist()
        if hasattr(self.settings, "w"):
            out["w"] = float(np.exp(self.width[0]))
        return out
