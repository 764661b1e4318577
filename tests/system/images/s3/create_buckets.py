"""`minio-init` stand-in: create the stack's buckets on the S3 server (moto ignores access policies,
so the MinIO policy and limited key of infra/minio/init.sh have no counterpart here)."""

import os
import sys
import time

import boto3
import botocore.exceptions

BUCKETS = ("mlflow", "dvc")

client = boto3.client(
    "s3",
    endpoint_url=os.environ.get("S3_INTERNAL_URL", "http://minio:9000"),
    aws_access_key_id=os.environ["S3_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["S3_SECRET_ACCESS_KEY"],
    region_name="us-east-1",
)
for _attempt in range(30):
    try:
        existing = {bucket["Name"] for bucket in client.list_buckets()["Buckets"]}
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(1)
else:
    sys.exit("S3 stand-in did not answer")
for bucket in BUCKETS:
    if bucket not in existing:
        client.create_bucket(Bucket=bucket)
print(f"create-buckets: {', '.join(BUCKETS)}")
