"""Compliance end to end, on a real registered node: a custom compliance
type put, listed, summarized, updated in part and replaced, through boto3
and the real AWS CLI; refusals by SSM's codes and words that change nothing;
and the `Configuration Compliance State Change` event on the `steward` bus."""

import json
from datetime import datetime, timezone

import pytest

from fleet import aws, drain, event_queue, listed, online_fleet, refused, ssm_client

pytestmark = pytest.mark.usefixtures("stack")

RUN = datetime(2024, 1, 1, 10, 10, 10, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    with online_fleet(tmp_path_factory.mktemp("compliance"), compliance=["node"]) as f:
        yield f


@pytest.fixture(scope="module")
def node(fleet):
    return fleet.agents["node"].instance_id()


def item(item_id, severity, status, **details):
    return {"Id": item_id, "Title": f"{item_id} check", "Severity": severity, "Status": status,
            "Details": details or {"Source": "e2e"}}


def put(ssm, node, ctype, items, upload="COMPLETE", **extra):
    return ssm.put_compliance_items(
        ResourceId=node, ResourceType="ManagedInstance", ComplianceType=ctype,
        ExecutionSummary={"ExecutionTime": RUN, "ExecutionId": "e2e-run", "ExecutionType": "Command"},
        Items=items, UploadType=upload, **extra,
    )


def items_of(ssm, node, ctype):
    return listed(ssm, "list_compliance_items", "ComplianceItems",
                  ResourceIds=[node], ResourceTypes=["ManagedInstance"],
                  Filters=[{"Key": "ComplianceType", "Values": [ctype], "Type": "EQUAL"}])


def resource_summary(ssm, node, ctype):
    found = listed(ssm, "list_resource_compliance_summaries", "ResourceComplianceSummaryItems",
                   Filters=[{"Key": "ComplianceType", "Values": [ctype], "Type": "EQUAL"},
                            {"Key": "ResourceId", "Values": [node], "Type": "EQUAL"}])
    assert len(found) == 1, found
    return found[0]


def test_a_custom_type_round_trips(fleet, node):
    ssm = fleet.ssm
    ctype = f"Custom:E2e{fleet.suite}"
    put(ssm, node, ctype, [item("disk", "LOW", "COMPLIANT"), item("ports", "HIGH", "NON_COMPLIANT", Port="23")])

    kept = items_of(ssm, node, ctype)
    assert [i["Id"] for i in kept] == ["disk", "ports"]
    ports = kept[1]
    assert ports["ResourceId"] == node and ports["ResourceType"] == "ManagedInstance"
    assert ports["ComplianceType"] == ctype and ports["Title"] == "ports check"
    assert (ports["Status"], ports["Severity"], ports["Details"]) == ("NON_COMPLIANT", "HIGH", {"Port": "23"})
    assert ports["ExecutionSummary"]["ExecutionTime"] == RUN
    assert ports["ExecutionSummary"]["ExecutionId"] == "e2e-run"
    only_bad = listed(ssm, "list_compliance_items", "ComplianceItems", ResourceIds=[node],
                      Filters=[{"Key": "ComplianceType", "Values": [ctype]},
                               {"Key": "Status", "Values": ["NON_COMPLIANT"], "Type": "EQUAL"}])
    assert [i["Id"] for i in only_bad] == ["ports"]

    s = resource_summary(ssm, node, ctype)
    assert (s["Status"], s["OverallSeverity"]) == ("NON_COMPLIANT", "HIGH")
    assert s["CompliantSummary"]["CompliantCount"] == 1
    assert s["CompliantSummary"]["SeveritySummary"]["LowCount"] == 1
    assert s["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert s["NonCompliantSummary"]["SeveritySummary"]["HighCount"] == 1
    assert s["ExecutionSummary"]["ExecutionType"] == "Command"
    totals = listed(ssm, "list_compliance_summaries", "ComplianceSummaryItems",
                    Filters=[{"Key": "ComplianceType", "Values": [ctype], "Type": "EQUAL"}])
    assert len(totals) == 1 and totals[0]["ComplianceType"] == ctype
    assert totals[0]["NonCompliantSummary"]["NonCompliantCount"] == 1
    assert totals[0]["NonCompliantSummary"]["SeveritySummary"]["HighCount"] == 1
    assert totals[0]["CompliantSummary"]["CompliantCount"] == 0

    # PARTIAL: the port is closed, a new check added; disk is kept.
    put(ssm, node, ctype, [item("ports", "HIGH", "COMPLIANT"), item("users", "MEDIUM", "COMPLIANT")], "PARTIAL")
    assert [(i["Id"], i["Status"]) for i in items_of(ssm, node, ctype)] == [
        ("disk", "COMPLIANT"), ("ports", "COMPLIANT"), ("users", "COMPLIANT")]
    s = resource_summary(ssm, node, ctype)
    assert (s["Status"], s["OverallSeverity"]) == ("COMPLIANT", "HIGH")
    assert s["CompliantSummary"]["CompliantCount"] == 3
    # One a page, each once, in Id order.
    pages = list(ssm.get_paginator("list_compliance_items").paginate(
        ResourceIds=[node], Filters=[{"Key": "ComplianceType", "Values": [ctype]}],
        PaginationConfig={"PageSize": 1}))
    assert [[i["Id"] for i in p["ComplianceItems"]] for p in pages] == [["disk"], ["ports"], ["users"]]

    # COMPLETE replaces every item of the type.
    put(ssm, node, ctype, [item("kernel", "CRITICAL", "NON_COMPLIANT")])
    assert [i["Id"] for i in items_of(ssm, node, ctype)] == ["kernel"]
    assert resource_summary(ssm, node, ctype)["OverallSeverity"] == "CRITICAL"


def test_the_aws_cli_puts_and_lists(fleet, node):
    ctype = f"Custom:Cli{fleet.suite}"
    aws("ssm", "put-compliance-items", "--resource-id", node, "--resource-type", "ManagedInstance",
        "--compliance-type", ctype, "--execution-summary", "ExecutionTime=2024-01-01T10:10:10Z",
        "--items", "Id=sshd,Title=sshd config,Severity=MEDIUM,Status=NON_COMPLIANT,Details={PermitRootLogin=yes}")
    got = aws("ssm", "list-compliance-items", "--resource-ids", node, "--resource-types", "ManagedInstance",
              "--filters", f"Key=ComplianceType,Values={ctype},Type=EQUAL")["ComplianceItems"]
    assert [(i["Id"], i["Status"], i["Details"]) for i in got] == [("sshd", "NON_COMPLIANT", {"PermitRootLogin": "yes"})]
    summaries = aws("ssm", "list-resource-compliance-summaries", "--filters",
                    f"Key=ComplianceType,Values={ctype},Type=EQUAL")["ResourceComplianceSummaryItems"]
    assert [(s["ResourceId"], s["Status"], s["OverallSeverity"]) for s in summaries] == [
        (node, "NON_COMPLIANT", "MEDIUM")]
    totals = aws("ssm", "list-compliance-summaries", "--filters",
                 f"Key=ComplianceType,Values={ctype},Type=BEGIN_WITH")["ComplianceSummaryItems"]
    assert [(t["ComplianceType"], t["NonCompliantSummary"]["NonCompliantCount"]) for t in totals] == [(ctype, 1)]
    # A refusal is a non-zero exit naming SSM's error.
    bad = aws("ssm", "put-compliance-items", "--resource-id", node, "--resource-type", "Document",
              "--compliance-type", ctype, "--execution-summary", "ExecutionTime=2024-01-01T10:10:10Z",
              "--items", "Id=x,Severity=LOW,Status=COMPLIANT", check=False)
    assert bad.returncode != 0 and "InvalidResourceType" in bad.stderr


def test_refusals_name_ssms_error_and_change_nothing(fleet, node):
    ssm = ssm_client(validate=False)
    ctype = f"Custom:Refused{fleet.suite}"
    put(ssm, node, ctype, [item("keep", "LOW", "COMPLIANT")])
    before = items_of(ssm, node, ctype)

    def body(**change):
        b = {"ResourceId": node, "ResourceType": "ManagedInstance", "ComplianceType": ctype,
             "ExecutionSummary": {"ExecutionTime": RUN}, "Items": [item("new", "HIGH", "NON_COMPLIANT")]}
        b.update(change)
        return b

    assert refused(ssm.put_compliance_items, "InvalidResourceId", **body(ResourceId="mi-00000000000000000")) == (
        'The resource ID "mi-00000000000000000" is not valid. '
        "Verify the ID with describe-instance-information and try again.")
    assert "ManagedInstance" in refused(ssm.put_compliance_items, "InvalidResourceType", **body(ResourceType="Document"))
    assert refused(ssm.put_compliance_items, "ValidationException", **body(ComplianceType=f"{ctype}-x")) == (
        f"1 validation error detected: Value '{ctype}-x' at 'complianceType' failed to satisfy constraint: "
        r"Member must satisfy regular expression pattern: [A-Za-z0-9_\-]\w+|Custom:[a-zA-Z0-9_\-]\w+")
    assert "severity" in refused(ssm.put_compliance_items, "ValidationException",
                                 **body(Items=[item("new", "SEVERE", "COMPLIANT")]))
    refused(ssm.put_compliance_items, "ValidationException",
            **body(Items=[dict(item("new", "LOW", "COMPLIANT"), Title="t" * 501)]))
    refused(ssm.put_compliance_items, "InvalidItemContentException",
            **body(Items=[item("twice", "LOW", "COMPLIANT"), item("twice", "HIGH", "COMPLIANT")]))
    assert items_of(ssm, node, ctype) == before
    assert resource_summary(ssm, node, ctype)["Status"] == "COMPLIANT"

    refused(ssm.list_compliance_items, "InvalidFilter", ResourceIds=[node],
            Filters=[{"Key": "Colour", "Values": ["red"], "Type": "EQUAL"}])
    refused(ssm.list_compliance_items, "InvalidResourceType", ResourceIds=[node], ResourceTypes=["Document"])
    refused(ssm.list_compliance_summaries, "InvalidNextToken", NextToken="not-a-token")
    refused(ssm.list_resource_compliance_summaries, "ValidationException", MaxResults=51)


def test_status_changes_reach_the_bus(fleet, node):
    ssm = fleet.ssm
    ctype = f"Custom:Events{fleet.suite}"
    sqs, url = event_queue({
        "source": ["steward.ssm"],
        "detail-type": ["Configuration Compliance State Change"],
        "detail": {"resource-id": [node], "compliance-type": [ctype]},
    })
    put(ssm, node, ctype, [item("a", "HIGH", "NON_COMPLIANT")])
    # Still non-compliant: no event. Then compliant: one.
    put(ssm, node, ctype, [item("a", "CRITICAL", "NON_COMPLIANT")])
    put(ssm, node, ctype, [item("a", "HIGH", "COMPLIANT")])

    seen = drain(sqs, url, lambda s: len(s) >= 2 and s, timeout=60)
    # Published in order, but EventBridge does not promise to deliver in
    # order (both may go in one PutEvents, each entry delivered on its own).
    statuses = sorted(e["detail"]["compliance-status"] for e in seen)
    assert statuses == ["compliant", "non_compliant"], json.dumps(seen)
    [e] = [e for e in seen if e["detail"]["compliance-status"] == "non_compliant"]
    assert e["source"] == "steward.ssm"
    assert e["detail"] == {"last-runtime": "2024-01-01T10:10:10Z", "compliance-status": "non_compliant",
                           "resource-type": "managed-instance", "resource-id": node, "compliance-type": ctype}
    assert any(r.endswith(f"managed-instance/{node}") for r in e["resources"])
    # Nothing more came: the unchanged status published nothing.
    extra = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=2).get("Messages", [])
    assert extra == []
