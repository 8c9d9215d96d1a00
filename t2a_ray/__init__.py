"""t2a-ray: what text-to-audio diffusion models cost in energy, and which settings give the most
audio quality per joule.

Four rooms under one name: ``t2a_ray.adapters`` (the models), ``t2a_ray.metering`` (the meter),
``t2a_ray.orchestrator`` (Ray actors and Ray Tune), ``t2a_ray.analysis`` (fronts, fits, report).
This package itself holds what they share: the sweep file, the run folder, the results schema, errors.
"""

from pathlib import Path as _Path

__version__ = "0.1.0"

# In a checkout the four rooms are folders beside this one (pyproject maps them in); an installed copy
# holds them inside it. Python started in the checkout's root finds this folder before any installed
# copy, so let it find the rooms beside it too: the checkout is then imported whole, never half.
_checkout = _Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "orchestrator" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 — a package's own __path__
