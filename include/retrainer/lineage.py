"""Training-data lineage with DVC: version the exact bytes a model was trained on.

Every training set is stored in a DVC remote on the S3 endpoint with DVC's own content
addressing (DVC 3: ``<remote>/files/md5/<first 2 hex>/<remaining 30 hex>``), so the
plain ``dvc`` tooling can fetch it from the md5 alone, years after the run's own
artefacts (``train.parquet`` in the version's training folder) were deleted or expired.
The model version carries that md5 as a tag; ``scripts/reproduce_training_data.py``
turns the tag back into the byte-identical file.

Why a throw-away, no-SCM DVC repository per call: the orchestrator has no Git checkout
of its data and workers share nothing on local disk. A temporary repo gives us DVC's
hashing, cache layout and transfer code without keeping any state; the remote is the
only thing that persists. Credentials go into that repo's ``config.local`` (inside a
0700 temporary directory, deleted on return) and are never logged.

Pure Python; ``dvc`` is imported inside the functions only (DAG parsing must not pay
for it).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from include.retrainer.errors import PermanentError

log = logging.getLogger(__name__)

#: The one default DVC remote base, used only when nothing configures one (see
#: :func:`dvc_remote_for`); the local stack, compose file and tests create this bucket.
DEFAULT_DVC_BUCKET = "dvc-store"
#: Environment variable naming the DVC remote base for every model of a deployment.
DVC_REMOTE_ENV = "RETRAIN_DVC_REMOTE"
#: Key in the artifacts connection's extra naming the DVC remote base.
DVC_REMOTE_EXTRA = "dvc_remote"

_REMOTE_NAME = "lineage"
_FETCH_FILE = "data"
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")


class LineageError(RuntimeError):
    """Training data could not be versioned or reproduced; the message names md5 and remote."""


class DvcRemoteConfigError(PermanentError, LineageError):
    """The configured DVC remote is not an S3 bucket or URL: fix the configuration (no retry helps)."""


@dataclass
class DvcRecord:
    """Where a training set lives in the DVC remote and how to recognise it.

    ``path`` is the file name DVC tracked (what ``dvc pull`` would recreate), ``md5``
    the DVC 3 content hash, which for a single file is the plain MD5 of its bytes.
    """

    md5: str
    size: int
    remote_url: str
    path: str

    @property
    def object_url(self) -> str:
        """URL of the object inside the remote (DVC 3 layout)."""
        return object_url(self.remote_url, self.md5)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "object_url": self.object_url}


def object_url(remote_url: str, md5: str) -> str:
    """``<remote>/files/md5/<2>/<30>``: where DVC 3 stores the content with hash ``md5``."""
    return f"{remote_url.rstrip('/')}/files/md5/{md5[:2]}/{md5[2:]}"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------
def _check_remote_url(remote_url: str) -> str:
    parsed = urlparse(remote_url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise LineageError(f"DVC remote must be an s3://bucket[/prefix] URL, got {remote_url!r}")
    return remote_url.rstrip("/")


def _check_md5(md5: str) -> str:
    value = (md5 or "").strip().lower()
    if not _MD5_RE.match(value):
        raise LineageError(f"not a DVC md5 (expected 32 hex characters): {md5!r}")
    return value


def _check_file_name(file_name: str) -> str:
    if (
        not file_name
        or "/" in file_name
        or "\\" in file_name
        or file_name.startswith(".")
        or file_name.endswith(".dvc")
    ):
        raise LineageError(
            f"file_name must be a plain file name (no directories, not hidden, not *.dvc), got {file_name!r}"
        )
    return file_name


def _remote_config(
    remote_url: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    session_token: str | None,
    region: str | None,
) -> dict[str, str]:
    """The ``remote "<name>"`` section; unset credentials leave boto's default chain in charge."""
    conf = {"url": remote_url}
    if endpoint_url:
        conf["endpointurl"] = endpoint_url
    if access_key_id and secret_access_key:
        conf["access_key_id"] = access_key_id
        conf["secret_access_key"] = secret_access_key
        if session_token:
            conf["session_token"] = session_token
    if region:
        conf["region"] = region
    return conf


