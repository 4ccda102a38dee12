"""Case documents: uploads kept by their SHA-256, and the notices the court generates."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from sqlalchemy.orm import Session

from zhixing.cases import policy
from zhixing.cases.models import Case, CaseDocument
from zhixing.cases.service import event
from zhixing.core import audit
from zhixing.core.actor import Actor
from zhixing.core.clock import utcnow
from zhixing.core.errors import NotFound, ValidationFailed
from zhixing.core.settings import get_settings

# Content is recognised by its first bytes; the name and the declared type are not trusted.
SIGNATURES: tuple[tuple[bytes, int, str], ...] = (
    (b"%PDF-", 0, "application/pdf"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"ftyp", 4, "video/mp4"),
    (b"PK\x03\x04", 0, "application/zip"),  # docx/xlsx are zip containers
)
OFFICE_TYPES = {
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
CHUNK = 1 << 16


def sniff(head: bytes, filename: str) -> str | None:
    for magic, offset, kind in SIGNATURES:
        if head[offset:offset + len(magic)] == magic:
            if kind == "application/zip":
                return OFFICE_TYPES.get(Path(filename).suffix.lower())
            return kind
    return None


def storage_root() -> Path:
    return Path(get_settings().data_dir) / "documents"


def path_for(sha256: str) -> Path:
    return storage_root() / sha256[:2] / sha256


def store(stream: BinaryIO, filename: str, limit: int) -> tuple[str, int, str]:
    """Copy the upload to content-addressed storage; returns (sha256, size, content type)."""
    root = storage_root()
    root.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    size = 0
    head = b""
    with tempfile.NamedTemporaryFile(dir=root, delete=False) as tmp:
        try:
            while chunk := stream.read(CHUNK):
                if len(head) < 16:
                    head += chunk[:16]
                size += len(chunk)
                if size > limit:
                    raise ValidationFailed(f"the file is larger than {limit} bytes",
                                           code="file_too_large", field="file")
                digest.update(chunk)
                tmp.write(chunk)
            kind = sniff(head, filename)
            if size == 0:
                raise ValidationFailed("the file is empty", code="empty_file", field="file")
            if kind is None:
                raise ValidationFailed("only PDF, JPEG, PNG, MP4, DOCX and XLSX files are "
                                       "accepted", code="file_type_not_allowed", field="file")
        except BaseException:
            Path(tmp.name).unlink(missing_ok=True)
            raise
    sha = digest.hexdigest()
    target = path_for(sha)
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp.name, target)  # same content, same name: a repeat upload is harmless
    return sha, size, kind


def add_document(session: Session, actor: Actor, case: Case, stream: BinaryIO, filename: str,
                 note: str | None = None) -> CaseDocument:
    policy.require_act(actor, case)
    clean_name = Path(filename or "document").name[:255] or "document"
    sha, size, kind = store(stream, clean_name, get_settings().max_upload_bytes)
    doc = CaseDocument(case_id=case.id, filename=clean_name, content_type=kind,
                       size_bytes=size, sha256=sha, uploaded_by=actor.user_id,
                       uploaded_at=utcnow(), note=note)
    session.add(doc)
    session.flush()
    event(session, case, actor, "document", f"文书: {clean_name}", document_id=doc.id,
          sha256=sha, size_bytes=size)
    audit.record(session, actor, "case.document_added", object_type="document",
                 object_id=doc.id, court_id=case.court_id, case_id=case.id,
                 details={"sha256": sha})
    return doc


def get_document(session: Session, case: Case, doc_id: int) -> CaseDocument:
    doc = session.get(CaseDocument, doc_id)
    if doc is None or doc.case_id != case.id:
        raise NotFound(f"document {doc_id} not found", code="document_not_found")
    return doc


def query_code(case_number: str) -> str:
    """The code printed on the parties' notice for the public progress lookup. Derived from the
    server secret, so it needs no storage and cannot be guessed from the case number."""
    mac = hmac.new(get_settings().secret_key.encode(), f"query-code:{case_number}".encode(),
                   hashlib.sha256).digest()
    return base64.b32encode(mac).decode()[:10]


def query_code_matches(case_number: str, code: str) -> bool:
    normal = code.strip().upper().replace(" ", "").replace("-", "")
    # Bytes, not str: compare_digest refuses non-ASCII text, and anyone can send any.
    return hmac.compare_digest(query_code(case_number).encode(), normal.encode())
