"""The ``s3`` sink: any S3-compatible endpoint (AWS S3, MinIO, Ceph RGW), through the ``minio`` client.

The client is the optional extra ``dwellir-harvester[s3]`` and is imported only when an ``s3`` sink
is configured (or ``fleet`` reads an ``s3://`` source).
"""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Iterator, Mapping
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from dwellir_harvester.config import ConfigError
from dwellir_harvester.lib.files import untrusted_reason
from dwellir_harvester.lib.limits import one_line

from ._base import Sink, SinkError

#: The most bytes of a credentials file.
MAX_CREDENTIALS_BYTES = 64 * 1024
DEFAULT_TIMEOUT = 10.0
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "ExpiredToken",
    "InvalidToken",
    "TokenRefreshRequired",
    "InvalidClientTokenId",
}


class Credentials(NamedTuple):
    """An access key, its secret and an optional session token; the repr shows none of them."""

    access_key_id: str
    secret_access_key: str
    session_token: str | None = None

    def __repr__(self) -> str:
        return "Credentials(<redacted>)"

    def scrub(self, text: str) -> str:
        """``text`` with every credential value in it replaced by ``<redacted>``."""
        for secret in (self.access_key_id, self.secret_access_key, self.session_token):
            if secret:
                text = text.replace(secret, "<redacted>")
        return text


def read_credentials(path: str) -> Credentials:
    """The credentials in a YAML or JSON file of ``access_key_id``, ``secret_access_key``, ``session_token``.

    Refused (like a token file) when other users can read it or change it.

    Raises:
        ConfigError: naming the file and what is wrong, never a value.
    """
    from dwellir_harvester.config import parse_yaml, read_bounded

    try:
        st = os.stat(path)
        untrusted = untrusted_reason(path)
    except OSError as err:
        raise ConfigError(f"credentials file cannot be read: {err.strerror or err}", file=path) from None
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError("credentials file is not a regular file", file=path)
    if untrusted:
        raise ConfigError(f"credentials file cannot be trusted: {untrusted}", file=path)
    if st.st_mode & stat.S_IROTH:
        mode = stat.S_IMODE(st.st_mode)
        raise ConfigError(f"credentials file is readable by every user (mode {mode:04o}); chmod o-r it", file=path)
    raw = read_bounded(path, MAX_CREDENTIALS_BYTES)
    try:
        data = parse_yaml(raw.decode("utf-8"), path)
    except UnicodeDecodeError:
        raise ConfigError("credentials file is not UTF-8", file=path) from None
    except ConfigError as err:  # parse errors never show a value, but say nothing of the text anyway
        raise ConfigError("credentials file is not valid YAML or JSON", file=path) from err
    if not isinstance(data, dict):
        raise ConfigError("credentials file must hold a mapping of access_key_id, secret_access_key", file=path)
    known = {"access_key_id", "secret_access_key", "session_token"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown key (known: {', '.join(sorted(known))})", file=path, key=one_line(key, 60))
    for key in ("access_key_id", "secret_access_key"):
        if not isinstance(data.get(key), str) or not data[key]:
            raise ConfigError("missing, or not a string", file=path, key=key)
    token = data.get("session_token")
    if token is not None and (not isinstance(token, str) or not token):
        raise ConfigError("not a string", file=path, key="session_token")
    return Credentials(data["access_key_id"], data["secret_access_key"], token)


def environment_credentials(environ: Mapping[str, str]) -> Credentials | None:
    """``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY`` and ``AWS_SESSION_TOKEN``; None when unset."""
    key, secret = environ.get("AWS_ACCESS_KEY_ID"), environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, environ.get("AWS_SESSION_TOKEN") or None)
    return None


