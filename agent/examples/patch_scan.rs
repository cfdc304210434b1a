//! Scans a root as the patch plugin does (dpkg's database, apt's lists, a
//! baseline) and prints what it found, the wall time and the process's
//! peak RSS. Read-only: it runs neither apt-get nor dpkg, so any root can
//! be scanned, `/` included.
//!
//!     cargo run -p steward-agent --release --example patch_scan -- <root> [baseline.json]
//!
//! The baseline is CreatePatchBaseline's JSON; without one, the predefined
//! baseline of the root's system (AWS-DebianDefaultPatchBaseline, …).

use std::collections::HashSet;
use std::path::PathBuf;
use std::time::Instant;

use nix::sys::resource::{UsageWho, getrusage};
use steward_agent::patching::{product, scan};
use steward_core::patching::report::PatchCounts;
use steward_core::patching::{CreatePatchBaselineRequest, predefined};

/// Peak resident set size so far, in KiB (Linux's ru_maxrss unit).
fn peak_rss_kib() -> i64 {
    getrusage(UsageWho::RUSAGE_SELF)
        .map(|u| u.max_rss())
        .unwrap_or(-1)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let root = PathBuf::from(
        args.next()
            .ok_or("usage: patch_scan <root> [baseline.json]")?,
    );
    let before = peak_rss_kib();
    let started = Instant::now();
    let product = product::read(&root)?;
    let baseline = match args.next() {
        Some(file) => {
            let json: serde_json::Value = serde_json::from_slice(&std::fs::read(file)?)?;
            CreatePatchBaselineRequest::parse(&json)
                .map_err(|e| format!("baseline: {e}"))?
                .baseline
        }
        None => predefined::for_os(product.os).baseline,
    };
    let pending = HashSet::new();
    let found = scan::scan(
        &root,
        &scan::ScanInput {
            baseline: &baseline,
            product: &product.name,
            today: time::OffsetDateTime::now_utc().date(),
            pending_reboot: &pending,
        },
    )?;
    let wall = started.elapsed();
    let peak = peak_rss_kib();
    let c = PatchCounts::of(&found.entries);
    println!("root            {}", root.display());
    println!("product         {}", product.name);
    println!("baseline        {}", baseline.name);
    println!("installed       {}", found.installed);
    println!("package lists   {}", found.lists);
    for w in &found.warnings {
        println!("warning         {w}");
    }
    println!(
        "states          Installed {} InstalledOther {} InstalledPendingReboot {} InstalledRejected {} Missing {} Failed {} NotApplicable {}",
        c.installed,
        c.installed_other,
        c.installed_pending_reboot,
        c.installed_rejected,
        c.missing,
        c.failed,
        c.not_applicable
    );
    for u in found.updates.iter().take(20) {
        println!("missing         {} {} -> {}", u.name, u.from, u.version);
    }
    if found.updates.len() > 20 {
        println!("missing         … and {} more", found.updates.len() - 20);
    }
    println!("wall time       {:.1} ms", wall.as_secs_f64() * 1000.0);
    println!("peak RSS        {peak} KiB (before the scan: {before} KiB)");
    Ok(())
}
