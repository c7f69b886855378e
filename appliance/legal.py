"""Terms and privacy texts: versioned, editable by an admin, accepted by every user."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from appliance.clock import api_iso
from appliance.db import Database
from appliance.errors import Invalid, NotFound
from appliance.store import legal as legal_store

KINDS = ("terms", "privacy")
DEFAULT_VERSION = "2026-11-01"
_DEFAULTS_DIR = Path(__file__).resolve().parent / "legal_texts"


async def ensure_defaults(db: Database) -> None:
    for kind in KINDS:
        if await legal_store.current(db, kind) is None:
            text = (_DEFAULTS_DIR / f"{kind}.md").read_text(encoding="utf-8")
            await legal_store.publish(db, kind, DEFAULT_VERSION, text, None)


async def current(db: Database, kind: str) -> dict[str, Any]:
    if kind not in KINDS:
        raise NotFound("not_found", f"no legal document {kind!r}")
    row = await legal_store.current(db, kind)
    if row is None:
        raise NotFound("not_found", f"no {kind} published yet")
    return {
        "kind": kind,
        "version": row["version"],
        "markdown": row["markdown"],
        "published_at": api_iso(row["created_at"]),
    }


async def current_versions(db: Database) -> dict[str, str]:
    return {kind: (await current(db, kind))["version"] for kind in KINDS}


async def check_acceptance(db: Database, accepted: dict[str, str]) -> None:
    """Refuse unless `accepted` names exactly the current version of every legal text."""
    versions = await current_versions(db)
    for kind, version in versions.items():
        given = accepted.get(kind)
        if not given:
            raise Invalid(
                f"{kind}_not_accepted",
                f"you must accept the current {kind} (version {version})",
                field=f"accept_{kind}",
            )
        if given != version:
            raise Invalid(
                "stale_legal_version",
                f"the {kind} you accepted ({given}) is not the current version ({version}); reload and accept again",
                field=f"accept_{kind}",
            )


async def pending_for(db: Database, user_id: int) -> list[dict[str, str]]:
    """Current texts this user has not yet accepted: they must accept before doing anything else."""
    done = await legal_store.accepted_versions(db, user_id)
    versions = await current_versions(db)
    return [{"kind": k, "version": v} for k, v in versions.items() if (k, v) not in done]


async def ever_accepted(db: Database, user_id: int) -> bool:
    """Whether this user accepted any version of any text: if not, nothing "changed" for them."""
    return bool(await legal_store.accepted_versions(db, user_id))


async def accept(db: Database, user_id: int, accepted: dict[str, str]) -> None:
    await check_acceptance(db, accepted)
    await legal_store.accept(db, user_id, accepted)


async def publish(db: Database, kind: str, version: str, markdown: str, admin_id: int) -> dict[str, Any]:
    if kind not in KINDS:
        raise NotFound("not_found", f"no legal document {kind!r}")
    if not version.strip():
        # A blank version could never be told apart on the pages or accepted on purpose.
        raise Invalid("empty", "field 'version' must not be blank", field="version")
    if not markdown.strip():
        raise Invalid("empty", "field 'markdown' must not be blank", field="markdown")
    await legal_store.publish(db, kind, version, markdown, admin_id)
    return await current(db, kind)
