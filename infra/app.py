"""`make synth`: the CDK app, synthesized offline into infra/cdk.out/.

    python -m infra.app [--stage dev]    (or: cdk synth -c stage=dev, with cdk.json)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import aws_cdk as cdk

from infra.stack import UploadBrokerStack
from infra.stages import STAGES

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ROOT / "build"


def build(stage_name: str, outdir: Path = ROOT / "infra" / "cdk.out") -> cdk.App:
    app = cdk.App(outdir=str(outdir))
    stage = STAGES[app.node.try_get_context("stage") or stage_name]
    stack = UploadBrokerStack(app, stage, PACKAGES)
    for key, value in stage.tags.items():
        cdk.Tags.of(stack).add(key, value)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Synthesize the upload broker's stack.")
    parser.add_argument("--stage", default="dev", choices=sorted(STAGES))
    args = parser.parse_args()
    assembly = build(args.stage).synth()
    print(f"synthesized {', '.join(s.stack_name for s in assembly.stacks)} into "
          f"{assembly.directory}")


if __name__ == "__main__":
    main()
