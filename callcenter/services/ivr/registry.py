"""The flows in a directory, reloadable without a restart.

`reload()` reads every `*.yaml` file again. A file that now has errors keeps its previous
version (calls keep working while the administrator fixes it) and its problems are returned;
a removed file's flow goes. Calls already in a flow hold their own `Flow` object, so a reload
never changes a call mid-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from callcenter.services.ivr.flow import Flow
from callcenter.services.ivr.loader import FlowError, Problem, load_flow

MAX_FLOW_FILES = 500


@dataclass(frozen=True, slots=True)
class ReloadResult:
    loaded: tuple[str, ...]
    # Flows whose file has errors now; the previous version, if any, stays in service.
    failed: tuple[str, ...]
    problems: tuple[Problem, ...]

    @property
    def ok(self) -> bool:
        return not self.failed


class FlowRegistry:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._flows: dict[str, Flow] = {}

    def reload(self) -> ReloadResult:
        shown = str(self.directory)
        if not self.directory.is_dir():
            problem = Problem(shown, 1, "no such directory of IVR flows")
            return ReloadResult((), (), (problem,))
        paths = sorted(self.directory.glob("*.yaml"))
        if len(paths) > MAX_FLOW_FILES:
            problem = Problem(shown, 1, f"more than {MAX_FLOW_FILES} flow files")
            return ReloadResult((), tuple(p.stem for p in paths), (problem,))
        flows: dict[str, Flow] = {}
        loaded: list[str] = []
        failed: list[str] = []
        problems: list[Problem] = []
        for path in paths:
            try:
                flow, warnings = load_flow(path)
            except FlowError as exc:
                problems.extend(exc.problems)
                failed.append(path.stem)
                if path.stem in self._flows:
                    flows[path.stem] = self._flows[path.stem]
                continue
            problems.extend(warnings)
            flows[flow.name] = flow
            loaded.append(flow.name)
        self._flows = flows
        return ReloadResult(tuple(loaded), tuple(failed), tuple(problems))

    def get(self, name: str) -> Flow:
        """The flow named `name`; KeyError if there is none."""
        return self._flows[name]

    def names(self) -> tuple[str, ...]:
        return tuple(sorted(self._flows))
