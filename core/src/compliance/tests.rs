//! The operations over the in-memory store: what is kept, listed and
//! summarized, what is refused (changing nothing), and the events.

use proptest::prelude::*;
use serde_json::{Value, json};

use super::context::ComplianceContext;
use super::memory::MemoryCompliance;
use super::model::{ItemEntry, Severity, Status, Summary};
use super::operations::handle;
use super::put::is_compliance_type;
use crate::access::{Caller, Policy};
use crate::arn::ArnScope;
use crate::fleet::memory::{MemoryNodes, node};

const NODE: &str = "mi-0123456789abcdef0";
const OTHER: &str = "mi-0123456789abcdef1";
const STATE_CHANGE: &str = "Configuration Compliance State Change";

struct Fixture {
    store: MemoryCompliance,
    nodes: MemoryNodes,
    scope: ArnScope,
}

fn admin() -> Caller {
    Caller {
        access_key_id: "AKADMIN".into(),
        user_arn: "arn:aws:iam::123456789012:user/admin".into(),
        policy: Policy::parse(r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#)
            .unwrap(),
    }
}

impl Fixture {
    fn new() -> Self {
        let f = Fixture {
            store: MemoryCompliance::default(),
            nodes: MemoryNodes::default(),
            scope: ArnScope {
                region: "us-east-1".into(),
                account: "123456789012".into(),
            },
        };
        f.nodes.insert(node(NODE, "pk", 0.0));
        f.nodes.insert(node(OTHER, "pk", 0.0));
        f
    }

    fn ctx(&self) -> ComplianceContext<'_> {
        ComplianceContext {
            store: &self.store,
            nodes: &self.nodes,
            scope: &self.scope,
        }
    }

    async fn call_as(&self, caller: &Caller, op: &str, body: Value) -> Result<Value, String> {
        crate::api_model::validate(op, &body).map_err(|e| format!("{}: {e}", e.code()))?;
        handle(&self.ctx(), caller, op, &body)
            .await
            .expect("a compliance operation")
            .map_err(|e| format!("{}: {e}", e.code()))
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, String> {
        self.call_as(&admin(), op, body).await
    }

    async fn put(&self, body: Value) -> Result<Value, String> {
        self.call("PutComplianceItems", body).await
    }

    fn events(&self) -> Vec<Value> {
        self.store
            .feed
            .lock()
            .unwrap()
            .iter()
            .filter(|e| e.detail_type == STATE_CHANGE)
            .map(|e| e.detail.clone())
            .collect()
    }

    async fn items(&self, resource: &str, filters: Value) -> Vec<Value> {
        self.call(
            "ListComplianceItems",
            json!({"ResourceIds": [resource], "ResourceTypes": ["ManagedInstance"], "Filters": filters}),
        )
        .await
        .unwrap()["ComplianceItems"]
            .as_array()
            .unwrap()
            .clone()
    }
}

fn item(id: &str, severity: &str, status: &str) -> Value {
    json!({"Id": id, "Title": format!("{id} title"), "Severity": severity, "Status": status,
           "Details": {"Source": "test"}})
}

fn put_body(resource: &str, ctype: &str, items: Vec<Value>, upload: &str) -> Value {
    json!({
        "ResourceId": resource,
        "ResourceType": "ManagedInstance",
        "ComplianceType": ctype,
        "ExecutionSummary": {"ExecutionTime": 1_700_000_000, "ExecutionId": "run-1", "ExecutionType": "Command"},
        "Items": items,
        "UploadType": upload,
    })
}

fn run<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

#[test]
fn complete_partial_and_replace_round_trip() {
    run(async {
        let f = Fixture::new();
        f.put(put_body(
            NODE,
            "Custom:Disk",
            vec![
                item("a", "LOW", "COMPLIANT"),
                item("b", "HIGH", "NON_COMPLIANT"),
            ],
            "COMPLETE",
        ))
        .await
        .unwrap();
        let listed = f.items(NODE, json!([])).await;
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["Id"], "a");
        assert_eq!(listed[0]["ComplianceType"], "Custom:Disk");
        assert_eq!(listed[0]["ResourceType"], "ManagedInstance");
        assert_eq!(listed[0]["ResourceId"], NODE);
        assert_eq!(listed[0]["Details"], json!({"Source": "test"}));
        assert_eq!(listed[1]["ExecutionSummary"]["ExecutionId"], "run-1");
        assert_eq!(
            listed[1]["ExecutionSummary"]["ExecutionTime"],
            1_700_000_000.0
        );

        // PARTIAL: b is fixed, c added, a kept.
        f.put(put_body(
            NODE,
            "Custom:Disk",
            vec![
                item("b", "HIGH", "COMPLIANT"),
                item("c", "MEDIUM", "COMPLIANT"),
            ],
            "PARTIAL",
        ))
        .await
        .unwrap();
        let ids: Vec<_> = f
            .items(NODE, json!([]))
            .await
            .iter()
            .map(|i| i["Id"].clone())
            .collect();
        assert_eq!(ids, vec![json!("a"), json!("b"), json!("c")]);
        let summaries = f
            .call("ListResourceComplianceSummaries", json!({}))
            .await
            .unwrap();
        let s = &summaries["ResourceComplianceSummaryItems"][0];
        assert_eq!(s["Status"], "COMPLIANT");
        assert_eq!(s["OverallSeverity"], "HIGH");
        assert_eq!(s["CompliantSummary"]["CompliantCount"], 3);
        assert_eq!(s["NonCompliantSummary"]["NonCompliantCount"], 0);

        // COMPLETE replaces: only d is left.
        f.put(put_body(
            NODE,
            "Custom:Disk",
            vec![item("d", "CRITICAL", "NON_COMPLIANT")],
            "COMPLETE",
        ))
        .await
        .unwrap();
        let listed = f.items(NODE, json!([])).await;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["Id"], "d");
        // Three status changes: first set, fixed, broken again.
        let statuses: Vec<_> = f
            .events()
            .iter()
            .map(|e| e["compliance-status"].clone())
            .collect();
        assert_eq!(
            statuses,
            vec![
                json!("non_compliant"),
                json!("compliant"),
                json!("non_compliant")
            ]
        );
    });
}

