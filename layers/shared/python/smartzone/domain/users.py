"""People who use the platform: their roles and, for grid workers, the grids they answer for.

The caller's grids come from here (not from a token claim) so a reassignment takes effect at once.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from smartzone.domain.identity import Role


class UserProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._@+-]+$")
    name: str = Field(min_length=1, max_length=64)
    phone: str | None = Field(None, pattern=r"^1[3-9][0-9]{9}$")
    email: str | None = Field(None, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    webhook_url: str | None = Field(None, pattern=r"^https://")
    roles: list[Role] = Field(default_factory=list)
    grid_ids: list[str] = Field(default_factory=list)
    department_id: str | None = Field(None, pattern=r"^[a-z][a-z0-9-]{1,39}$")
    """For the ``department`` role: the department this person (or system account) acts for."""
    active: bool = True
