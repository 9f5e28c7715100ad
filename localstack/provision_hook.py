"""LocalStack init hook: provision a stage with the product's own code and names.

Runs on LocalStack's own Python (it carries boto3, pydantic and pydantic-settings),
with the repository mounted: the names come from infra/stages.py, the same ones
the AWS deployment uses, and the provisioning from broker/provision.py.

    UPLOAD_BROKER_STAGE=dev LOCALSTACK_ENDPOINT=http://localhost:4566 python provision_hook.py
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from broker.aws.clients import make_clients
from broker.provision import ensure_table, provision_queue, provision_storage
from broker.settings import load_settings
from infra.stages import LOCALSTACK_ACCOUNT, STAGES


def main() -> None:
    stage = STAGES[os.environ.get("UPLOAD_BROKER_STAGE", "dev")]
    os.environ.update(stage.local_settings())
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    endpoint = os.environ.get("LOCALSTACK_ENDPOINT", "http://localhost:4566")
    settings = load_settings(endpoint_url=endpoint)
    clients = make_clients(settings)
    provision_storage(clients, settings, [*stage.origins, "http://127.0.0.1:8000"])
    queue_url = provision_queue(clients, settings, stage.names(LOCALSTACK_ACCOUNT).queue)
    ensure_table(clients, settings.table)
    for name, value in stage.local_settings().items():
        print(f"export {name}='{value}'")
    print(f"export BROKER_QUEUE_URL={queue_url}")


if __name__ == "__main__":
    main()