#[test]
fn an_unchanged_status_publishes_nothing_and_an_equal_hash_is_ignored() {
    run(async {
        let f = Fixture::new();
        let mut body = put_body(
            NODE,
            "Custom:AppA",
            vec![item("a", "LOW", "COMPLIANT")],
            "COMPLETE",
        );
        body["ItemContentHash"] = json!("h1");
        f.put(body.clone()).await.unwrap();
        assert_eq!(f.events().len(), 1);
        let e = &f.events()[0];
        assert_eq!(e["resource-id"], NODE);
        assert_eq!(e["resource-type"], "managed-instance");
        assert_eq!(e["compliance-type"], "Custom:AppA");
        assert_eq!(e["last-runtime"], "2023-11-14T22:13:20Z");
        // Same hash, other items: ignored.
        body["Items"] = json!([item("z", "LOW", "NON_COMPLIANT")]);
        f.put(body.clone()).await.unwrap();
        assert_eq!(f.items(NODE, json!([])).await[0]["Id"], "a");
        // Another hash, still compliant: written, no event.
        body["ItemContentHash"] = json!("h2");
        body["Items"] = json!([item("y", "LOW", "COMPLIANT")]);
        f.put(body).await.unwrap();
        assert_eq!(f.items(NODE, json!([])).await[0]["Id"], "y");
        assert_eq!(f.events().len(), 1);
    });
}

