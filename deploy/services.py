"""Backups of a whole node (database, media, node key) and their restore into an empty node.

A backup is one file encrypted to the operator's public key (deploy/backupcrypt.py). Restore first
authenticates and unpacks everything into a private scratch directory; only a backup that opened
whole is moved into place, so a changed byte or a wrong key leaves the node exactly as it was.
"""

import datetime as dt
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from contextlib import closing
from pathlib import Path, PurePosixPath

from django.conf import settings
from django.db import connection, connections

from ledger import catchup

from . import backupcrypt

logger = logging.getLogger(__name__)

SUFFIX = ".shbk"
DATABASE_FILES = {"sqlite": "db.sqlite3", "postgresql": "db.pgdump"}
SINGLE_FILES = {"manifest.json", "node_key.pem", "secret_key", *DATABASE_FILES.values()}


class BackupError(Exception):
    """The backup could not be made or restored; nothing was changed."""


def backup_dir() -> Path:
    return Path(getattr(settings, "BACKUP_DIR", None) or settings.SILICONHEALTH_HOME / "backups")


def recipient_path() -> Path:
    configured = getattr(settings, "BACKUP_RECIPIENT", None) or os.environ.get(
        "SILICONHEALTH_BACKUP_RECIPIENT"
    )
    return Path(configured or settings.SILICONHEALTH_HOME / "backup_recipient.pem")


def newest_backup_age(out_dir: Path) -> dt.timedelta | None:
    """How old the newest backup in `out_dir` is (None: there is none)."""
    newest = max((p.stat().st_mtime for p in Path(out_dir).glob(f"siliconhealth-*{SUFFIX}")), default=None)
    if newest is None:
        return None
    return dt.datetime.now(dt.UTC) - dt.datetime.fromtimestamp(newest, dt.UTC)


def _engine() -> str:
    vendor = connection.vendor
    if vendor not in DATABASE_FILES:
        raise BackupError(f"cannot back up a {vendor} database")
    return vendor


def _pg_tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(f"{name} is not installed (apt-get install postgresql-client)")
    return found


def _pg_args() -> tuple[list[str], dict]:
    db = settings.DATABASES["default"]
    args = [
        "-h",
        db.get("HOST") or "127.0.0.1",
        "-p",
        str(db.get("PORT") or 5432),
        "-U",
        db.get("USER") or "",
    ]
    env = {**os.environ, "PGPASSWORD": db.get("PASSWORD") or ""}
    return args, env


def _dump_database(engine: str, target: Path) -> None:
    if engine == "sqlite":
        # The online backup API copies a consistent snapshot while other processes keep writing.
        source = sqlite3.connect(settings.DATABASES["default"]["NAME"])
        destination = sqlite3.connect(target)
        try:
            with destination:
                source.backup(destination)
        finally:
            source.close()
            destination.close()
        return
    args, env = _pg_args()
    name = settings.DATABASES["default"]["NAME"]
    result = subprocess.run(
        [_pg_tool("pg_dump"), "--format=custom", "--no-owner", *args, "-f", str(target), name],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_dump failed: {result.stderr.strip()[:500]}")


def _snapshot_log_size(snapshot: Path, node_id: str) -> int:
    """This node's log size as the snapshot holds it (writes go on while the backup is made)."""
    with closing(sqlite3.connect(f"file:{snapshot}?mode=ro", uri=True)) as db:
        row = db.execute("SELECT size FROM ledger_loghead WHERE origin = ?", (node_id,)).fetchone()
    return int(row[0]) if row else 0


def _media_files() -> list[Path]:
    root = Path(settings.MEDIA_ROOT)
    if not root.is_dir():
        return []
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink())


# Beat checks hourly; a backup younger than this is fresh enough (so a systemd timer never doubles it).
BACKUP_DUE_AFTER = dt.timedelta(hours=20)


