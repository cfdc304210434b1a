"""The Steward construct: template.yaml, deployed from a CDK app.

template.yaml stays the one list of resources: the construct translates it
(translate.py) and includes the result with CfnInclude, then points each
function's Code at its cargo-lambda build as a CDK asset. That is all the
construct adds: cdk-nag's suppressions are in template.yaml too, in each
resource's Metadata, beside what they accept.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from aws_cdk import aws_lambda, aws_s3_assets
from aws_cdk import cloudformation_include as cfn_inc
from constructs import Construct

from . import translate

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = REPO / "template.yaml"
# Where `cargo lambda build --release --arm64` (what SAM's rust-cargolambda
# build method runs) leaves each binary: target/lambda/<binary>/bootstrap.
LAMBDA_BUILD = REPO / "target" / "lambda"


def snake(name: str) -> str:
    """ConnectionLostSeconds -> connection_lost_seconds; ApiUrl -> api_url."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# The construct's props: template.yaml's parameters, in snake case
# (`connection_lost_seconds=` sets ConnectionLostSeconds). Read from the
# template, so a parameter added there is a prop here at once.
PARAMETERS: dict[str, str] = {snake(name): name for name in translate.load(TEMPLATE).get("Parameters", {})}


class Steward(Construct):
    """Steward's whole control plane (template.yaml) in a CDK stack.

    Props are template.yaml's parameters in snake case; one left out stays a
    CloudFormation parameter of the stack, with the template's default, to
    be given at deploy time. Every output of template.yaml is an attribute in
    snake case (`api_url`, `automation_start_queue_url`, …) and stays an
    output of the stack.

    lambda_build: the folder `cargo lambda build --release --arm64` wrote
    (target/lambda), with <binary>/bootstrap for each function.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        template_path: Path = TEMPLATE,
        lambda_build: Path = LAMBDA_BUILD,
        **parameters: Any,
    ) -> None:
        super().__init__(scope, construct_id)
        source = translate.load(Path(template_path))
        names = {snake(name): name for name in source.get("Parameters", {})}
        unknown = sorted(set(parameters) - set(names))
        if unknown:
            raise TypeError(
                f"Steward got unknown props {unknown}; its props are template.yaml's parameters: {sorted(names)}"
            )
        binaries = translate.function_binaries(source)
        missing = [b for b in binaries.values() if not (Path(lambda_build) / b / "bootstrap").is_file()]
        if missing:
            raise FileNotFoundError(
                f"no Lambda build for {', '.join(missing)} under {lambda_build}: "
                "run `cargo lambda build --release --arm64` at the repository's root first"
            )

        # CfnInclude reads a file; the translation lives only as long as that.
        with tempfile.TemporaryDirectory() as scratch:
            translated = Path(scratch) / "template.json"
            translated.write_text(json.dumps(translate.translate(source)))
            self.template = cfn_inc.CfnInclude(
                self,
                "Template",
                template_file=str(translated),
                parameters={names[k]: v for k, v in parameters.items() if v is not None},
            )

        for logical_id, binary in binaries.items():
            asset = aws_s3_assets.Asset(self, f"{logical_id}Code", path=str(Path(lambda_build) / binary))
            function = self.template.get_resource(logical_id)
            if not isinstance(function, aws_lambda.CfnFunction):
                raise TypeError(f"{logical_id} did not translate to an AWS::Lambda::Function")
            function.code = aws_lambda.CfnFunction.CodeProperty(
                s3_bucket=asset.s3_bucket_name, s3_key=asset.s3_object_key
            )

        self.outputs: dict[str, str] = {}
        for name in source.get("Outputs", {}):
            value = self.template.get_output(name).value
            self.outputs[name] = value
            setattr(self, snake(name), value)

