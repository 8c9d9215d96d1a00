"""t2a-ray: what text-to-audio diffusion models cost in energy, and which settings give the most
audio quality per joule.

Four rooms under one name: ``t2a_ray.adapters`` (the models), ``t2a_ray.metering`` (the meter),
``t2a_ray.orchestrator`` (Ray actors and Ray Tune), ``t2a_ray.analysis`` (fronts, fits, report).
This package itself holds what they share: the sweep file, the run folder, the results schema, errors.
"""

__version__ = "0.1.0"
