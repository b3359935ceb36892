"""The photo a Live-page session shows, by its digest; the bytes of an upload or a camera photo
are let go once decoded.

Streamlit keeps every uploaded file in memory for the session that sent it until the session
ends, also after the photo is answered and after a new uploader (a clicked example) replaces
it: with a class of phones, up to 20 MB each. Once the photo is decoded (the app keeps the small
pictures it shows, shared by digest), the file's bytes in Streamlit's store are replaced by
nothing, under the same file id, and the session keeps only the photo's name and digest. The
widget keeps showing the file; on later runs its value is that empty file, and the kept name and
digest stand in for it. A new file has a new id; a removed one gives no value, and is forgotten.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

import streamlit as st

KEPT = "live_kept"  # session state: source -> (file id, name, digest) of a photo whose bytes were let go


@dataclass(frozen=True)
class Picked:
    name: str
    digest: str
    data: bytes | None  # None: decoded before and let go; the shared photo cache holds it
    source: str | None = None  # the widget it came from ("upload", "camera"); None for an example
    file_id: str | None = None  # Streamlit's id of the uploaded file


def digest_of(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def pick(source: str, file, name: str) -> Picked | None:
    """The photo of one widget (`file`: its value, an UploadedFile or None): the file as sent,
    or the one whose bytes were let go, or None (and what it held is forgotten)."""
    kept = st.session_state.setdefault(KEPT, {})
    if file is None:
        kept.pop(source, None)
        return None
    held = kept.get(source)
    if held and held[0] == file.file_id and file.size == 0:
        return Picked(held[1], held[2], None, source, file.file_id)
    data = file.getvalue()
    return Picked(name, digest_of(data), data, source, file.file_id)


def release(picked: Picked) -> None:
    """The photo is decoded: keep its name and digest, and empty its file in Streamlit's store."""
    if picked.source is None or picked.file_id is None or picked.data is None:
        return
    st.session_state.setdefault(KEPT, {})[picked.source] = (picked.file_id, picked.name, picked.digest)
    from streamlit.runtime.scriptrunner import get_script_run_ctx
    from streamlit.runtime.uploaded_file_manager import UploadedFileRec

    ctx = get_script_run_ctx()
    store = getattr(ctx, "uploaded_file_mgr", None)
    if ctx is not None and hasattr(store, "add_file"):  # Streamlit's in-memory store: replaced by the same id
        store.add_file(ctx.session_id, UploadedFileRec(picked.file_id, picked.name, "application/octet-stream", b""))
