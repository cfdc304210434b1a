"""Inventory on a real Debian root (tests/debian_node.py), through boto3 and
the AWS CLI: AWS-GatherSoftwareInventory sent to the node, whose agent reads
its dpkg database, interfaces, unit files and custom inventory folder and
reports what changed; ListInventoryEntries then lists exactly the packages
dpkg has in the node; a second gather with nothing changed sends nothing
(the content hash skips every type, so the stored CaptureTime stays); a
custom file in the node's folder round-trips; GetInventory's aggregator
counts the node's applications by name and version; DeleteInventory removes
a custom type. The size of what each gather sent is printed, for the
figures (PutInventory's equivalent per run).
"""

import json
import re

from debian_node import started_node
from fleet import aws, invocations, ssm_client, wait_command_final, wait_for

RACK = {"SchemaVersion": "1.0", "TypeName": "Custom:RackInfo",
        "Content": {"Location": "US-EAST-02.CMH.RACK1", "InstalledTime": "2026-11-01T10:01:00Z"}}


def gather(node, **params):
    ssm = ssm_client()
    cmd = ssm.send_command(DocumentName="AWS-GatherSoftwareInventory", InstanceIds=[node.instance_id()],
                           Parameters={k: [v] for k, v in params.items()})["Command"]
    wait_command_final(ssm, cmd["CommandId"], timeout=120)
    [inv] = invocations(ssm, cmd["CommandId"])
    assert inv["Status"] == "Success", inv
    out = inv["CommandPlugins"][0]["Output"]
    sent = re.search(r"Sent (\d+) changed type\(s\) in (\d+) report\(s\), (\d+) bytes", out)
    assert sent, out
    types, reports, size = (int(x) for x in sent.groups())
    return out, types, reports, size


def entries(node, type_name, **kwargs):
    """Every entry of the type, all pages (at most 50 each), and the last page."""
    ssm = ssm_client()
    out, token, page = [], None, None
    while True:
        args = dict(InstanceId=node.instance_id(), TypeName=type_name, MaxResults=50, **kwargs)
        if token:
            args["NextToken"] = token
        page = ssm.list_inventory_entries(**args)
        assert len(page["Entries"]) <= 50
        out.extend(page["Entries"])
        token = page.get("NextToken")
        if not token:
            return out, page


def dpkg_packages(node):
    """(name, version, architecture) of every package dpkg has installed."""
    p = node.run("dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Package}\t${Version}\t${Architecture}\n")
    rows = [line.split("\t") for line in p.stdout.splitlines() if line]
    return {(n, v, a) for status, n, v, a in rows if status.startswith("ii")}