#[test]
fn patch_events_carry_the_baseline_and_severity() {
    run(async {
        let f = Fixture::new();
        let mut missing = item("openssl", "CRITICAL", "NON_COMPLIANT");
        missing["Details"] =
            json!({"PatchBaselineId": "pb-0123456789abcdef0", "PatchState": "Missing"});
        let change = super::put_items(
            &f.ctx(),
            super::put::write_from_request(&put_body(NODE, "Patch", vec![missing], "COMPLETE"))
                .unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(change.status, Status::NonCompliant);
        assert_eq!(change.previous, None);
        let e = &f.events()[0];
        assert_eq!(e["compliance-type"], "Patch");
        assert_eq!(e["patch-baseline-id"], "pb-0123456789abcdef0");
        assert_eq!(e["severity"], "critical");
        assert_eq!(e["compliance-status"], "non_compliant");
    });
}

#[test]
fn refusals_change_nothing() {
    run(async {
        let f = Fixture::new();
        let cases = [
            (
                {
                    let mut b = put_body(NODE, "Custom:AppA", vec![], "COMPLETE");
                    b["ResourceType"] = json!("Document");
                    b
                },
                "InvalidResourceType",
            ),
            (
                put_body("mi-00000000000000000", "Custom:AppA", vec![], "COMPLETE"),
                "InvalidResourceId",
            ),
            (
                put_body("not-a-node", "Custom:AppA", vec![], "COMPLETE"),
                "InvalidResourceId",
            ),
            (
                put_body(NODE, "Custom:my-type", vec![], "COMPLETE"),
                "ValidationException",
            ),
            (
                put_body(
                    NODE,
                    "Custom:AppA",
                    vec![item("x", "SEVERE", "COMPLIANT")],
                    "COMPLETE",
                ),
                "ValidationException",
            ),
            (
                put_body(
                    NODE,
                    "Custom:AppA",
                    vec![
                        item("x", "LOW", "COMPLIANT"),
                        item("x", "HIGH", "COMPLIANT"),
                    ],
                    "COMPLETE",
                ),
                "InvalidItemContentException",
            ),
            (
                put_body(
                    NODE,
                    "Custom:AppA",
                    vec![{
                        let mut i = item("x", "LOW", "COMPLIANT");
                        i["Title"] = json!("t".repeat(501));
                        i
                    }],
                    "COMPLETE",
                ),
                "ValidationException",
            ),
        ];
        for (body, code) in cases {
            let err = f.put(body.clone()).await.unwrap_err();
            assert!(err.starts_with(code), "{body}: {err}");
        }
        assert!(f.store.records.lock().unwrap().is_empty());
        assert!(f.events().is_empty());
        let err = f
            .put(put_body(
                "mi-00000000000000000",
                "Custom:AppA",
                vec![],
                "COMPLETE",
            ))
            .await;
        assert_eq!(
            err.unwrap_err(),
            "InvalidResourceId: The resource ID \"mi-00000000000000000\" is not valid. Verify the ID with describe-instance-information and try again."
        );
    });
}

#[test]
fn at_most_ten_custom_types_per_resource() {
    run(async {
        let f = Fixture::new();
        for n in 0..10 {
            f.put(put_body(NODE, &format!("Custom:T{n}"), vec![], "COMPLETE"))
                .await
                .unwrap();
        }
        // Patch and Association are not custom; an existing type may be put again.
        f.put(put_body(NODE, "Patch", vec![], "COMPLETE"))
            .await
            .unwrap();
        f.put(put_body(NODE, "Custom:T3", vec![], "COMPLETE"))
            .await
            .unwrap();
        let err = f
            .put(put_body(NODE, "Custom:T10", vec![], "COMPLETE"))
            .await
            .unwrap_err();
        assert!(
            err.starts_with("ComplianceTypeCountLimitExceededException"),
            "{err}"
        );
        // Another node has room of its own.
        f.put(put_body(OTHER, "Custom:T10", vec![], "COMPLETE"))
            .await
            .unwrap();
    });
}

#[test]
fn items_are_filtered_and_paged() {
    run(async {
        let f = Fixture::new();
        let items: Vec<Value> = (0..7)
            .map(|n| {
                item(
                    &format!("i{n}"),
                    if n % 2 == 0 { "LOW" } else { "HIGH" },
                    "COMPLIANT",
                )
            })
            .collect();
        f.put(put_body(NODE, "Custom:AppA", items, "COMPLETE"))
            .await
            .unwrap();
        f.put(put_body(
            NODE,
            "Custom:AppB",
            vec![item("b0", "LOW", "NON_COMPLIANT")],
            "COMPLETE",
        ))
        .await
        .unwrap();
        let high = f
            .items(
                NODE,
                json!([{"Key": "Severity", "Values": ["HIGH"], "Type": "EQUAL"}]),
            )
            .await;
        assert_eq!(high.len(), 3);
        let not_a = f
            .items(
                NODE,
                json!([{"Key": "ComplianceType", "Values": ["Custom:AppA"], "Type": "NOT_EQUAL"}]),
            )
            .await;
        assert_eq!(not_a.len(), 1);
        let begins = f
            .items(
                NODE,
                json!([{"Key": "Id", "Values": ["i1", "b"], "Type": "BEGIN_WITH"}]),
            )
            .await;
        assert_eq!(begins.len(), 2);
        let later = f
            .items(NODE, json!([{"Key": "ExecutionTime", "Values": ["2023-11-14T22:00:00Z"], "Type": "GREATER_THAN"}]))
            .await;
        assert_eq!(later.len(), 8);
        // Pages of 3 list everything once, in order.
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut body = json!({"ResourceIds": [NODE], "MaxResults": 3});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let page = f.call("ListComplianceItems", body).await.unwrap();
            for i in page["ComplianceItems"].as_array().unwrap() {
                seen.push(format!(
                    "{}/{}",
                    i["ComplianceType"].as_str().unwrap(),
                    i["Id"].as_str().unwrap()
                ));
            }
            match page.get("NextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 8);
        assert_eq!(seen[0], "Custom:AppA/i0");
        assert_eq!(seen[7], "Custom:AppB/b0");
        for (body, code) in [
            (
                json!({"ResourceIds": [NODE], "Filters": [{"Key": "Colour", "Values": ["x"]}]}),
                "InvalidFilter",
            ),
            (
                json!({"ResourceIds": [NODE], "Filters": [{"Key": "Id", "Values": ["x"], "Type": "LESS_THAN"}]}),
                "InvalidFilter",
            ),
            (
                json!({"ResourceIds": [NODE], "NextToken": "garbage!"}),
                "InvalidNextToken",
            ),
            (json!({"ResourceIds": [NODE, OTHER]}), "InvalidResourceId"),
            (
                json!({"ResourceIds": [NODE], "ResourceTypes": ["Document"]}),
                "InvalidResourceType",
            ),
            (
                json!({"ResourceIds": [NODE], "MaxResults": 51}),
                "ValidationException",
            ),
        ] {
            let err = f
                .call("ListComplianceItems", body.clone())
                .await
                .unwrap_err();
            assert!(err.starts_with(code), "{body}: {err}");
        }
    });
}

#[test]
fn summaries_count_resources_by_type_and_severity() {
    run(async {
        let f = Fixture::new();
        f.put(put_body(
            NODE,
            "Custom:AppA",
            vec![
                item("a", "CRITICAL", "NON_COMPLIANT"),
                item("b", "LOW", "COMPLIANT"),
            ],
            "COMPLETE",
        ))
        .await
        .unwrap();
        f.put(put_body(
            OTHER,
            "Custom:AppA",
            vec![item("a", "MEDIUM", "COMPLIANT")],
            "COMPLETE",
        ))
        .await
        .unwrap();
        f.put(put_body(OTHER, "Custom:AppB", vec![], "COMPLETE"))
            .await
            .unwrap();
        let all = f.call("ListComplianceSummaries", json!({})).await.unwrap();
        let items = all["ComplianceSummaryItems"].as_array().unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0]["ComplianceType"], "Custom:AppA");
        assert_eq!(items[0]["CompliantSummary"]["CompliantCount"], 1);
        assert_eq!(
            items[0]["CompliantSummary"]["SeveritySummary"]["MediumCount"],
            1
        );
        assert_eq!(items[0]["NonCompliantSummary"]["NonCompliantCount"], 1);
        assert_eq!(
            items[0]["NonCompliantSummary"]["SeveritySummary"]["CriticalCount"],
            1
        );
        assert_eq!(items[1]["ComplianceType"], "Custom:AppB");
        assert_eq!(
            items[1]["CompliantSummary"]["SeveritySummary"]["UnspecifiedCount"],
            1
        );
        // One type a page.
        let first = f
            .call("ListComplianceSummaries", json!({"MaxResults": 1}))
            .await
            .unwrap();
        assert_eq!(
            first["ComplianceSummaryItems"][0]["ComplianceType"],
            "Custom:AppA"
        );
        assert_eq!(
            first["ComplianceSummaryItems"][0]["NonCompliantSummary"]["NonCompliantCount"],
            1
        );
        let token = first["NextToken"].as_str().unwrap();
        let second = f
            .call(
                "ListComplianceSummaries",
                json!({"MaxResults": 1, "NextToken": token}),
            )
            .await
            .unwrap();
        assert_eq!(
            second["ComplianceSummaryItems"][0]["ComplianceType"],
            "Custom:AppB"
        );
        assert!(second.get("NextToken").is_none());
        // Filters pick resources before they are counted.
        let compliant = f
            .call(
                "ListComplianceSummaries",
                json!({"Filters": [{"Key": "Status", "Values": ["COMPLIANT"]}]}),
            )
            .await
            .unwrap();
        assert_eq!(
            compliant["ComplianceSummaryItems"][0]["NonCompliantSummary"]["NonCompliantCount"],
            0
        );
        let resources = f
            .call(
                "ListResourceComplianceSummaries",
                json!({"Filters": [{"Key": "OverallSeverity", "Values": ["CRITICAL"]}]}),
            )
            .await
            .unwrap();
        let r = resources["ResourceComplianceSummaryItems"]
            .as_array()
            .unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0]["ResourceId"], NODE);
        assert_eq!(r[0]["Status"], "NON_COMPLIANT");
        assert_eq!(r[0]["ExecutionSummary"]["ExecutionType"], "Command");
        assert_eq!(r[0]["CompliantSummary"]["SeveritySummary"]["LowCount"], 1);
        // Resource summaries page one at a time, each once.
        let mut token: Option<String> = None;
        let mut seen = Vec::new();
        loop {
            let mut body = json!({"MaxResults": 1});
            if let Some(t) = &token {
                body["NextToken"] = json!(t);
            }
            let page = f
                .call("ListResourceComplianceSummaries", body)
                .await
                .unwrap();
            for s in page["ResourceComplianceSummaryItems"].as_array().unwrap() {
                seen.push(format!(
                    "{}/{}",
                    s["ComplianceType"].as_str().unwrap(),
                    s["ResourceId"].as_str().unwrap()
                ));
            }
            match page.get("NextToken").and_then(Value::as_str) {
                Some(t) => token = Some(t.to_string()),
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec![
                format!("Custom:AppA/{NODE}"),
                format!("Custom:AppA/{OTHER}"),
                format!("Custom:AppB/{OTHER}")
            ]
        );
    });
}

