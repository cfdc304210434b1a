//! In-memory ports for unit tests of the operations. The DynamoDB adapter is
//! tested against the local stack with the same expectations.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::Value;

use super::events::{of_command_change, of_invocation_change};
use super::model::{Command, Invocation, Page, Transition, WorkItem};
use super::ports::*;
use crate::channel::{ChannelError, DigestSigner, DownlinkVerifier};
use crate::error::SsmError;
use crate::events::{Event, EventSink};
use crate::run_command::status::CommandState;
use crate::targets::TargetDirectory;

fn page<T: Clone>(all: Vec<T>, limit: u32, token: Option<&str>) -> Page<T> {
    let start: usize = token.and_then(|t| t.parse().ok()).unwrap_or(0);
    let end = (start + limit as usize).min(all.len());
    let items = all.get(start..end).map(<[T]>::to_vec).unwrap_or_default();
    Page {
        items,
        next_token: (end < all.len()).then(|| end.to_string()),
    }
}

#[derive(Default)]
pub struct Store {
    pub commands: Mutex<BTreeMap<String, Command>>,
    pub invocations: Mutex<BTreeMap<(String, String), Invocation>>,
    /// Applied just before the next `transition`, as a concurrent writer
    /// (another report of the same invocation) would.
    pub interleave: Mutex<Option<Transition>>,
    /// The events the tables' streams would carry: each write's old and new
    /// record through the same derivation the change-events function uses.
    pub feed: Mutex<Vec<Event>>,
}

impl Store {
    fn apply(&self, t: &Transition) -> bool {
        let mut invs = self.invocations.lock().unwrap();
        let Some(inv) = invs.get_mut(&(t.command_id.clone(), t.instance_id.clone())) else {
            return false;
        };
        if inv.status_details != t.from {
            return false;
        }
        let old = inv.clone();
        inv.status_details = t.to;
        if let Some(rc) = t.response_code {
            inv.response_code = rc;
        }
        if t.execution_start_date_time.is_some() {
            inv.execution_start_date_time = t.execution_start_date_time;
        }
        if t.execution_end_date_time.is_some() {
            inv.execution_end_date_time = t.execution_end_date_time;
        }
        if let Some(p) = &t.plugins {
            inv.plugins = p.clone();
        }
        let event = of_invocation_change(Some(&old), Some(inv));
        drop(invs);
        self.stream(event);
        self.count(&t.command_id, t.tally_delta());
        true
    }

    fn stream(&self, event: Option<Event>) {
        self.feed.lock().unwrap().extend(event);
    }

    fn count(&self, command_id: &str, d: crate::run_command::status::Tally) {
        let mut cmds = self.commands.lock().unwrap();
        if let Some(c) = cmds.get_mut(command_id) {
            c.tally.add(&d);
        }
    }
}

