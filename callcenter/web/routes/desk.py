"""The desk dependency and the translation of its refusals into HTTP answers."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import Depends, HTTPException, status

from ...services.acd.control import ControlError
from ...services.desk import AgentDesk
from ..deps import Deps


def get_desk(deps: Deps) -> AgentDesk:
    if deps.desk is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "the ACD is not running")
    return deps.desk


DeskDep = Annotated[AgentDesk, Depends(get_desk)]


@contextmanager
def desk_errors() -> Iterator[None]:
    """A refusal of the desk (or the call control under it) is the status it names."""
    try:
        yield
    except ControlError as exc:
        raise HTTPException(exc.status, exc.detail) from exc