#[test]
fn callers_need_the_action_on_the_resource() {
    run(async {
        let f = Fixture::new();
        let only_other = Caller {
            access_key_id: "AKBOB".into(),
            user_arn: "arn:aws:iam::123456789012:user/bob".into(),
            policy: Policy::parse(&format!(
                r#"{{"Statement":[{{"Effect":"Allow","Action":"ssm:PutComplianceItems","Resource":"arn:aws:ssm:us-east-1:123456789012:managed-instance/{OTHER}"}}]}}"#
            ))
            .unwrap(),
        };
        let err = f
            .call_as(
                &only_other,
                "PutComplianceItems",
                put_body(NODE, "Custom:AppA", vec![], "COMPLETE"),
            )
            .await
            .unwrap_err();
        assert!(err.starts_with("AccessDeniedException"), "{err}");
        f.call_as(
            &only_other,
            "PutComplianceItems",
            put_body(OTHER, "Custom:AppA", vec![], "COMPLETE"),
        )
        .await
        .unwrap();
        let err = f
            .call_as(&only_other, "ListComplianceSummaries", json!({}))
            .await
            .unwrap_err();
        assert!(err.starts_with("AccessDeniedException"), "{err}");
    });
}

fn severity() -> impl Strategy<Value = Severity> {
    prop::sample::select(Severity::ALL.to_vec())
}

