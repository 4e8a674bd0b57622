"""S3 storage: objects stream in with multipart upload, replaced atomically.

An object smaller than one part is one PutObject. A larger one is a multipart
upload whose parts go up on a background thread while the next part is read from
the source, so memory stays a few parts whatever the object's size; S3 makes the
new object visible only when the upload completes, so readers see the old object
or the new one. Any failure aborts the upload (no orphan parts are left billed).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from panorama_kpi.aws import Aws, aws_call, error_code, translate
from panorama_kpi.errors import LakeError
from panorama_kpi.lake.storage import Storage, Versioned, encoded

if TYPE_CHECKING:
    from panorama_kpi.settings import DatalakeSettings

log = logging.getLogger(__name__)

MiB = 1024 * 1024

#: A conditional write that lost: the object exists (If-None-Match), or changed or vanished (If-Match).
_LOST_RACE = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409", "NoSuchKey", "404")


class S3Storage(Storage):
    #: First part size. S3 needs >= 5 MiB for all but the last part and allows 10,000 parts,
    #: so the size grows by one step every 1,000 parts (up to ~440 GiB per object).
    part_size = 8 * MiB
    #: Parts uploading while the next one fills: memory is about (in_flight + 1) parts.
    in_flight = 2
    #: An unfinished multipart upload older than this was left by a killed process.
    stale_upload_age = dt.timedelta(days=1)

    def __init__(self, lake: DatalakeSettings, aws: Aws | None = None) -> None:
        if not lake.panorama_raw_data_bucket:
            raise LakeError("datalake.panorama_raw_data_bucket: required for an aws lake")
        self.bucket = lake.panorama_raw_data_bucket
        self.aws = aws or Aws(lake)
        self.encryption: dict[str, str] = (
            {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": lake.kms_key_id} if lake.kms_key_id else {}
        )

    @property
    def s3(self) -> Any:
        return self.aws.client("s3")

    def uri(self, key: str = "") -> str:
        return f"s3://{self.bucket}/{key}"

    def arn(self, key: str | None = None) -> str:
        return f"arn:aws:s3:::{self.bucket}" + ("" if key is None else f"/{key}")

    def _call(self, what: str, key: str | None = None) -> contextlib.AbstractContextManager[None]:
        return aws_call("s3", what, self.arn(key), LakeError)

    def _part_limit(self, parts_done: int) -> int:
        return self.part_size * (1 + parts_done // 1000)

    def write(self, key: str, chunks: Iterable[str]) -> int:
        data = encoded(key, chunks)
        first = bytearray()
        for piece in data:
            first += piece
            if len(first) >= self.part_size:
                break
        else:  # the whole object fits in one request
            with self._call(f"cannot write {self.uri(key)}", key):
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=first, **self.encryption)
            return len(first)
        return self._multipart(key, first, data)

    def _multipart(self, key: str, first: bytearray, rest: Iterator[bytes]) -> int:
        what = f"cannot write {self.uri(key)}"
        with self._call(what, key):
            upload_id = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key, **self.encryption)[
                "UploadId"
            ]
        pending: deque[Future[dict[str, Any]]] = deque()
        parts: list[dict[str, Any]] = []
        total = 0

        def upload(number: int, body: bytearray) -> dict[str, Any]:
            with self._call(what, key):
                etag = self.s3.upload_part(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )["ETag"]
            return {"PartNumber": number, "ETag": etag}

        pool = ThreadPoolExecutor(max_workers=self.in_flight, thread_name_prefix="s3-upload")
        try:
            buffer = first
            number = 0
            while buffer:
                limit = self._part_limit(number)
                while len(buffer) < limit and (piece := next(rest, None)) is not None:
                    buffer += piece
                # Hand the filled buffer over as the part; only the overshoot is copied.
                body, buffer = buffer, buffer[limit:]
                del body[limit:]
                number += 1
                total += len(body)
                while len(pending) >= self.in_flight:
                    parts.append(pending.popleft().result())
                pending.append(pool.submit(upload, number, body))
            while pending:
                parts.append(pending.popleft().result())
            with self._call(what, key):
                self.s3.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            pool.shutdown(wait=True, cancel_futures=True)
            self._abort(key, upload_id)
            raise
        pool.shutdown(wait=True)
        return total

    def _abort(self, key: str, upload_id: str) -> None:
        """Abort a failed upload so its parts are not kept (and billed); never masks the failure."""
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except Exception as exc:  # the original failure is what gets reported
            log.warning(
                "could not abort multipart upload %s of %s (%s); a bucket lifecycle rule "
                "AbortIncompleteMultipartUpload removes it",
                upload_id,
                self.uri(key),
                exc,
            )

    def read_text(self, key: str) -> str | None:
        from botocore.exceptions import ClientError

        with self._call(f"cannot read {self.uri(key)}", key):
            try:
                body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"]
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            return str(body.read().decode("utf-8"))

    def list(self, prefix: str) -> Iterator[str]:
        with self._call(f"cannot list {self.uri(prefix)}"):
            pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents", ()):
                    if not item["Key"].endswith("/"):
                        yield item["Key"]

    def delete(self, key: str) -> None:
        with self._call(f"cannot delete {self.uri(key)}", key):
            self.s3.delete_object(Bucket=self.bucket, Key=key)

    def delete_prefix(self, prefix: str) -> int:
        """DeleteObjects in batches of 1,000 (its limit)."""
        deleted = 0
        batch: list[str] = []
        for key in [*self.list(prefix), None]:
            if key is not None:
                batch.append(key)
            if batch and (key is None or len(batch) == 1000):
                with self._call(f"cannot delete objects under {self.uri(prefix)}", f"{prefix}*"):
                    answer = self.s3.delete_objects(
                        Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
                    )
                errors = answer.get("Errors") or []
                if errors:
                    e = errors[0]
                    raise LakeError(
                        f"cannot delete {self.uri(e.get('Key', ''))}: {e.get('Code')}: {e.get('Message')}"
                        + (" (needs s3:DeleteObject)" if e.get("Code") == "AccessDenied" else "")
                    )
                deleted += len(batch)
                batch = []
        return deleted

    # ---------------------------------------------------------------- lock primitives
    # What a lock object in the lake needs (small objects only): S3 conditional writes
    # (If-None-Match / If-Match on PutObject, If-Match on DeleteObject) make them atomic.

    def _conditional_put(self, key: str, text: str, **condition: str) -> bool:
        from botocore.exceptions import ClientError

        with self._call(f"cannot write {self.uri(key)}", key):
            try:
                self.s3.put_object(
                    Bucket=self.bucket, Key=key, Body=text.encode("utf-8"), **condition, **self.encryption
                )
            except ClientError as exc:
                if error_code(exc) in _LOST_RACE:
                    return False
                raise
        return True

    def create_exclusive(self, key: str, text: str) -> bool:
        return self._conditional_put(key, text, IfNoneMatch="*")

    def read_versioned(self, key: str) -> Versioned | None:
        from botocore.exceptions import ClientError

        with self._call(f"cannot read {self.uri(key)}", key):
            try:
                answer = self.s3.get_object(Bucket=self.bucket, Key=key)
            except ClientError as exc:
                if error_code(exc) in ("NoSuchKey", "404"):
                    return None
                raise
            text = answer["Body"].read().decode("utf-8", "replace")
        modified = answer["LastModified"].astimezone(dt.UTC).replace(tzinfo=None)
        return Versioned(text, str(answer["ETag"]), modified)

    def replace_if(self, key: str, text: str, token: str) -> bool:
        return self._conditional_put(key, text, IfMatch=token)

    def delete_if(self, key: str, token: str) -> bool:
        """DeleteObject with If-Match; where a store does not implement conditional deletes,
        check the version then delete (a lock is deleted only by its holder)."""
        from botocore.exceptions import ClientError

        with self._call(f"cannot delete {self.uri(key)}", key):
            try:
                self.s3.delete_object(Bucket=self.bucket, Key=key, IfMatch=token)
                return True
            except ClientError as exc:
                if error_code(exc) in _LOST_RACE:
                    return False
                if error_code(exc) not in ("NotImplemented", "InvalidArgument", "501"):
                    raise
        current = self.read_versioned(key)
        if current is None or current.token != token:
            return False
        self.delete(key)
        return True

    def remove_temporaries(self, prefix: str) -> int:
        """S3 writes leave no temporary objects, but a killed process leaves its multipart
        upload: abort those under `prefix` older than a day (a younger one may be another
        site's write in progress)."""
        cutoff = dt.datetime.now(dt.UTC) - self.stale_upload_age
        aborted = 0
        with self._call(f"cannot list the multipart uploads under {self.uri(prefix)}", f"{prefix}*"):
            pages = self.s3.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix)
            stale = [u for page in pages for u in page.get("Uploads", ()) if u["Initiated"] < cutoff]
        for upload in stale:
            self._abort(upload["Key"], upload["UploadId"])
            aborted += 1
        return aborted

    def check(self) -> str:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.s3.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            if error_code(exc) in ("404", "NoSuchBucket"):
                raise LakeError(
                    f"bucket {self.bucket!r} does not exist: create it or fix datalake.panorama_raw_data_bucket"
                ) from None
            raise translate(exc, "s3", f"cannot reach bucket {self.bucket!r}", self.arn(), LakeError) from None
        key = "_panorama/connection-test"
        self.write(key, ["ok\n"])
        self.delete(key)
        return f"{self.uri()} is writable (region {self.aws.region})"