@contextlib.contextmanager
def _dvc_environment(tmp: Path) -> Iterator[None]:
    """Isolate DVC from the host for the duration of one call, then restore everything.

    * No analytics; the site cache (DVC's per-repo state DB, by default under
      /var/tmp/dvc) and the global/system config live in the temporary directory unless
      the operator chose otherwise, so a result never depends on a worker's leftovers.
    * ``import dvc`` attaches console handlers bound to whatever ``sys.stdout`` /
      ``sys.stderr`` were at import time, and they *raise* when that stream has since
      been closed (pytest capture, a task runner's redirected streams). They are
      detached for the call, so DVC's records reach the host's logging (Airflow's task
      log) through propagation instead; INFO chatter is muted, warnings still show.

    Must be entered after ``dvc`` was imported (its import is what installs the handlers).
    """
    wanted = {
        "DVC_NO_ANALYTICS": "1",
        "DVC_SITE_CACHE_DIR": str(tmp / "site-cache"),
        "DVC_GLOBAL_CONFIG_DIR": str(tmp / "global-config"),
        "DVC_SYSTEM_CONFIG_DIR": str(tmp / "system-config"),
    }
    added = [k for k in wanted if k not in os.environ]
    for key in added:
        os.environ[key] = wanted[key]
    saved: list[tuple[logging.Logger, int, list[logging.Handler]]] = []
    for name in ("dvc", "dvc_objects", "dvc_data"):
        logger = logging.getLogger(name)
        own = [h for h in logger.handlers if type(h).__module__ == "dvc.logger"]
        saved.append((logger, logger.level, own))
        for handler in own:
            logger.removeHandler(handler)
        logger.setLevel(max(logger.level, logging.WARNING))
    try:
        yield
    finally:
        for logger, level, own in saved:
            logger.setLevel(level)
            for handler in own:
                logger.addHandler(handler)
        for key in added:
            os.environ.pop(key, None)


def _init_repo(root: Path, remote: dict[str, str]) -> None:
    """A fresh no-SCM DVC repo at ``root`` whose default remote is ``remote``."""
    from dvc.repo import Repo

    root.mkdir(parents=True)
    repo = Repo.init(str(root), no_scm=True)
    try:
        with repo.config.edit("local") as conf:
            conf["core"]["remote"] = _REMOTE_NAME
            conf["remote"][_REMOTE_NAME] = remote
    finally:
        repo.close()


# --------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------
def version_training_data(
    data: bytes,
    *,
    file_name: str,
    remote_url: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str = "us-east-1",
    session_token: str | None = None,
) -> DvcRecord:
    """Store ``data`` in the DVC remote (``dvc add`` + ``dvc push``) and return its record.

    Idempotent by construction: the object key is the content hash, and DVC skips
    objects the remote already has, so pushing the same bytes again transfers nothing
    and returns the same md5.
    """
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    remote_url = _check_remote_url(remote_url)
    file_name = _check_file_name(file_name)
    expected = hashlib.md5(data).hexdigest()
    remote = _remote_config(remote_url, endpoint_url, access_key_id, secret_access_key, session_token, region)
    with tempfile.TemporaryDirectory(prefix="retrain-dvc-") as tmp_dir:
        tmp = Path(tmp_dir)
        with _dvc_environment(tmp):
            root = tmp / "repo"
            try:
                _init_repo(root, remote)
                target = root / file_name
                target.write_bytes(data)
                with Repo(str(root)) as repo:
                    stages = repo.add(str(target))
                    transferred = repo.push()
            except (DvcException, OSError) as exc:  # s3fs raises PermissionError etc. unwrapped
                raise LineageError(
                    f"could not version {file_name} ({len(data)} bytes, md5 {expected}) "
                    f"in DVC remote {remote_url}: {exc} (check that the bucket exists and that "
                    f"the endpoint and credentials are right)"
                ) from exc
            dvc_file = root / f"{file_name}.dvc"
            if not dvc_file.is_file() or not stages:
                raise LineageError(f"dvc add produced no {dvc_file.name} for {file_name}")
            out = stages[0].outs[0]
            md5 = out.hash_info.value
            size = int(out.meta.size) if out.meta.size is not None else len(data)
    if out.hash_info.name != "md5" or md5 != expected:
        # DVC 3 hashes a single file as the plain MD5 of its bytes; anything else would
        # mean a legacy (DVC 2, text-normalised) hash that plain tooling cannot verify.
        raise LineageError(f"DVC hashed {file_name} as {out.hash_info.name}:{md5}, expected plain md5 {expected}")
    record = DvcRecord(md5=md5, size=size, remote_url=remote_url, path=file_name)
    log.info(
        "versioned %s (%d bytes) as DVC md5 %s in %s (%s)",
        file_name,
        size,
        md5,
        remote_url,
        "uploaded" if transferred else "already in the remote",
    )
    return record


