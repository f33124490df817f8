"""The supervisor dashboard: live calls, agents and queues, and monitoring (listen, whisper,
barge) of live calls, every action audited."""

from .service import SupervisorDesk, SupervisorError, SupervisorSession
from .views import SupervisorEvent

__all__ = ["SupervisorDesk", "SupervisorError", "SupervisorEvent", "SupervisorSession"]
