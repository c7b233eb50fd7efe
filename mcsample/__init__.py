"""mcsample: modern Monte Carlo samplers for unnormalized densities, compiled with numba.

    import mcsample as mc
    target = mc.Target(logp, dim=3, logp_grad=logp_grad, args=(data,))
    idata = mc.sample(target, "nuts", draws=1000, chains=4, seed=1)
"""

from . import samplers
from ._version import __version__
from .compare import compare
from .compare import format_table as compare_table
from .convergence import ConvergenceWarning
from .sample import resume, sample
from .target import Target

__all__ = ["Target", "sample", "resume", "compare", "compare_table", "ConvergenceWarning", "samplers", "testing",
           "__version__"]



def __getattr__(name):
    # mcsample.testing pulls in scipy.stats; import it only when asked for
    if name == "testing":
        import importlib
        return importlib.import_module(".testing", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
