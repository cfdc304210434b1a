#!/usr/bin/env python3
"""Example CDK app: one Steward stack, judged by cdk-nag's AwsSolutions pack.

    cdk synth                       # the CloudFormation template, into cdk.out
    cdk deploy                      # into the account and region of your credentials
    cdk deploy -c steward:param:OutputRetentionDays=90

See infra/cdk/README.md.
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import App, Aspects, Stack
from cdk_nag import AwsSolutionsChecks

from steward_cdk import PARAMETERS, Steward

app = App()
stack = Stack(app, app.node.try_get_context("steward:stack-name") or "Steward")

# `-c steward:param:<TemplateParameter>=<value>` sets a template parameter at
# synth time; the rest stay stack parameters with their defaults.
props = {}
for prop, name in PARAMETERS.items():
    value = app.node.try_get_context(f"steward:param:{name}")
    if value is not None:
        props[prop] = str(value)

# `-c steward:lambda-build=<folder>`: where `cargo lambda build` put the
# binaries (default: target/lambda); `-c steward:template=<file>`: another
# copy of template.yaml (the tests give one with a suppression taken out).
paths = {
    key: Path(value)
    for key, value in (
        ("lambda_build", app.node.try_get_context("steward:lambda-build")),
        ("template_path", app.node.try_get_context("steward:template")),
    )
    if value
}
Steward(stack, "Steward", **paths, **props)

Aspects.of(app).add(AwsSolutionsChecks(reports=True, verbose=True))
app.synth()
