"""S3 as an object store: paginated listing from a start key, conditional writes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from digestpub.errors import ObjectTooLarge, PreconditionFailed, StorageError
from digestpub.model import ObjectInfo

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict"})
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


_ATTEMPTS = 8
"""Attempts in all per request. S3 answers some requests with 500 or 503 even when
well; at botocore's default of 3 a cold run of thousands of requests fails now and
then, and a run that fails does all its work again."""


def _config() -> Config:
    """Exponential backoff with jitter (botocore's standard mode); ``AWS_MAX_ATTEMPTS`` still wins.

    Uploads run from a thread pool; the default pool of 10 connections would make them queue.
    """
    if os.environ.get("AWS_MAX_ATTEMPTS"):
        return Config(max_pool_connections=32, retries={"mode": "standard"})
    return Config(max_pool_connections=32, retries={"mode": "standard", "total_max_attempts": _ATTEMPTS})


def _error_code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


class S3Store:
    is_local = False

    def __init__(self, bucket: str, prefix: str = "", client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client: S3Client = client or boto3.client("s3", config=_config())

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def list(self, prefix: str = "", start_after: str | None = None) -> Iterator[ObjectInfo]:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix + prefix}
        if start_after:
            arguments["StartAfter"] = self.prefix + start_after
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**arguments):
                for item in page.get("Contents", []):
                    yield ObjectInfo(
                        key=item["Key"][len(self.prefix) :],
                        etag=item["ETag"].strip('"'),
                        size=item["Size"],
                    )
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot list {self.url}{prefix}: {error}") from error

    def read(self, key: str, max_bytes: int | None = None) -> tuple[bytes, str] | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.prefix + key)
            version = response["ETag"].strip('"')
            if max_bytes is not None and response["ContentLength"] > max_bytes:
                # The headers tell the size: the body is dropped unread.
                response["Body"].close()
                raise ObjectTooLarge(response["ContentLength"], version)
            return response["Body"].read(), version
        except ClientError as error:
            if _error_code(error) in _MISSING_CODES:
                return None
            raise StorageError(f"cannot read {self.url}{key}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"cannot read {self.url}{key}: {error}") from error

    def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        cache_control: str | None = None,
        if_match: str | None = None,
        if_none_match: bool = False,
    ) -> str:
        arguments: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key, "Body": data}
        if content_type:
            arguments["ContentType"] = content_type
        if cache_control:
            arguments["CacheControl"] = cache_control
        if if_match is not None:
            arguments["IfMatch"] = f'"{if_match}"'
        if if_none_match:
            arguments["IfNoneMatch"] = "*"
        try:
            response = self.client.put_object(**arguments)
        except ClientError as error:
            code = _error_code(error)
            # If-Match on an object deleted since it was read answers 404.
            if code in _PRECONDITION_CODES or (if_match is not None and code in _MISSING_CODES):
                raise PreconditionFailed(f"{self.url}{key} changed since it was read") from error
            raise StorageError(f"cannot write {self.url}{key}: {error}") from error
        except BotoCoreError as error:
            raise StorageError(f"cannot write {self.url}{key}: {error}") from error
        return response["ETag"].strip('"')

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        except (ClientError, BotoCoreError) as error:
            raise StorageError(f"cannot delete {self.url}{key}: {error}") from error
