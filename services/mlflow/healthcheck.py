"""Healthy only when the tracking API answers: /health is exempt from the host check and answers
before the backend store works, so ask the API itself (an experiment search) and expect JSON."""

import json
import os
import sys
import urllib.error
import urllib.request

url = os.environ.get("MLFLOW_HEALTHCHECK_URL", "http://127.0.0.1:5000") + "/api/2.0/mlflow/experiments/search"
request = urllib.request.Request(
    url, data=json.dumps({"max_results": 1}).encode(), headers={"Content-Type": "application/json"}, method="POST"
)
try:
    with urllib.request.urlopen(request, timeout=8) as answer:
        body = json.loads(answer.read())
except (urllib.error.URLError, TimeoutError, ValueError) as error:
    sys.exit(f"MLflow API not ready: {error}")
if not isinstance(body, dict):  # protobuf JSON: an object, possibly empty
    sys.exit(f"MLflow API answered something else: {body!r}")
