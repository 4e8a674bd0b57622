"""AWS clients and the translation of AWS errors into one actionable line.

Every client retries with botocore's adaptive mode (client-side rate limiting on
throttling), so no call site sleeps on its own. Errors name the IAM action and
the resource a denied call needed, and never include credentials.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from panorama_kpi.errors import PanoramaError, SettingsError

if TYPE_CHECKING:
    from panorama_kpi.settings import DatalakeSettings

MAX_RETRIES = 10

#: API operations whose IAM action has another name.
_IAM_ACTIONS = {
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:HeadBucket": "s3:ListBucket",
    "s3:HeadObject": "s3:GetObject",
    "s3:CreateMultipartUpload": "s3:PutObject",
    "s3:UploadPart": "s3:PutObject",
    "s3:CompleteMultipartUpload": "s3:PutObject",
    "s3:DeleteObjects": "s3:DeleteObject",
}
_DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "Forbidden", "403"}
_BAD_CREDENTIALS = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "UnrecognizedClientException",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
    "InvalidClientTokenId",
}
_THROTTLED = {
    "ThrottlingException",
    "Throttling",
    "SlowDown",
    "TooManyRequestsException",
    "RequestLimitExceeded",
}
_WRONG_REGION = {
    "PermanentRedirect",
    "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
    "301",
}


def iam_action(service: str, operation: str) -> str:
    action = f"{service}:{operation}"
    return _IAM_ACTIONS.get(action, action)


class Aws:
    """Clients for one lake's settings, built on first use (constructing connects to nothing)."""

    #: Retries per call after the first attempt (botocore adaptive mode: backoff plus client-side rate limiting).
    max_attempts = MAX_RETRIES

    def __init__(self, lake: DatalakeSettings) -> None:
        self.lake = lake
        self._session: Any = None
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    @property
    def region(self) -> str:
        return self.lake.aws_region

    def client(self, service: str) -> Any:
        with self._lock:
            if service not in self._clients:
                self._clients[service] = self._make(service)
            return self._clients[service]

    def _make(self, service: str) -> Any:
        import boto3
        from botocore.config import Config

        lake = self.lake
        if bool(lake.aws_access_key) != bool(lake.aws_secret_access_key):
            raise SettingsError("datalake.aws_access_key, aws_secret_access_key: set both, or neither")
        if self._session is None:
            try:
                self._session = boto3.Session(
                    aws_access_key_id=lake.aws_access_key or None,
                    aws_secret_access_key=lake.aws_secret_access_key or None,
                    region_name=lake.aws_region,
                    profile_name=lake.aws_profile or None,
                )
            except Exception as exc:  # botocore's ProfileNotFound and friends
                raise SettingsError(f"datalake.aws_profile: {exc}") from None
        options: dict[str, Any] = {"retries": {"mode": "adaptive", "max_attempts": self.max_attempts}}
        endpoint = lake.endpoint_url or None
        if endpoint and os.environ.get(f"AWS_ENDPOINT_URL_{service.upper()}"):
            endpoint = None  # boto3's per-service endpoint setting wins for that service
        if endpoint and service == "s3":
            options["s3"] = {"addressing_style": "path"}  # what S3-compatible stores serve
        return self._session.client(service, endpoint_url=endpoint, config=Config(**options))


def translate(
    exc: BaseException, service: str, what: str, resource: str, error: type[PanoramaError]
) -> PanoramaError:
    """One line for an AWS failure: what we were doing, and what to change."""
    from botocore.exceptions import (
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", ""))
        message = str(err.get("Message", "")).strip() or code
        action = iam_action(service, exc.operation_name)
        if code in _DENIED:
            return error(f"{what}: access denied: the AWS identity needs {action} on {resource} ({message})")
        if code in _BAD_CREDENTIALS:
            return error(
                f"{what}: AWS rejected the credentials ({code}): check datalake.aws_access_key/"
                "aws_secret_access_key, aws_profile or the environment"
            )
        if code in _THROTTLED:
            return error(f"{what}: still throttled by AWS ({code}) after {MAX_RETRIES} retries; retry later")
        if code == "NoSuchBucket":
            return error(f"{what}: the bucket does not exist: check datalake.panorama_raw_data_bucket")
        if code in _WRONG_REGION:
            return error(
                f"{what}: {resource} is in another region{_region_of(exc)}: set datalake.aws_region to it"
            )
        return error(f"{what}: {code}: {message}")
    if isinstance(exc, NoCredentialsError):
        return error(
            f"{what}: no AWS credentials found: set datalake.aws_access_key and aws_secret_access_key, "
            "aws_profile, or the standard AWS environment/credential files"
        )
    if isinstance(exc, NoRegionError):
        return error(f"{what}: no AWS region: set datalake.aws_region")
    if isinstance(exc, EndpointConnectionError):
        return error(
            f"{what}: cannot reach {exc.kwargs.get('endpoint_url', 'AWS')}: check the network and aws_region"
        )
    return error(f"{what}: {type(exc).__name__}: {exc}")


def _region_of(exc: Any) -> str:
    headers = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    region = headers.get("x-amz-bucket-region") or exc.response.get("Error", {}).get("Region")
    return f" ({region})" if region else ""


@contextlib.contextmanager
def aws_call(service: str, what: str, resource: str, error: type[PanoramaError]) -> Iterator[None]:
    """Turn botocore failures inside the block into one PanoramaError line."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        raise translate(exc, service, what, resource, error) from None


def error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))
