#!/bin/sh
# Provision the stage once LocalStack is ready, with the product's own code
# (mounted at /opt/upload-broker) and LocalStack's own Python.
set -e
python3 /opt/upload-broker/localstack/provision_hook.py > /tmp/upload-broker.env
echo "upload broker provisioned; settings in /tmp/upload-broker.env"
