"""template.yaml in plain CloudFormation, as the SAM transform would make it.

The construct includes the *translated* template rather than the SAM one so
that everything deployed is an ordinary L1 resource (AWS::Lambda::Function,
its Url, Permission and EventSourceMappings) that cdk-nag's rules can judge;
left as AWS::Serverless::Function, CloudFormation would expand the functions
after any check had run. The translator is AWS's own (aws-sam-translator,
the library CloudFormation's transform runs), so nothing is re-implemented.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path

from samtranslator.public.translator import ManagedPolicyLoader
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

# The translator wants CodeUri as an S3 URI; the construct replaces every
# function's Code with its asset right after including the result.
CODE_PLACEHOLDER = "s3://steward-code/placeholder"


class _NoManagedPolicies(ManagedPolicyLoader):
    """template.yaml names no managed policy by name (every function has an
    explicit Role), so the translator never needs IAM's list of them."""

    def __init__(self) -> None:  # no IAM client: never called
        pass

    def load(self) -> dict[str, str]:
        return {}


def load(template_path: Path) -> dict:
    """template.yaml as data, CloudFormation's short tags (!Ref, !Sub…) read."""
    return yaml_parse(Path(template_path).read_text())


def function_binaries(source: dict) -> dict[str, str]:
    """Each function's logical id and the cargo binary SAM builds for it
    (`Metadata.BuildProperties.Binary`)."""
    out = {}
    for logical_id, resource in source.get("Resources", {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        binary = (resource.get("Metadata") or {}).get("BuildProperties", {}).get("Binary")
        if not binary:
            raise ValueError(f"{logical_id}: no Metadata.BuildProperties.Binary to build its code from")
        out[logical_id] = binary
    return out


def translate(source: dict) -> dict:
    """The SAM template `source` as plain CloudFormation. Parameters stay
    parameters: none is given a value here."""
    template = copy.deepcopy(source)
    template.setdefault("Globals", {}).setdefault("Function", {})["CodeUri"] = CODE_PLACEHOLDER
    # The translator asks boto3 for a region (only to pick the partition,
    # which it writes as ${AWS::Partition}); any commercial region will do.
    saved = os.environ.get("AWS_DEFAULT_REGION")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        return transform(template, {}, _NoManagedPolicies())
    finally:
        if saved is None:
            os.environ.pop("AWS_DEFAULT_REGION", None)
