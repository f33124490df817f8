"""Customers for the screen pop: a card by id, and creating one for an unknown caller."""

from typing import Annotated

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field

from ...services.accounts import Principal
from ...services.desk.views import CustomerCard
from ..deps import require_roles
from .desk import DeskDep, desk_errors

router = APIRouter(prefix="/api/customers", tags=["customers"])

Staff = Annotated[Principal, require_roles("agent", "supervisor")]


class NewCustomer(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    company: str | None = Field(default=None, max_length=200)
    tier: str | None = Field(default=None, max_length=16)
    phone: str = Field(default="", max_length=32)
    email: str | None = Field(default=None, max_length=254)
    call_id: str | None = Field(default=None, min_length=1, max_length=255)


@router.get("/{customer_id}")
async def get_customer(
    customer_id: Annotated[int, Path(ge=1)], user: Staff, desk: DeskDep
) -> CustomerCard:
    with desk_errors():
        return await desk.customer_card(customer_id)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_customer(body: NewCustomer, user: Staff, desk: DeskDep) -> CustomerCard:
    """A new customer (an unknown caller); with `call_id`, the call is linked to it."""
    with desk_errors():
        return await desk.create_customer(
            user.username,
            name=body.name,
            company=body.company or "",
            tier=body.tier or "regular",
            phone=body.phone,
            email=body.email,
            call_id=body.call_id,
        )
