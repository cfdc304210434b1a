//! Requests this process made to each AWS service, counted by an SDK
//! interceptor on every client (retries count: each attempt is a request).
//! The benchmarks read them from the local control plane to report AWS
//! requests per operation; nothing else depends on them.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

type Counts = BTreeMap<(String, String), u64>;

fn counts() -> &'static Mutex<Counts> {
    static COUNTS: OnceLock<Mutex<Counts>> = OnceLock::new();
    COUNTS.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// Counts one request per attempt, by service and operation.
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestCounter;

impl Intercept for RequestCounter {
    fn name(&self) -> &'static str {
        "RequestCounter"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        if let Some(m) = cfg.load::<Metadata>() {
            let mut c = counts().lock().unwrap_or_else(|p| p.into_inner());
            *c.entry((m.service().to_string(), m.name().to_string()))
                .or_default() += 1;
        }
        Ok(())
    }
}

/// `{"<service>": {"<operation>": n, …}, …}` since the process started.
pub fn request_counts() -> serde_json::Value {
    let c = counts().lock().unwrap_or_else(|p| p.into_inner());
    let mut out = serde_json::Map::new();
    for ((service, op), n) in c.iter() {
        let entry = out
            .entry(service.clone())
            .or_insert_with(|| serde_json::Value::Object(Default::default()));
        if let Some(map) = entry.as_object_mut() {
            map.insert(op.clone(), serde_json::Value::from(*n));
        }
    }
    serde_json::Value::Object(out)
}
