//! The journal and the spool against an in-memory model: random sequences
//! of writes, crashes (the handles dropped and reopened from the same
//! directory) and torn writes (a crash mid-write), after each of which the
//! reopened state must equal the model.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;

use proptest::prelude::*;
use steward_core::channel::{MessageRejected, Uplink, UplinkPayload};

use crate::journal::{CommandState, Journal};
use crate::spool::Spool;

const NOW: f64 = 1_700_000_000.0;
/// Few ids, so that operations hit the same message or command again.
const IDS: u8 = 6;

#[derive(Debug, Clone)]
enum Op {
    RecordMessage(u8),
    RecordCommand(u8, CommandState, bool),
    Push(u8),
    /// The sender's acknowledgement: the oldest report goes.
    Ack,
    Crash,
    /// A crash in the middle of a journal append: part of a line is on disk.
    TornJournal(u8, usize),
    /// A crash in the middle of a spool push: its temporary file is left.
    TornSpool(u8, usize),
}

fn op() -> impl Strategy<Value = Op> {
    let state = prop_oneof![
        Just(CommandState::Accepted),
        Just(CommandState::Started),
        Just(CommandState::Finished),
        Just(CommandState::Cancelled),
    ];
    prop_oneof![
        3 => (0..IDS).prop_map(Op::RecordMessage),
        4 => (0..IDS, state, any::<bool>()).prop_map(|(i, s, p)| Op::RecordCommand(i, s, p)),
        4 => (0..IDS).prop_map(Op::Push),
        3 => Just(Op::Ack),
        1 => Just(Op::Crash),
        1 => (0..IDS, any::<usize>()).prop_map(|(i, n)| Op::TornJournal(i, n)),
        1 => (0..IDS, any::<usize>()).prop_map(|(i, n)| Op::TornSpool(i, n)),
    ]
}

#[derive(Default)]
struct Model {
    seen: HashSet<String>,
    /// State, plugin names, time of the last record.
    commands: HashMap<String, (CommandState, Vec<String>, f64)>,
    spool: VecDeque<String>,
}

fn plugins(with: bool) -> Vec<String> {
    if with {
        vec!["aws:runShellScript".into(), "second".into()]
    } else {
        Vec::new()
    }
}

fn report(id: &str) -> UplinkPayload {
    UplinkPayload {
        v: 1,
        msg_id: id.into(),
        sent_at: NOW,
        message: Uplink::MessageRejected(MessageRejected {
            reason: "r".into(),
            queue_message_id: id.into(),
        }),
    }
}

struct Real {
    journal: Journal,
    spool: Spool,
}

fn open(dir: &Path, now: f64) -> Real {
    Real {
        journal: Journal::open(&dir.join("journal"), now).unwrap(),
        spool: Spool::open(&dir.join("spool")).unwrap(),
    }
}

fn assert_equal(real: &Real, model: &Model) -> Result<(), TestCaseError> {
    for i in 0..IDS {
        let m = format!("m{i}");
        prop_assert_eq!(real.journal.seen(&m), model.seen.contains(&m), "{}", m);
        let c = format!("c{i}");
        let got = real
            .journal
            .command(&c)
            .map(|r| (r.state, r.plugins.clone(), r.at));
        prop_assert_eq!(got, model.commands.get(&c).cloned(), "{}", c);
    }
    let mut unfinished: Vec<_> = model
        .commands
        .iter()
        .filter(|(_, (s, _, _))| matches!(s, CommandState::Accepted | CommandState::Started))
        .collect();
    unfinished.sort_by(|a, b| a.1.2.total_cmp(&b.1.2));
    let unfinished: Vec<String> = unfinished.into_iter().map(|(id, _)| id.clone()).collect();
    let got: Vec<String> = real
        .journal
        .unfinished()
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    prop_assert_eq!(got, unfinished);
    let spooled: Vec<String> = real
        .spool
        .pending()
        .unwrap()
        .iter()
        .map(|r| real.spool.read(r).unwrap().msg_id)
        .collect();
    prop_assert_eq!(spooled, Vec::from(model.spool.clone()));
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let mut model = Model::default();
    let mut real = open(dir.path(), NOW);
    for (n, op) in ops.into_iter().enumerate() {
        // Distinct times keep the order of unfinished commands defined.
        let t = NOW + n as f64;
        match op {
            Op::RecordMessage(i) => {
                let id = format!("m{i}");
                real.journal.record_message(&id, t).unwrap();
                model.seen.insert(id);
            }
            Op::RecordCommand(i, state, with) => {
                let id = format!("c{i}");
                let names = plugins(with);
                real.journal.record_command(&id, state, &names, t).unwrap();
                let rec = model.commands.entry(id).or_insert((state, Vec::new(), t));
                rec.0 = state;
                rec.2 = t;
                if !names.is_empty() {
                    rec.1 = names;
                }
            }
            Op::Push(i) => {
                let id = format!("u{n}-{i}");
                real.spool.push(&report(&id)).unwrap();
                model.spool.push_back(id);
            }
            Op::Ack => {
                if let Some(oldest) = real.spool.pending().unwrap().first() {
                    real.spool.remove(oldest).unwrap();
                    model.spool.pop_front();
                }
            }
            Op::Crash => {
                drop(real);
                real = open(dir.path(), t);
            }
            Op::TornJournal(i, cut) => {
                drop(real);
                // A strict prefix of a line never parses: nothing recorded.
                let line = format!(r#"{{"e":"msg","t":{t},"id":"m{i}"}}"#);
                let path = dir.path().join("journal/journal.jsonl");
                let mut f = OpenOptions::new().append(true).open(path).unwrap();
                f.write_all(&line.as_bytes()[..cut % line.len()]).unwrap();
                drop(f);
                real = open(dir.path(), t);
            }
            Op::TornSpool(i, cut) => {
                drop(real);
                let body = serde_json::to_vec(&report(&format!("torn-{i}"))).unwrap();
                let next = model.spool.len();
                let tmp = dir.path().join(format!("spool/.{next:020}.json.1.tmp"));
                std::fs::write(tmp, &body[..cut % body.len()]).unwrap();
                real = open(dir.path(), t);
            }
        }
        assert_equal(&real, &model)?;
    }
    drop(real);
    let real = open(dir.path(), NOW + 1_000.0);
    assert_equal(&real, &model)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    #[test]
    fn reopened_journal_and_spool_equal_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        run(ops)?;
    }
}
