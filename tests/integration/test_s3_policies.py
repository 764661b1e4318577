"""The stack's S3 policies (infra/minio/policies), against a server that enforces them.

moto authorizes requests against IAM policies once ``INITIAL_NO_AUTH_ACTION_COUNT`` requests have
been served unauthenticated (moto's docs/docs/iam.rst). The fixture starts ``moto_server`` in its
own process with that count set to 3 (the in-process moto of ``s3_endpoint`` must stay open for the
other tests): three requests bootstrap an admin user, everything else is authenticated. Then, from
the policy FILES, one IAM user per role with its access key, as ``minio-init`` does on MinIO.

Each key must work inside its bucket and be refused (AccessDenied) outside it; the serving key may
only read; the ops key (code server and runs: landing, plots, Dagster IO) never reaches `mlflow`. So that these tests can fail, the first one shows that enforcement is on: a deliberately
over-broad policy is allowed exactly where the real ones are refused, and an unknown key is refused.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import boto3
import botocore.exceptions
import pytest
import requests

from tests.conftest import PROJECT_DIR
from tests.integration.conftest import free_port

pytestmark = pytest.mark.integration

POLICIES = PROJECT_DIR / "infra" / "minio" / "policies"
ROLES = ("mlflow", "dvc", "serving", "ops")
BUCKETS = ("mlflow", "dvc", "ops")
OTHER_BUCKETS = ("models",)
"""A bucket no role names (Chronos weights might live there): refused to every role."""
BOOTSTRAP_REQUESTS = 3
EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
OVER_BROAD = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}


@dataclass(frozen=True)
class Key:
    id: str
    secret: str


@dataclass
class EnforcingS3:
    endpoint: str
    keys: dict[str, Key]

    def s3(self, role: str):
        key = self.keys[role]
        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=key.id, aws_secret_access_key=key.secret)


def client(service: str, endpoint: str, key: Key):
    return boto3.client(service, endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=key.id, aws_secret_access_key=key.secret)


def make_user(iam, name: str, document: str) -> Key:
    arn = iam.create_policy(PolicyName=f"energy-forecast-{name}", PolicyDocument=document)["Policy"]["Arn"]
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    made = iam.create_access_key(UserName=name)["AccessKey"]
    return Key(made["AccessKeyId"], made["SecretAccessKey"])


@pytest.fixture(scope="module")
def enforcing_s3(tmp_path_factory) -> Iterator[EnforcingS3]:
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("moto") / "server.log"
    environment = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": str(BOOTSTRAP_REQUESTS)}
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                  stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 60
        while True:  # /moto-api/ is not an AWS action: it spends none of the unauthenticated requests
            if server.poll() is not None:
                pytest.fail(f"moto_server exited with {server.returncode}:\n{log_path.read_text()[-2000:]}")
            try:
                requests.get(f"{endpoint}/moto-api/", timeout=2)
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline:
                    pytest.fail(f"moto_server did not answer within 60 s:\n{log_path.read_text()[-2000:]}")
                time.sleep(0.2)

        # the unauthenticated requests: an admin and its key
        iam = client("iam", endpoint, Key("bootstrap", "bootstrap"))
        iam.create_user(UserName="admin")
        iam.put_user_policy(UserName="admin", PolicyName="everything", PolicyDocument=json.dumps(EVERYTHING))
        made = iam.create_access_key(UserName="admin")["AccessKey"]
        admin = Key(made["AccessKeyId"], made["SecretAccessKey"])

        # as the admin: buckets, and one user per role from the stack's policy files
        iam, s3 = client("iam", endpoint, admin), client("s3", endpoint, admin)
        for bucket in (*BUCKETS, *OTHER_BUCKETS):
            s3.create_bucket(Bucket=bucket)
            s3.put_object(Bucket=bucket, Key="existing.txt", Body=b"kept")
        keys = {role: make_user(iam, role, (POLICIES / f"{role}.json").read_text()) for role in ROLES}
        keys["over-broad"] = make_user(iam, "over-broad", json.dumps(OVER_BROAD))
        keys["unknown"] = Key("AKIAUNKNOWNKEY000000", "not-a-secret")
        yield EnforcingS3(endpoint, keys)
    finally:
        server.terminate()
        server.wait(timeout=30)


def refused(call, *args, **kwargs) -> str:
    """The error code of a call that must fail; the test fails if it succeeds."""
    try:
        call(*args, **kwargs)
    except botocore.exceptions.ClientError as error:
        return error.response["Error"]["Code"]
    pytest.fail(f"{call.__name__}{args or ''}{kwargs or ''} was allowed")


ACCESS_DENIED = {"AccessDenied", "403"}  # HEAD answers carry no body: the code is the status


def test_the_policy_files_are_the_roles_minio_init_grants():
    assert sorted(path.stem for path in POLICIES.glob("*.json")) == sorted(ROLES)
    init = (PROJECT_DIR / "infra" / "minio" / "init.sh").read_text()
    for role in ROLES:
        assert f"grant {role} " in init, f"infra/minio/init.sh does not grant {role}"


def test_enforcement_is_on_an_over_broad_policy_is_allowed_where_the_real_ones_are_refused(enforcing_s3):
    broad, mlflow = enforcing_s3.s3("over-broad"), enforcing_s3.s3("mlflow")
    assert broad.get_object(Bucket="dvc", Key="existing.txt")["Body"].read() == b"kept"
    broad.put_object(Bucket="dvc", Key="from-broad.txt", Body=b"x")
    assert refused(mlflow.get_object, Bucket="dvc", Key="existing.txt") in ACCESS_DENIED
    assert refused(mlflow.put_object, Bucket="dvc", Key="from-mlflow.txt", Body=b"x") in ACCESS_DENIED
    assert refused(enforcing_s3.s3("unknown").list_objects_v2, Bucket="mlflow") == "InvalidAccessKeyId"


@pytest.mark.parametrize("role", ["mlflow", "dvc", "ops"])
def test_a_read_write_key_reads_writes_lists_and_deletes_in_its_own_bucket(enforcing_s3, role):
    s3, bucket = enforcing_s3.s3(role), role
    s3.head_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key=f"{role}/object.bin", Body=b"payload")
    assert s3.get_object(Bucket=bucket, Key=f"{role}/object.bin")["Body"].read() == b"payload"
    s3.head_object(Bucket=bucket, Key=f"{role}/object.bin")
    listed = [item["Key"] for item in s3.list_objects_v2(Bucket=bucket, Prefix=f"{role}/")["Contents"]]
    assert listed == [f"{role}/object.bin"]
    upload = s3.create_multipart_upload(Bucket=bucket, Key=f"{role}/multipart.bin")["UploadId"]
    part = s3.upload_part(Bucket=bucket, Key=f"{role}/multipart.bin", UploadId=upload, PartNumber=1, Body=b"p" * 1024)
    s3.complete_multipart_upload(Bucket=bucket, Key=f"{role}/multipart.bin", UploadId=upload,
                                 MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]})
    s3.delete_object(Bucket=bucket, Key=f"{role}/object.bin")
    s3.delete_object(Bucket=bucket, Key=f"{role}/multipart.bin")


@pytest.mark.parametrize(("role", "bucket"), [
    ("mlflow", "dvc"), ("mlflow", "models"), ("mlflow", "ops"), ("dvc", "mlflow"), ("dvc", "models"), ("dvc", "ops"),
    ("serving", "dvc"), ("serving", "models"), ("serving", "ops"),
    ("ops", "mlflow"), ("ops", "dvc"), ("ops", "models"),  # the code server's and runs' key: no model files, no DVC data
])
def test_every_key_is_refused_outside_its_bucket(enforcing_s3, role, bucket):
    s3 = enforcing_s3.s3(role)
    assert refused(s3.list_objects_v2, Bucket=bucket) in ACCESS_DENIED
    assert refused(s3.head_bucket, Bucket=bucket) in ACCESS_DENIED
    assert refused(s3.get_object, Bucket=bucket, Key="existing.txt") in ACCESS_DENIED
    assert refused(s3.put_object, Bucket=bucket, Key=f"from-{role}.txt", Body=b"x") in ACCESS_DENIED
    assert refused(s3.delete_object, Bucket=bucket, Key="existing.txt") in ACCESS_DENIED
    assert refused(s3.create_bucket, Bucket=f"{role}-new-bucket") in ACCESS_DENIED
    assert refused(s3.list_buckets) in ACCESS_DENIED


def test_the_serving_key_reads_the_mlflow_bucket_and_cannot_change_it(enforcing_s3):
    enforcing_s3.s3("mlflow").put_object(Bucket="mlflow", Key="models/m-1/MLmodel", Body=b"flavors: {}")
    serving = enforcing_s3.s3("serving")
    assert serving.get_object(Bucket="mlflow", Key="models/m-1/MLmodel")["Body"].read() == b"flavors: {}"
    assert [item["Key"] for item in serving.list_objects_v2(Bucket="mlflow", Prefix="models/")["Contents"]] == ["models/m-1/MLmodel"]
    assert refused(serving.put_object, Bucket="mlflow", Key="models/m-1/MLmodel", Body=b"tampered") in ACCESS_DENIED
    assert refused(serving.delete_object, Bucket="mlflow", Key="models/m-1/MLmodel") in ACCESS_DENIED
    assert refused(serving.create_multipart_upload, Bucket="mlflow", Key="models/m-2/big.bin") in ACCESS_DENIED
    assert enforcing_s3.s3("mlflow").get_object(Bucket="mlflow", Key="models/m-1/MLmodel")["Body"].read() == b"flavors: {}"
