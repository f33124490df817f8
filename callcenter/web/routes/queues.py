"""Queue statistics: callers waiting, the longest wait, agents available."""

from typing import Annotated

from fastapi import APIRouter

from ...services.accounts import Principal
from ...services.desk.views import QueueStat
from ..deps import require_roles
from .desk import DeskDep

router = APIRouter(prefix="/api/queues", tags=["queues"])


@router.get("")
async def queue_stats(
    user: Annotated[Principal, require_roles("agent", "supervisor", "admin")], desk: DeskDep
) -> list[QueueStat]:
    return desk.queue_stats()
