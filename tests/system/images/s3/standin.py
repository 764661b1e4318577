"""MinIO stand-in for the system test: moto's S3 server, enforcing the stack's IAM policies.

    s3-standin serve     # the `minio` service: S3 API on :9000
    s3-standin check     # the `minio-init` service: wait until the setup is done, then prove it

``serve`` starts moto's server with ``INITIAL_NO_AUTH_ACTION_COUNT=3`` (set in the Dockerfile):
moto answers the first three requests unauthenticated and authorizes every later one against the
policies of IAM users. Those three requests bootstrap a ``root`` user with full rights, the stand-in
for MinIO's root credentials. Then, as that user and through moto's IAM API, the same setup as
``infra/minio/init.sh``: the buckets, and for each role a user with the policy from the SAME file
(``/init/policies/<role>.json``, mounted from infra/minio) and an access key.

MinIO takes the access key and secret as given (``mc admin user add KEY SECRET``); moto's IAM API
only makes random ones. So the one step outside the API: the keys moto made are given the values
from .env (``MINIO_ROOT_USER``, ``<ROLE>_S3_ACCESS_KEY_ID``, ...), in this process, before any
client connects. Healthy (``/tmp/s3-standin.ready``) only after all of it.

``check`` exits 0 once the MLflow key lists its bucket and is refused on ``dvc``: the users exist
and the policies are enforced. State is in memory, as moto's always is: a restart starts empty.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import boto3
import botocore.exceptions

ROLES = ("mlflow", "dvc", "serving", "ops")
BUCKETS = ("mlflow", "dvc", "ops")
ROOT_USER = "root"
ROOT_POLICY = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
BOOTSTRAP_REQUESTS = 3
"""CreateUser, PutUserPolicy and CreateAccessKey for ``root``: the unauthenticated requests moto allows."""
POLICIES = Path(os.environ.get("S3_STANDIN_POLICIES", "/init/policies"))
READY = Path("/tmp/s3-standin.ready")
PORT = int(os.environ.get("S3_STANDIN_PORT", "9000"))
REGION = "us-east-1"


def env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        sys.exit(f"s3-standin: {name} is not set (see .env.example)")
    return value


def client(service: str, endpoint: str, key: str, secret: str):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=key, aws_secret_access_key=secret)


def import_key(user: str, generated: dict, key: str, secret: str) -> None:
    """Give the key moto generated for ``user`` the id and secret from .env (MinIO's way)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.iam.models import iam_backends

    backend = iam_backends[DEFAULT_ACCOUNT_ID]["aws"]
    access_key = backend.access_keys.pop(generated["AccessKeyId"])
    access_key.access_key_id, access_key.secret_access_key = key, secret
    backend.access_keys[key] = access_key
    if access_key not in backend.get_user(user).access_keys:
        sys.exit(f"s3-standin: the key moto made is not {user}'s")


def setup(endpoint: str) -> None:
    from moto import settings

    if settings.INITIAL_NO_AUTH_ACTION_COUNT != BOOTSTRAP_REQUESTS:
        sys.exit(f"s3-standin: INITIAL_NO_AUTH_ACTION_COUNT must be {BOOTSTRAP_REQUESTS}, not {settings.INITIAL_NO_AUTH_ACTION_COUNT}")
    root_key, root_secret = env("MINIO_ROOT_USER"), env("MINIO_ROOT_PASSWORD")
    # the three unauthenticated requests (any key signs them)
    iam = client("iam", endpoint, "bootstrap", "bootstrap")
    iam.create_user(UserName=ROOT_USER)
    iam.put_user_policy(UserName=ROOT_USER, PolicyName="everything", PolicyDocument=json.dumps(ROOT_POLICY))
    import_key(ROOT_USER, iam.create_access_key(UserName=ROOT_USER)["AccessKey"], root_key, root_secret)

    # everything else as root, authenticated, as infra/minio/init.sh does it with mc
    iam, s3 = client("iam", endpoint, root_key, root_secret), client("s3", endpoint, root_key, root_secret)
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    keys = {role: (env(f"{role.upper()}_S3_ACCESS_KEY_ID"), env(f"{role.upper()}_S3_SECRET_ACCESS_KEY")) for role in ROLES}
    if len({key for key, _ in keys.values()}) != len(ROLES):
        sys.exit("s3-standin: the roles' access keys in .env must differ")
    for role, (key, secret) in keys.items():
        document = (POLICIES / f"{role}.json").read_text()
        arn = iam.create_policy(PolicyName=f"energy-forecast-{role}", PolicyDocument=document)["Policy"]["Arn"]
        iam.create_user(UserName=role)
        iam.attach_user_policy(UserName=role, PolicyArn=arn)
        import_key(role, iam.create_access_key(UserName=role)["AccessKey"], key, secret)
        print(f"s3-standin: key {key} -> policy energy-forecast-{role} ({POLICIES / f'{role}.json'})", flush=True)


def serve() -> None:
    from moto.server import ThreadedMotoServer

    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})  # for sigwait; the server thread inherits it
    READY.unlink(missing_ok=True)
    server = ThreadedMotoServer(ip_address="0.0.0.0", port=PORT, verbose=False)
    server.start()
    setup(f"http://127.0.0.1:{PORT}")
    READY.touch()
    print(f"s3-standin: serving on :{PORT}, IAM policies enforced", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    server.stop()


def check(endpoint: str, timeout: float = 60) -> None:
    s3 = client("s3", endpoint, env("MLFLOW_S3_ACCESS_KEY_ID"), env("MLFLOW_S3_SECRET_ACCESS_KEY"))
    deadline = time.monotonic() + timeout
    while True:
        try:
            s3.list_objects_v2(Bucket="mlflow", MaxKeys=1)
            break
        except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ClientError) as error:
            if time.monotonic() > deadline:
                sys.exit(f"s3-standin check: the MLflow key cannot list s3://mlflow at {endpoint}: {error}")
            time.sleep(1)
    try:
        s3.list_objects_v2(Bucket="dvc", MaxKeys=1)
    except botocore.exceptions.ClientError as error:
        if error.response["Error"]["Code"] != "AccessDenied":
            raise
    else:
        sys.exit("s3-standin check: the MLflow key may list s3://dvc: IAM policies are not enforced")
    print(f"s3-standin check: buckets {', '.join(BUCKETS)}; keys for {', '.join(ROLES)}; policies enforced")


def main(argv: list[str]) -> None:
    if argv == ["serve"]:
        serve()
    elif argv == ["check"]:
        check(os.environ.get("S3_INTERNAL_URL", "http://minio:9000"))
    else:
        sys.exit("usage: s3-standin serve | check")


if __name__ == "__main__":
    main(sys.argv[1:])
