"""The IVR: flows as YAML (`ivr/flows/`), validated on load, run by a sans-IO interpreter.

`loader` turns a file into a `Flow` or every problem with file, line and node; `registry` keeps
a directory of flows and reloads it; `interpreter` steps a call through a flow (the engine
executes its actions); `simulator` drives the same interpreter from a string of digits.
"""

from callcenter.services.ivr.flow import Flow
from callcenter.services.ivr.loader import FlowError, Problem, load_flow
from callcenter.services.ivr.registry import FlowRegistry, ReloadResult
from callcenter.services.ivr.simulator import Simulation, simulate

__all__ = [
    "Flow",
    "FlowError",
    "FlowRegistry",
    "Problem",
    "ReloadResult",
    "Simulation",
    "load_flow",
    "simulate",
]
