"""Adapters for the ports, chosen from a location string in one place."""

from __future__ import annotations

from urllib.parse import urlsplit

from digestpub.errors import ConfigError
from digestpub.ports import ObjectStore


def open_store(location: str) -> ObjectStore:
    """``s3://bucket/prefix`` opens S3 (boto3 imported only then); anything else is a folder."""
    if location.startswith("s3://"):
        parts = urlsplit(location)
        if not parts.netloc:
            raise ConfigError(f"{location!r} names no bucket: use s3://bucket/prefix")
        from digestpub.adapters.s3 import S3Store

        return S3Store(parts.netloc, parts.path.lstrip("/"))
    if "://" in location:
        raise ConfigError(f"{location!r}: a store is s3://bucket/prefix or a local folder")
    from digestpub.adapters.folder import FolderStore

    return FolderStore(location)