def fetch_training_data(
    md5: str,
    *,
    remote_url: str,
    endpoint_url: str | None,
    access_key_id: str | None,
    secret_access_key: str | None,
    region: str = "us-east-1",
    session_token: str | None = None,
) -> bytes:
    """Return the bytes DVC stores under ``md5`` (``dvc pull`` of a .dvc file naming it).

    DVC does not re-hash what it downloads (remote ``verify`` defaults to false), so the
    MD5 of the result is checked here: a tampered or truncated object raises
    :class:`LineageError` instead of silently reproducing the wrong data.
    """
    from dvc.exceptions import CheckoutError, DvcException
    from dvc.repo import Repo
    from dvc.utils.serialize import dump_yaml

    md5 = _check_md5(md5)
    remote_url = _check_remote_url(remote_url)
    where = object_url(remote_url, md5)
    remote = _remote_config(remote_url, endpoint_url, access_key_id, secret_access_key, session_token, region)
    with tempfile.TemporaryDirectory(prefix="retrain-dvc-") as tmp_dir:
        tmp = Path(tmp_dir)
        with _dvc_environment(tmp):
            root = tmp / "repo"
            try:
                _init_repo(root, remote)
                dvc_file = root / f"{_FETCH_FILE}.dvc"
                # DVC's own YAML writer: it quotes an all-digit md5 that would otherwise load as a number.
                dump_yaml(str(dvc_file), {"outs": [{"md5": md5, "hash": "md5", "path": _FETCH_FILE}]})
                with Repo(str(root)) as repo:
                    repo.pull(targets=[str(dvc_file)])
            except CheckoutError as exc:
                # fetch only warns about objects the remote lacks; checkout is where it fails.
                raise LineageError(
                    f"md5 {md5} is not in DVC remote {remote_url}: no object {where} "
                    f"(never versioned there, deleted, or wrong remote/endpoint)"
                ) from exc
            except (DvcException, OSError) as exc:  # s3fs raises PermissionError etc. unwrapped
                raise LineageError(
                    f"DVC could not fetch md5 {md5} from remote {remote_url} (object {where}); "
                    f"check the endpoint, the bucket and the credentials: {exc}"
                ) from exc
            target = root / _FETCH_FILE
            if not target.is_file():
                raise LineageError(f"dvc pull of md5 {md5} from {remote_url} produced no file")
            data = target.read_bytes()
    actual = hashlib.md5(data).hexdigest()
    if actual != md5:
        raise LineageError(
            f"md5 mismatch for {where}: the remote returned {len(data)} bytes with md5 {actual}, "
            f"expected {md5}; the stored object is corrupt or was overwritten"
        )
    return data


_BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