def test_a_debian_node_reports_its_real_packages_and_only_what_changed(tmp_path):
    node = started_node(tmp_path, "inventory")
    ssm = ssm_client()
    iid = node.instance_id()
    folder = f"/var/lib/amazon/ssm/{iid}/inventory/custom"
    node.run("mkdir", "-p", folder)
    node.run("sh", "-c", f"cat > {folder}/rack.json", input=json.dumps(RACK))

    out, types, reports, size = gather(node)
    print(f"\nfirst gather: {types} types in {reports} uplink report(s), {size} bytes\n{out}")
    assert types >= 4 and reports >= 1

    def applications():
        got, page = entries(node, "AWS:Application")
        return (got, page) if got else None

    apps, page = wait_for("the node's applications", applications, timeout=60)
    want = dpkg_packages(node)
    assert len(want) > 50, "a real root has more than one page of packages"
    assert {(e["Name"], e["Version"], e["Architecture"]) for e in apps} == want
    assert len(apps) == len(want)
    bash = next(e for e in apps if e["Name"] == "bash")
    assert bash["PackageId"] == f"bash_{bash['Version']}_{bash['Architecture']}.deb"
    assert bash["Publisher"] and bash["Summary"]
    first_capture = page["CaptureTime"]
    assert page["SchemaVersion"] == "1.1"

    info, _ = entries(node, "AWS:InstanceInformation")
    assert info[0]["InstanceId"] == iid and info[0]["PlatformType"] == "Linux"
    assert info[0]["ComputerName"] == node.info["ComputerName"]

    # The custom file round-trips, read with the real AWS CLI.
    cli = aws("ssm", "list-inventory-entries", "--instance-id", iid, "--type-name", "Custom:RackInfo")
    assert cli["Entries"] == [RACK["Content"]]
    schema = aws("ssm", "get-inventory-schema", "--type-name", "Custom:RackInfo")["Schemas"][0]
    assert {a["Name"] for a in schema["Attributes"]} == {"Location", "InstalledTime"}

    # Nothing changed: nothing is sent, and the stored capture stays.
    out, types, reports, size = gather(node)
    print(f"second gather (nothing changed): {types} types in {reports} report(s), {size} bytes")
    assert (types, reports, size) == (0, 0, 0), out
    assert "AWS:Application" in out and "unchanged, not sent" in out
    _, page = entries(node, "AWS:Application", Filters=[{"Key": "AWS:Application.Name", "Values": ["bash"], "Type": "Equal"}])
    assert page["CaptureTime"] == first_capture
    assert [e["Name"] for e in page["Entries"]] == ["bash"]

    # A changed custom file: that type alone goes.
    node.run("sh", "-c", f"cat > {folder}/rack.json",
             input=json.dumps({**RACK, "Content": {**RACK["Content"], "Location": "RACK2"}}))
    out, types, reports, size = gather(node)
    assert types == 1, out
    wait_for("the new rack", lambda: ssm.list_inventory_entries(
        InstanceId=iid, TypeName="Custom:RackInfo")["Entries"] == [{**RACK["Content"], "Location": "RACK2"}])

    # GetInventory: the node by an application filter, and its applications
    # counted by name and version (the filter keeps other nodes out).
    found = ssm.get_inventory(Filters=[{"Key": "AWS:Application.Name", "Values": ["bash"], "Type": "Equal"},
                                       {"Key": "AWS:InstanceInformation.InstanceId", "Values": [iid], "Type": "Equal"}])
    assert [e["Id"] for e in found["Entities"]] == [iid]
    counted = ssm.get_inventory(
        Filters=[{"Key": "AWS:InstanceInformation.InstanceId", "Values": [iid], "Type": "Equal"}],
        Aggregators=[{"Expression": "AWS:Application.Name",
                      "Aggregators": [{"Expression": "AWS:Application.Version"}]}],
    )["Entities"][0]["Data"]["AWS:Application"]["Content"]
    assert {(c["Name"], c["Version"]) for c in counted} == {(n, v) for n, v, _ in want}
    assert {c["Count"] for c in counted} == {"1"}
    cli = aws("ssm", "get-inventory", "--aggregators", "Expression=AWS:Application.Name",
              "--filters", f"Key=AWS:InstanceInformation.InstanceId,Values={iid},Type=Equal")
    names = {c["Name"] for c in cli["Entities"][0]["Data"]["AWS:Application"]["Content"]}
    assert names == {n for n, _, _ in want}

    # An operator's own custom type, then DeleteInventory of it.
    ssm.put_inventory(InstanceId=iid, Items=[{
        "TypeName": "Custom:Owner", "SchemaVersion": "1.0", "CaptureTime": "2026-12-01T10:00:00Z",
        "Content": [{"Team": "platform"}]}])
    assert ssm.list_inventory_entries(InstanceId=iid, TypeName="Custom:Owner")["Entries"] == [{"Team": "platform"}]
    deleted = aws("ssm", "delete-inventory", "--type-name", "Custom:Owner", "--schema-delete-option", "DeleteSchema")
    assert deleted["TypeName"] == "Custom:Owner" and deleted["DeletionId"]
    assert deleted["DeletionSummary"]["TotalCount"] == 1
    assert ssm.list_inventory_entries(InstanceId=iid, TypeName="Custom:Owner")["Entries"] == []
    e = aws("ssm", "delete-inventory", "--type-name", "AWS:Application", check=False)
    assert "InvalidTypeNameException" in e.stderr
    node.stop()
