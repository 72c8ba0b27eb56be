"""Retention: `recops registry prune --keep N` archives old versions.

Archiving tags the version `recops.archived` (when) and `recops.archived_by` (who) after
writing an audit record with its key metrics; the version, its run and its artifacts stay
(reversible with `recops registry restore N`). Archived versions are hidden from
`recops registry list` (shown with `--all`), cannot be promoted and are skipped by rollback.
Never archived: any version holding an alias (champion, challenger, candidate, ...) and the
last `registry.keep_champions` past champions.
"""

from __future__ import annotations

from dataclasses import dataclass

from recops.errors import RegistryError
from recops.registry import history as hist
from recops.registry.audit import AuditRecord, write_audit
from recops.registry.lifecycle import Registry
from recops.registry.registration import archive_version
from recops.registry.versions import (
    ARCHIVED_BY_TAG,
    ARCHIVED_TAG,
    all_versions,
    is_archived,
    require_version,
)


@dataclass(frozen=True)
class PrunePlan:
    keep: dict[str, str]  # version -> why it is kept
    archive: list[str]


def plan_prune(registry: Registry, keep: int) -> PrunePlan:
    """Keep the newest `keep` active versions, aliased ones and the last K champions."""
    if keep < 0:
        raise RegistryError(f"--keep must be >= 0, got {keep}")
    client, name = registry.client, registry.name
    kept: dict[str, str] = {}
    for alias, version in sorted(registry.aliases().items()):
        kept.setdefault(version, f"alias {alias}")
    past = hist.recent_champions(hist.read_history(client, name), registry.settings.keep_champions)
    for version in past:
        kept.setdefault(version, "recent champion")
    active = [str(v.version) for v in all_versions(client, name) if not is_archived(v)]
    for version in active[:keep]:
        kept.setdefault(version, f"among the newest {keep}")
    archive = [v for v in active if v not in kept]
    return PrunePlan({v: why for v, why in kept.items() if v in active}, archive)


def prune(registry: Registry, keep: int, dry_run: bool = False) -> PrunePlan:
    """Archive what `plan_prune` does not keep (audited, under the registry lock)."""
    registry.sync()
    plan = plan_prune(registry, keep)
    if dry_run or not plan.archive:
        return plan
    with registry.locked(f"prune --keep {keep}"):
        registry.sync()
        plan = plan_prune(registry, keep)
        for version in plan.archive:
            archive(registry, version, f"prune --keep {keep}")
    return plan


def archive(registry: Registry, version: str, reason: str) -> AuditRecord:
    return archive_version(
        registry.client,
        registry.audit,
        registry.name,
        version,
        reason,
        registry.settings.list_metrics,
    )


def restore(registry: Registry, ref: str, reason: str | None = None) -> AuditRecord:
    """Undo an archive: the version can be promoted again."""
    client, name = registry.client, registry.name
    registry.sync()
    found = require_version(client, name, ref)
    version = str(found.version)
    if not is_archived(found):
        raise RegistryError(f"v{version} is not archived")
    with registry.locked(f"restore v{version}"):
        client.delete_model_version_tag(name, version, ARCHIVED_TAG)
        client.delete_model_version_tag(name, version, ARCHIVED_BY_TAG)
        record = AuditRecord("restore", name, None, None, version, reason or "restored")
        write_audit(client, registry.audit, record)
    return record