def _remote_base(value: str, source: str) -> str:
    """``bucket`` or ``s3://bucket[/prefix]`` -> ``s3://bucket[/prefix]`` (no trailing slash)."""
    text = value.strip()
    url = text if "://" in text else f"s3://{text}"
    parsed = urlparse(url)
    prefix = parsed.path.strip("/")
    if (
        parsed.scheme != "s3"
        or not _BUCKET_RE.match(parsed.netloc or "")
        or ".." in prefix.split("/")
        or parsed.query
        or parsed.fragment
    ):
        raise DvcRemoteConfigError(
            f"DVC remote from {source} must be an S3 bucket name or s3://bucket[/prefix], got {value!r}"
        )
    return f"s3://{parsed.netloc}/{prefix}" if prefix else f"s3://{parsed.netloc}"


def dvc_remote_for(
    spec: Any,
    *,
    connection_remote: str | None = None,
    env: Mapping[str, str] | None = None,
) -> str:
    """The DVC remote URL that versions ``spec``'s training data. First match wins:

    1. the model YAML: ``lineage.dvc_remote`` (``spec.lineage.dvc_remote`` when the spec has
       that field): this model's own remote, used as given;
    2. ``connection_remote``: the artifacts connection's extra ``dvc_remote`` (the hook puts
       it on ``ObjectStore.dvc_remote``), a base shared by the deployment's models;
    3. the environment variable ``RETRAIN_DVC_REMOTE``, a base as well;
    4. :data:`DEFAULT_DVC_BUCKET`.

    A base (2-4) gets the model name appended, ``s3://<base>/<model>``, so models do not
    mix their data; values may be a bucket name or ``s3://bucket[/prefix]``. Raises
    :class:`DvcRemoteConfigError` (permanent) for anything else.
    """
    lineage_conf = getattr(spec, "lineage", None)
    own = getattr(lineage_conf, "dvc_remote", None) if lineage_conf is not None else None
    if own is None and isinstance(lineage_conf, Mapping):
        own = lineage_conf.get("dvc_remote")
    if own:
        return _remote_base(str(own), f"model {spec.name!r} (lineage.dvc_remote)")
    environ = os.environ if env is None else env
    for value, source in (
        (connection_remote, f"connection extra '{DVC_REMOTE_EXTRA}'"),
        (environ.get(DVC_REMOTE_ENV), f"environment variable {DVC_REMOTE_ENV}"),
    ):
        if value and str(value).strip():
            return f"{_remote_base(str(value), source)}/{spec.name}"
    return f"s3://{DEFAULT_DVC_BUCKET}/{spec.name}"


def s3_settings_from_client(client: Any, credentials: Any = None) -> dict[str, Any]:
    """Endpoint, region and credentials of a boto3 S3 client, as keyword arguments here.

    Lets a caller that already holds a configured client (``ObjectStore.client``, built
    from an Airflow connection) point DVC at the same endpoint with the same identity.
    AWS's own endpoint is left unset so DVC resolves the regional endpoint itself.
    ``credentials`` are the ones the client was built with (``ObjectStore.credentials``);
    None means boto3's default chain, resolved through its public Session API.
    """
    endpoint = client.meta.endpoint_url
    host = (urlparse(endpoint).hostname or "") if endpoint else ""
    if host.endswith(".amazonaws.com") or host == "amazonaws.com":
        endpoint = None
    key = secret = token = None
    if credentials is None:
        import boto3

        credentials = boto3.session.Session().get_credentials()
    if credentials is not None:
        frozen = credentials.get_frozen_credentials() if hasattr(credentials, "get_frozen_credentials") else credentials
        key, secret, token = frozen.access_key, frozen.secret_key, frozen.token
    return {
        "endpoint_url": endpoint,
        "access_key_id": key,
        "secret_access_key": secret,
        "session_token": token,
        "region": client.meta.region_name or "us-east-1",
    }