#[async_trait]
impl CommandStore for Store {
    async fn put_command(&self, c: &Command) -> Result<(), SsmError> {
        let mut m = self.commands.lock().unwrap();
        if m.contains_key(&c.command_id) {
            return Err(SsmError::internal());
        }
        m.insert(c.command_id.clone(), c.clone());
        drop(m);
        self.stream(of_command_change(None, Some(c)));
        Ok(())
    }
    async fn get_command(&self, id: &str) -> Result<Option<Command>, SsmError> {
        Ok(self.commands.lock().unwrap().get(id).cloned())
    }
    async fn query_commands(
        &self,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Command>, SsmError> {
        let mut all: Vec<Command> = self
            .commands
            .lock()
            .unwrap()
            .values()
            .filter(|c| range.after.is_none_or(|a| c.requested_date_time >= a))
            .filter(|c| range.before.is_none_or(|b| c.requested_date_time <= b))
            .cloned()
            .collect();
        all.sort_by(|a, b| b.requested_date_time.total_cmp(&a.requested_date_time));
        Ok(page(all, limit, token))
    }
    async fn set_command_state(
        &self,
        id: &str,
        from: (&str, &str),
        to: CommandState,
    ) -> Result<bool, SsmError> {
        let mut m = self.commands.lock().unwrap();
        let Some(c) = m.get_mut(id) else {
            return Ok(false);
        };
        if c.status != from.0 || c.status_details != from.1 {
            return Ok(false);
        }
        let old = c.clone();
        c.status = to.status.into();
        c.status_details = to.details.into();
        let event = of_command_change(Some(&old), Some(c));
        drop(m);
        self.stream(event);
        Ok(true)
    }
    async fn request_cancel(&self, id: &str) -> Result<bool, SsmError> {
        let mut m = self.commands.lock().unwrap();
        let Some(c) = m.get_mut(id) else {
            return Ok(false);
        };
        if c.is_final() {
            return Ok(false);
        }
        c.cancel_requested = true;
        Ok(true)
    }
    async fn put_invocation(&self, inv: &Invocation) -> Result<bool, SsmError> {
        let mut m = self.invocations.lock().unwrap();
        let key = (inv.command_id.clone(), inv.instance_id.clone());
        if m.contains_key(&key) {
            return Ok(false);
        }
        m.insert(key, inv.clone());
        drop(m);
        self.stream(of_invocation_change(None, Some(inv)));
        self.count(&inv.command_id, inv.initial_tally());
        Ok(true)
    }
    async fn raise_released(&self, id: &str, end: u32) -> Result<bool, SsmError> {
        let mut m = self.commands.lock().unwrap();
        match m.get_mut(id) {
            Some(c) if c.tally.released < end => {
                c.tally.released = end;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
    async fn get_invocation(&self, c: &str, i: &str) -> Result<Option<Invocation>, SsmError> {
        Ok(self
            .invocations
            .lock()
            .unwrap()
            .get(&(c.to_string(), i.to_string()))
            .cloned())
    }
    async fn query_invocations(
        &self,
        c: &str,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        let all: Vec<Invocation> = self
            .invocations
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.command_id == c)
            .cloned()
            .collect();
        Ok(page(all, limit, token))
    }
    async fn query_node_invocations(
        &self,
        node: &str,
        range: TimeRange,
        limit: u32,
        token: Option<&str>,
    ) -> Result<Page<Invocation>, SsmError> {
        let mut all: Vec<Invocation> = self
            .invocations
            .lock()
            .unwrap()
            .values()
            .filter(|i| i.instance_id == node)
            .filter(|i| range.after.is_none_or(|a| i.requested_date_time >= a))
            .filter(|i| range.before.is_none_or(|b| i.requested_date_time <= b))
            .cloned()
            .collect();
        all.sort_by(|a, b| b.requested_date_time.total_cmp(&a.requested_date_time));
        Ok(page(all, limit, token))
    }
    async fn transition(&self, t: &Transition) -> Result<bool, SsmError> {
        let concurrent = self.interleave.lock().unwrap().take();
        if let Some(other) = concurrent {
            self.apply(&other);
        }
        Ok(self.apply(t))
    }
}

/// Registered nodes (all with queue `q-<id>`), and their tags.
#[derive(Default)]
pub struct Fleet {
    pub nodes: BTreeMap<String, BTreeMap<String, String>>,
    /// Nodes whose PingStatus is ConnectionLost (the others are Online).
    pub offline: std::collections::BTreeSet<String>,
}

#[async_trait]
impl TargetDirectory for Fleet {
    async fn nodes_with_tag(&self, key: &str, value: &str) -> Result<Vec<String>, SsmError> {
        Ok(self
            .nodes
            .iter()
            .filter(|(_, t)| t.get(key).map(String::as_str) == Some(value))
            .map(|(n, _)| n.clone())
            .collect())
    }
    async fn nodes_with_tag_key(&self, key: &str) -> Result<Vec<String>, SsmError> {
        Ok(self
            .nodes
            .iter()
            .filter(|(_, t)| t.contains_key(key))
            .map(|(n, _)| n.clone())
            .collect())
    }
    async fn existing_nodes(
        &self,
        ids: &[String],
    ) -> Result<std::collections::BTreeSet<String>, SsmError> {
        Ok(ids
            .iter()
            .filter(|i| self.nodes.contains_key(*i))
            .cloned()
            .collect())
    }
    async fn all_nodes(&self) -> Result<Vec<String>, SsmError> {
        Ok(self.nodes.keys().cloned().collect())
    }
}

#[async_trait]
impl NodeDirectory for Fleet {
    async fn node_address(&self, id: &str) -> Result<Option<NodeAddress>, SsmError> {
        Ok(self.nodes.get(id).map(|tags| NodeAddress {
            queue_url: format!("q-{id}"),
            computer_name: format!("host-{id}"),
            platform_name: "Debian GNU/Linux".into(),
            patch_group: crate::run_command::patch_dispatch::patch_group_of(tags),
            online: !self.offline.contains(id),
        }))
    }
}

#[derive(Default)]
pub struct Mailbox {
    pub sent: Mutex<Vec<(String, String)>>,
    pub gone: Vec<String>,
    /// Every send fails, as in a process that dies before its sends.
    pub down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl NodeMailbox for Mailbox {
    async fn send(&self, queue_url: &str, body: &str) -> Result<Delivery, SsmError> {
        if self.down.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(SsmError::internal());
        }
        if self.gone.iter().any(|g| g == queue_url) {
            return Ok(Delivery::QueueGone);
        }
        self.sent
            .lock()
            .unwrap()
            .push((queue_url.into(), body.into()));
        Ok(Delivery::Queued)
    }
}

#[derive(Default)]
pub struct Work {
    pub items: Mutex<Vec<(WorkItem, u32)>>,
}

#[async_trait]
impl WorkQueue for Work {
    async fn enqueue(&self, item: &WorkItem, delay: u32) -> Result<(), SsmError> {
        assert!(delay <= 900);
        self.items.lock().unwrap().push((item.clone(), delay));
        Ok(())
    }
}

pub struct Outputs;

#[async_trait]
impl OutputLocations for Outputs {
    fn allowed_buckets(&self) -> Vec<String> {
        vec!["out-bucket".into(), "logs".into()]
    }

    async fn presign_put(
        &self,
        bucket: &str,
        _region: &str,
        key: &str,
        _ttl: u64,
    ) -> Result<PresignedPut, SsmError> {
        let object_url = format!("https://s3.local/{bucket}/{key}");
        Ok(PresignedPut {
            put_url: format!("{object_url}?X-Amz-Signature=x"),
            object_url,
        })
    }
}

#[derive(Default)]
pub struct Events {
    pub published: Mutex<Vec<(String, Value)>>,
}

#[async_trait]
impl EventSink for Events {
    async fn publish(
        &self,
        detail_type: &str,
        _r: Vec<String>,
        detail: Value,
    ) -> Result<(), SsmError> {
        self.published
            .lock()
            .unwrap()
            .push((detail_type.into(), detail));
        Ok(())
    }
}

pub struct Signer {
    pair: EcdsaKeyPair,
    /// Signatures made (each would be a KMS Sign).
    pub signed: std::sync::atomic::AtomicUsize,
}

impl Signer {
    pub fn new() -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &SystemRandom::new())
                .unwrap();
        Self {
            pair: EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
                .unwrap(),
            signed: Default::default(),
        }
    }
    pub fn verifier(&self) -> DownlinkVerifier {
        DownlinkVerifier::from_der(self.pair.public_key().as_ref()).unwrap()
    }
}

#[async_trait]
impl DigestSigner for Signer {
    fn key_id(&self) -> &str {
        "test-key"
    }
    async fn sign_digest(&self, digest: [u8; 32]) -> Result<Vec<u8>, ChannelError> {
        self.signed
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = aws_lc_rs::digest::Digest::import_less_safe(&digest, &aws_lc_rs::digest::SHA256)
            .map_err(|_| ChannelError::Signing("bad digest".into()))?;
        let sig = self
            .pair
            .sign_digest(&d)
            .map_err(|_| ChannelError::Signing("sign".into()))?;
        Ok(sig.as_ref().to_vec())
    }
}
