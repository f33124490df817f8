"""The agent desk: the page's and the API's view of an agent, its calls and its events."""

from .service import AgentDesk, DeskError, DeskSession
from .views import DeskEvent

__all__ = ["AgentDesk", "DeskError", "DeskEvent", "DeskSession"]
