"""Who may export or erase a student's data: an admin, or a teacher the student is theirs for.

A teacher's claim is the one password resets use (`teacher_may_manage`): they made the account, or
the student joined one of their classes with its code. Adding a student by username proves
nothing (any teacher can add anyone), so it gives no right to their data. Everyone else is told
the student does not exist (404), as for every other object they may not see.
"""

from __future__ import annotations

from appliance.accounts import User
from appliance.db import Database, Row
from appliance.errors import NotFound
from appliance.store import classes as class_store
from appliance.store import users as user_store


async def managed_student(db: Database, actor: User, user_id: int, *, self_allowed: bool = False) -> Row:
    """The student's row if `actor` may act on their data (`self_allowed`: the student too)."""
    target = await user_store.get(db, user_id)
    if target is not None and target["role"] == "student":
        if actor.role == "admin" or (self_allowed and actor.id == user_id):
            return target
        if actor.role == "teacher" and await class_store.teacher_may_manage(db, actor.id, user_id):
            return target
    raise NotFound("not_found", "no such student in your classes")