class S3Sink(Sink):
    """PUTs each object to ``bucket`` with its metadata (``x-amz-meta-*``).

    Args:
        bucket: the bucket (it must exist).
        endpoint_url: ``http(s)://host[:port]``; None: AWS S3.
        region: the region; None: asked of the endpoint once (GetBucketLocation).
        path_style: bucket in the path (True) or in the host name (False); None: the client's
            choice (path style for a custom endpoint, virtual host for AWS).
        credentials: the keys; None: anonymous requests.
        timeout: seconds for connecting and for each read.

    Raises:
        ConfigError: the S3 client is not installed (``pip install 'dwellir-harvester[s3]'``).
    """

    TYPE = "s3"

    def __init__(
        self,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        path_style: bool | None = None,
        credentials: Credentials | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        try:
            import certifi
            import urllib3
            from minio import Minio
        except ImportError:
            raise ConfigError(
                "the s3 sink needs the S3 client: pip install 'dwellir-harvester[s3]'", key="sinks"
            ) from None
        self.bucket, self.credentials = bucket, credentials
        parts = urlsplit(endpoint_url or "https://s3.amazonaws.com")
        self.endpoint = f"{parts.scheme}://{parts.netloc}"
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=timeout, read=timeout),
            retries=False,  # the sender retries, with backoff, from the spool
            maxsize=4,
            cert_reqs="CERT_REQUIRED",
            ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        )
        self.client = Minio(
            parts.netloc,
            access_key=credentials.access_key_id if credentials else None,
            secret_key=credentials.secret_access_key if credentials else None,
            session_token=credentials.session_token if credentials else None,
            secure=parts.scheme == "https",
            region=region,
            http_client=http,
        )
        if path_style is True:
            self.client.disable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
        elif path_style is False:
            self.client.enable_virtual_style_endpoint()  # type: ignore[no-untyped-call]

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any], environ: Mapping[str, str]) -> S3Sink:
        """The sink of an ``{type: s3, bucket: ...}`` entry; credentials from its file, else the environment."""
        file = settings.get("credentials_file")
        credentials = read_credentials(file) if file else environment_credentials(environ)
        return cls(
            settings["bucket"],
            endpoint_url=settings.get("endpoint_url") or environ.get("AWS_ENDPOINT_URL") or None,
            region=settings.get("region") or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
            path_style=settings.get("path_style"),
            credentials=credentials,
            timeout=float(settings.get("timeout", DEFAULT_TIMEOUT)),
        )

    def send(self, key: str, body: bytes, metadata: Mapping[str, str]) -> None:
        """PUT ``body`` at ``key`` with ``metadata``."""
        try:
            self.client.put_object(
                self.bucket,
                key,
                io.BytesIO(body),
                len(body),
                content_type="application/json",
                metadata=dict(metadata),
            )
        except Exception as err:  # noqa: BLE001 - the client raises urllib3's, minio's and ValueError
            raise SinkError(self.explain(err, f"PUT {key}")) from None

    def keys(self, prefix: str) -> Iterator[str]:
        """Every key under ``prefix`` (recursively).

        Raises:
            SinkError: the listing failed.
        """
        try:
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=True):
                if item.object_name is not None:
                    yield item.object_name
        except Exception as err:  # noqa: BLE001 - as in send
            raise SinkError(self.explain(err, f"listing {prefix or '/'}")) from None

    def children(self, prefix: str) -> tuple[list[str], list[str]]:
        """The "directories" (common prefixes, ending in ``/``) and the keys right under ``prefix``.

        Raises:
            SinkError: the listing failed.
        """
        dirs: list[str] = []
        keys: list[str] = []
        try:
            for item in self.client.list_objects(self.bucket, prefix=prefix, recursive=False):
                name = item.object_name
                if name is None:
                    continue
                (dirs if item.is_dir else keys).append(name)
        except Exception as err:  # noqa: BLE001 - as in send
            raise SinkError(self.explain(err, f"listing {prefix or '/'}")) from None
        return dirs, keys

    def get(self, key: str, limit: int) -> bytes:
        """The object at ``key``, at most ``limit`` bytes.

        Raises:
            SinkError: it could not be read, or it is larger than ``limit``.
        """
        response = None
        try:
            response = self.client.get_object(self.bucket, key)
            data = response.read(limit + 1, decode_content=True)
        except Exception as err:  # noqa: BLE001 - as in send
            raise SinkError(self.explain(err, f"GET {key}")) from None
        finally:
            if response is not None:
                response.close()
                response.release_conn()
        if len(data) > limit:
            raise SinkError(f"larger than {limit} bytes")
        return bytes(data)

    def explain(self, err: BaseException, what: str) -> str:
        """One line for a failed request, naming the endpoint and bucket, never a credential."""
        from minio.error import S3Error

        where = f"{self.endpoint} bucket {self.bucket}: {what}"
        if isinstance(err, S3Error):
            text = f"{err.code}: {err.message}"
            if err.code in _AUTH_CODES:
                text += " (the endpoint refused the credentials: check credentials_file or the AWS_* variables)"
        else:
            text = f"{type(err).__name__}: {err}"
        if self.credentials is not None:
            text = self.credentials.scrub(text)
        return one_line(f"{where}: {text}", 400)

    def describe(self) -> str:
        """The endpoint and bucket."""
        return f"{self.endpoint} bucket {self.bucket}"

    def close(self) -> None:
        """Close the connection pool."""
        http = getattr(self.client, "_http", None)
        if http is not None:
            http.clear()
