"""Uploaded files: checked type and size, stored outside the web root under a generated name.

The name the browser gave is kept only as data; it never reaches the file system.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from timers.clock import now

from ..db import configured_path, instance_dir
from ..errors import InvalidInput
from ..models import Attachment, Case

MAX_BYTES = int(os.environ.get("ONEWINDOW_UPLOAD_MAX_BYTES", str(10 * 1024 * 1024)))
# per case, every upload counted (applicant's and staff's): a tracking code is not a licence to fill the disk
CASE_MAX_FILES = int(os.environ.get("ONEWINDOW_UPLOAD_CASE_MAX_FILES", "30"))
CASE_MAX_BYTES = int(os.environ.get("ONEWINDOW_UPLOAD_CASE_MAX_BYTES", str(50 * 1024 * 1024)))
# recognised by content, not by the name's extension
SIGNATURES = {b"%PDF-": "application/pdf", b"\x89PNG\r\n\x1a\n": "image/png", b"\xff\xd8\xff": "image/jpeg"}


def upload_dir() -> Path:
    """Absolute: a relative path would be resolved against whatever directory the reader runs in."""
    configured = os.environ.get("ONEWINDOW_UPLOAD_DIR")
    path = configured_path(configured) if configured else instance_dir() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def sniff(head: bytes) -> str | None:
    return next((kind for magic, kind in SIGNATURES.items() if head.startswith(magic)), None)


def save(session: Session, case: Case, kind: str, filename: str, stream: BinaryIO, actor: str,
         work_item_id: int | None = None) -> Attachment:
    content = stream.read(MAX_BYTES + 1)
    if len(content) > MAX_BYTES:
        raise InvalidInput("{filename}: larger than {max_bytes} MB",
                           {"filename": filename, "max_bytes": MAX_BYTES // (1024 * 1024)})
    if not content:
        raise InvalidInput("{filename}: empty file", {"filename": filename})
    content_type = sniff(content[:16])
    if content_type is None:
        raise InvalidInput("{filename}: only PDF, PNG or JPEG files are accepted", {"filename": filename})
    files, used = session.execute(select(func.count(), func.coalesce(func.sum(Attachment.size), 0))
                                  .where(Attachment.case_id == case.id)).one()
    if files + 1 > CASE_MAX_FILES or used + len(content) > CASE_MAX_BYTES:
        raise InvalidInput("files: at most {case_max_files} files and {case_max_bytes} MB in all per case "
                           "({files} files, {used:.1f} MB so far); ask the window to add more",
                           {"case_max_files": CASE_MAX_FILES, "case_max_bytes": CASE_MAX_BYTES // (1024 * 1024),
                            "files": files, "used": used / 1024 / 1024},
                           fields={"files": "quota"})
    stored = secrets.token_hex(16)
    target = upload_dir() / stored
    target.write_bytes(content)
    # a rolled-back transaction takes the file with it (Database.write)
    session.info.setdefault("written_files", []).append(str(target))
    display = Path(filename or "file").name[:200] or "file"
    row = Attachment(case_id=case.id, work_item_id=work_item_id, kind=kind, original_name=display,
                     stored_name=stored, content_type=content_type, size=len(content), uploaded_by=actor, at=now())
    session.add(row)
    session.flush()
    return row


def path_of(row: Attachment) -> Path:
    return upload_dir() / row.stored_name


def of_case(session: Session, case_id: int, kind: str | None = None) -> list[Attachment]:
    """A case's files, oldest first (of one kind: the applicant's supplements, a step's attachments)."""
    query = select(Attachment).where(Attachment.case_id == case_id)
    if kind is not None:
        query = query.where(Attachment.kind == kind)
    return list(session.scalars(query.order_by(Attachment.at, Attachment.id)))