def create_backup_if_due() -> str | None:
    """The nightly job: a backup unless one is fresh, keeping the tier profile's number of them.
    Nothing before the operator has installed their public key (there is nobody to encrypt to)."""
    if not recipient_path().exists():
        logger.warning("backup skipped: no operator public key at %s", recipient_path())
        return None
    age = newest_backup_age(backup_dir())
    if age is not None and age < BACKUP_DUE_AFTER:
        return None
    return create_backup(out_dir=backup_dir(), keep=settings.PROFILE.backup_keep)["path"]


def create_backup(*, out_dir: Path, recipient: Path | None = None, keep: int | None = None) -> dict:
    """Write one encrypted backup file of this node into `out_dir` (atomically: temp name, rename)."""
    from ledger.selectors import log_size, self_node_id  # the ledger app is only needed here

    recipient = Path(recipient or recipient_path())
    try:
        public = backupcrypt.load_public(recipient.read_bytes())
    except OSError as error:
        raise BackupError(
            f"no backup recipient key at {recipient} ({error.strerror}); run `backup keygen` on the "
            "operator's machine and copy the public key here"
        ) from None
    engine = _engine()
    node_id = self_node_id()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    final = out_dir / f"siliconhealth-{node_id}-{stamp}{SUFFIX}"
    media = _media_files()
    scratch = Path(tempfile.mkdtemp(prefix=".backup-", dir=settings.SILICONHEALTH_HOME))
    partial = out_dir / f".{final.name}.partial"
    try:
        database = scratch / DATABASE_FILES[engine]
        size_before = log_size(node_id)  # PostgreSQL: pg_dump's snapshot holds at least this many
        _dump_database(engine, database)
        manifest = {
            "format": 1,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "node_id": node_id,
            "tier": settings.TIER,
            "database": engine,
            "log_size": _snapshot_log_size(database, node_id) if engine == "sqlite" else size_before,
            "media_files": len(media),
        }
        (scratch / "manifest.json").write_text(json.dumps(manifest, sort_keys=True))
        with open(partial, "wb") as sink:
            writer = backupcrypt.EncryptingWriter(sink, public)
            with tarfile.open(fileobj=writer, mode="w|") as archive:
                archive.add(scratch / "manifest.json", "manifest.json")
                archive.add(database, database.name)
                archive.add(settings.NODE_KEY_PATH, "node_key.pem")
                secret = settings.SILICONHEALTH_HOME / "secret_key"
                if secret.exists():
                    archive.add(secret, "secret_key")
                for path in media:
                    archive.add(path, "media/" + path.relative_to(settings.MEDIA_ROOT).as_posix())
            writer.close()
            sink.flush()
            os.fsync(sink.fileno())
        os.replace(partial, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        partial.unlink(missing_ok=True)
    if keep:
        for old in sorted(out_dir.glob(f"siliconhealth-{node_id}-*{SUFFIX}"))[:-keep]:
            old.unlink()
    return {**manifest, "path": str(final), "bytes": final.stat().st_size}


# ---- restore -----------------------------------------------------------------------------------


def _not_empty_reasons(engine: str) -> list[str]:
    reasons = []
    if Path(settings.NODE_KEY_PATH).exists():
        reasons.append(f"it has a node key ({settings.NODE_KEY_PATH})")
    if _media_files():
        reasons.append(f"it has media files ({settings.MEDIA_ROOT})")
    if engine == "sqlite" and not Path(settings.DATABASES["default"]["NAME"]).exists():
        return reasons
    tables = connection.introspection.table_names()
    for table in ("ledger_entry", "records_patient"):
        if table in tables:
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT 1 FROM {table} LIMIT 1")  # noqa: S608 (fixed table names)
                if cursor.fetchone():
                    reasons.append(f"its database holds rows in {table}")
    return reasons


def _safe_members(archive: tarfile.TarFile) -> list[tarfile.TarInfo]:
    members = archive.getmembers()
    for member in members:
        path = PurePosixPath(member.name)
        if path.is_absolute() or ".." in path.parts or not (member.isfile() or member.isdir()):
            raise BackupError(f"the backup holds an unsafe entry {member.name!r}")
        if not (member.name in SINGLE_FILES or path.parts[0] == "media"):
            raise BackupError(f"the backup holds an unexpected entry {member.name!r}")
    return members


def _replace_file(source: Path, target: Path, mode: int) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(source, mode)
    os.replace(source, target)


def restore_backup(*, path: Path, key_path: Path) -> dict:
    """Restore a backup into this node, which must be empty (no node key, media or records)."""
    try:
        key = backupcrypt.load_private(Path(key_path).read_bytes())
        source = open(path, "rb")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise BackupError(f"cannot read {error.filename}: {error.strerror}") from None
    engine = _engine()
    reasons = _not_empty_reasons(engine)
    if reasons:
        source.close()
        raise BackupError("refusing to restore into a node that is not empty: " + "; ".join(reasons))
    scratch = Path(tempfile.mkdtemp(prefix=".restore-", dir=settings.SILICONHEALTH_HOME))
    flagged = False
    try:
        plain = scratch / "payload.tar"
        with source, open(plain, "wb") as sink:
            backupcrypt.decrypt_to(source, sink, key)  # raises before anything is unpacked
        unpacked = scratch / "unpacked"
        with tarfile.open(plain, mode="r:") as archive:
            archive.extractall(unpacked, members=_safe_members(archive), filter="data")
        manifest = json.loads((unpacked / "manifest.json").read_text())
        if manifest.get("database") != engine:
            raise BackupError(
                f"the backup holds a {manifest.get('database')} database; this node runs {engine}"
            )
        database = unpacked / DATABASE_FILES[engine]
        if not database.is_file() or not (unpacked / "node_key.pem").is_file():
            raise BackupError("the backup lacks its database or node key")
        # Peers may hold entries of our log written after this backup: no writes until a sync round
        # has brought them back (ledger/catchup.py). Set before the database lands, so no write slips in.
        catchup.mark_catching_up(
            log_size=int(manifest.get("log_size") or 0), reason=f"restored from {Path(path).name}"
        )
        flagged = True
        _restore_database(engine, database)
        _replace_file(unpacked / "node_key.pem", Path(settings.NODE_KEY_PATH), 0o600)
        if (unpacked / "secret_key").is_file():
            _replace_file(unpacked / "secret_key", settings.SILICONHEALTH_HOME / "secret_key", 0o600)
        media_files = 0
        if (unpacked / "media").is_dir():
            for file in sorted(p for p in (unpacked / "media").rglob("*") if p.is_file()):
                _replace_file(file, Path(settings.MEDIA_ROOT) / file.relative_to(unpacked / "media"), 0o640)
                media_files += 1
    except (backupcrypt.BackupCryptError, tarfile.TarError, ValueError) as error:
        if flagged:
            catchup.clear_catching_up()
        raise BackupError(f"refused {path}: {error}") from None
    except BaseException:
        if flagged:
            catchup.clear_catching_up()
        raise
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {**manifest, "restored_media_files": media_files, "path": str(path), "catching_up": True}


def _restore_database(engine: str, database: Path) -> None:
    if engine == "sqlite":
        target = Path(settings.DATABASES["default"]["NAME"])
        connections.close_all()
        for stale in (Path(f"{target}-wal"), Path(f"{target}-shm")):
            stale.unlink(missing_ok=True)  # the empty database's journal must not replay over ours
        _replace_file(database, target, 0o600)
        return
    connections.close_all()
    args, env = _pg_args()
    result = subprocess.run(
        [
            _pg_tool("pg_restore"),
            "--clean",
            "--if-exists",
            "--no-owner",
            *args,
            "-d",
            settings.DATABASES["default"]["NAME"],
            str(database),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if result.returncode != 0:
        raise BackupError(f"pg_restore failed: {result.stderr.strip()[:500]}")