proptest! {
    /// The summary's counts add up to the items, the status is
    /// NON_COMPLIANT exactly when an item is, and the overall severity is
    /// the worst of the items that decide the status.
    #[test]
    fn summaries_agree_with_their_items(items in prop::collection::vec((severity(), any::<bool>()), 0..40)) {
        let entries: Vec<ItemEntry> = items.iter().enumerate().map(|(n, (s, ok))| ItemEntry {
            id: n.to_string(),
            title: String::new(),
            severity: *s,
            status: if *ok { Status::Compliant } else { Status::NonCompliant },
            details: Default::default(),
        }).collect();
        let s = Summary::of(&entries);
        prop_assert_eq!((s.compliant.total() + s.non_compliant.total()) as usize, entries.len());
        let bad: Vec<Severity> = entries.iter().filter(|e| e.status == Status::NonCompliant).map(|e| e.severity).collect();
        prop_assert_eq!(s.status == Status::NonCompliant, !bad.is_empty());
        let deciding = if bad.is_empty() { entries.iter().map(|e| e.severity).max() } else { bad.iter().copied().max() };
        prop_assert_eq!(s.overall_severity, deciding.unwrap_or(Severity::Unspecified));
    }

    /// The compliance type pattern is SSM's regular expression.
    #[test]
    fn compliance_types_match_ssms_pattern(t in "(Custom:)?[A-Za-z0-9_:\\- ]{0,12}") {
        let re = regex::Regex::new(r"^(?:[A-Za-z0-9_\-][0-9A-Za-z_]+|Custom:[a-zA-Z0-9_\-][0-9A-Za-z_]+)$").unwrap();
        prop_assert_eq!(is_compliance_type(&t), re.is_match(&t));
    }
}

fn put_op() -> impl Strategy<Value = (bool, Vec<(u8, bool)>)> {
    (
        any::<bool>(),
        prop::collection::vec((0u8..6, any::<bool>()), 0..5),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any sequence of COMPLETE and PARTIAL puts leaves the items a plain
    /// map says (COMPLETE: only the given; PARTIAL: the given over the
    /// rest), and publishes an event exactly when the status changes.
    #[test]
    fn puts_keep_what_a_map_keeps(ops in prop::collection::vec(put_op(), 1..8)) {
        run(async {
            let f = Fixture::new();
            let mut model: std::collections::BTreeMap<String, bool> = Default::default();
            let mut status: Option<bool> = None;
            let mut changes = 0;
            for (complete, items) in &ops {
                // One entry per Id: a put may not name an Id twice.
                let given: std::collections::BTreeMap<String, bool> =
                    items.iter().map(|(id, ok)| (format!("i{id}"), *ok)).collect();
                let body = put_body(
                    NODE,
                    "Custom:Prop",
                    given
                        .iter()
                        .map(|(id, ok)| item(id, "LOW", if *ok { "COMPLIANT" } else { "NON_COMPLIANT" }))
                        .collect(),
                    if *complete { "COMPLETE" } else { "PARTIAL" },
                );
                f.put(body).await.unwrap();
                if *complete {
                    model.clear();
                }
                model.extend(given);
                let now = model.values().all(|ok| *ok);
                if status != Some(now) {
                    changes += 1;
                }
                status = Some(now);
                let listed: std::collections::BTreeMap<String, bool> = f
                    .items(NODE, json!([]))
                    .await
                    .iter()
                    .map(|i| (i["Id"].as_str().unwrap().to_string(), i["Status"] == "COMPLIANT"))
                    .collect();
                assert_eq!(listed, model);
            }
            assert_eq!(f.events().len(), changes);
        });
    }
}
