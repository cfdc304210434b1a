//! steward-local: the control plane's functions in one process, over the same
//! handler code as the Lambda binaries. Reads the environment written to
//! `.local/stack.env`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use anyhow::Context;
use aws_lambda_events::sqs::SqsEvent;
use clap::{Parser, ValueEnum};
use steward_aws::Stack;
use steward_local::poller::{MAX_BATCH_SIZE, MAX_WAIT_SECONDS, Poller, PollerConfig, QueueSource};
use steward_local::streams::{Checkpoints, StreamConfig, StreamPoller, StreamSource};
use steward_local::{api, function_url};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Json,
    Text,
}

/// Runs the Steward control plane locally: the api function on a port, a
/// poller per queue (work → dispatch, ingest → ingest, scheduler →
/// scheduler, automation and automation-start → automation) and one per
/// streamed table (→ change-events).
#[derive(Debug, Parser)]
#[command(name = "steward-local", version)]
struct Args {
    /// Port of the API on 127.0.0.1.
    #[arg(long, env = "STEWARD_API_PORT", default_value_t = 7070)]
    api_port: u16,
    /// Do not serve the API.
    #[arg(long)]
    no_api: bool,
    /// Do not poll the queues and the tables' streams.
    #[arg(long)]
    no_pollers: bool,
    /// Poll the queues but not the tables' streams (a second control plane
    /// on the same tables, as a benchmark's, leaves the events to the first).
    #[arg(long)]
    no_streams: bool,
    /// The file where the stream pollers keep their place in each stream
    /// (so that a restart hands on what was not yet handled). Without it the
    /// places are kept in memory only, and a restart reads the streams from
    /// their oldest records again.
    #[arg(long, env = "STEWARD_LOCAL_STREAM_CHECKPOINTS")]
    stream_checkpoints: Option<std::path::PathBuf>,
    /// Log line format (logs go to stderr).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Messages per batch handed to a handler (1-10), as an event source mapping's BatchSize.
    #[arg(long, default_value_t = MAX_BATCH_SIZE, value_parser = clap::value_parser!(i32).range(1..=10))]
    batch_size: i32,
    /// Batches in flight at once per queue (Lambda would scale out further).
    #[arg(long, env = "STEWARD_LOCAL_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// Local only: also put a tick on the scheduler queue every this many
    /// seconds (0: never), so that schedules and work in progress are seen
    /// sooner than the once-a-minute rule a deployed stack has. The tick is
    /// the same message through the same handler; only its frequency differs.
    #[arg(long, env = "STEWARD_SCHEDULER_TICK_SECONDS", default_value_t = 0)]
    scheduler_tick_seconds: u64,
    /// Largest request body the API accepts; larger ones get 413.
    #[arg(long, default_value_t = api::DEFAULT_MAX_BODY)]
    max_body_bytes: usize,
}

/// Local only (no Lambda has it): what this process asked of AWS, for the
/// benchmarks. It reveals counts, never content.
const METRICS_PATH: &str = "/_steward/metrics";

fn metrics(stack: &Stack) -> http::Response<bytes::Bytes> {
    let sealer = stack.parameters().sealer.stats();
    let body = serde_json::json!({
        "requests": steward_aws::metrics::request_counts(),
        "sealer": {
            "generate_calls": sealer.generate_calls,
            "decrypt_calls": sealer.decrypt_calls,
            "cache_hits": sealer.cache_hits,
        },
    });
    http::Response::builder()
        .header("content-type", "application/json")
        .body(bytes::Bytes::from(body.to_string()))
        .unwrap_or_default()
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    init_logging(args.log_format);

    let stack = Arc::new(
        Stack::from_env()
            .await
            .context("cannot read the stack's settings")?,
    );
    // Installed before the ready line so that a signal never finds the
    // default action (terminate without draining).
    let mut signals = Signals::install()?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut ready = Vec::new();

    if !args.no_pollers {
        let config = PollerConfig {
            batch_size: args.batch_size,
            concurrency: usize::from(args.concurrency),
            wait_time_seconds: MAX_WAIT_SECONDS,
        };
        let sqs = &stack.clients.sqs;
        let region = stack.settings.region.clone();

        // The tables' streams feed the change-events function, as deployed.
        // Resolved before any queue is polled: a stack without the streams
        // stops here, before a poll could take a message with it.
        let mut streams = Vec::new();
        let tables = if args.no_streams {
            Vec::new()
        } else {
            steward_aws::change_events::streamed_tables(&stack.settings)
        };
        for table in tables {
            streams.push(
                StreamSource::resolve(&stack.clients.dynamodb, table, &region)
                    .await
                    .context("cannot start the stream pollers")?,
            );
        }
        let live: Vec<String> = streams.iter().map(|s| s.stream_arn.clone()).collect();
        let checkpoints = Arc::new(Checkpoints::load(args.stream_checkpoints.clone(), &live));
        if checkpoints.path().is_none() && !streams.is_empty() {
            tracing::warn!(
                "no --stream-checkpoints file: a restart reads the tables' streams from their oldest records again"
            );
        }
        // The same configuration chain as the other clients; it picks
        // AWS_ENDPOINT_URL_DYNAMODB_STREAMS.
        let shared = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await;
        let streams_client = aws_sdk_dynamodbstreams::Client::new(&shared);
        let mut stream_pollers = Vec::new();
        for source in streams {
            tracing::info!("stream poller: {} {}", source.table, source.stream_arn);
            let s = Arc::clone(&stack);
            stream_pollers.push(StreamPoller::new(
                streams_client.clone(),
                source,
                Arc::clone(&checkpoints),
                StreamConfig::default(),
                move |event| {
                    let s = Arc::clone(&s);
                    async move { steward_fn_change_events::handle(&s, event).await }
                },
            ));
        }

        let work =
            QueueSource::resolve(sqs, "work", &stack.settings.work_queue_url, &region).await?;
        let s = Arc::clone(&stack);
        let work = Poller::new(sqs.clone(), work, config, move |event: SqsEvent| {
            let s = Arc::clone(&s);
            async move { steward_fn_dispatch::handle(&s, event).await }
        })?;

        let ingest =
            QueueSource::resolve(sqs, "ingest", &stack.settings.ingest_queue_url, &region).await?;
        let s = Arc::clone(&stack);
        let ingest = Poller::new(sqs.clone(), ingest, config, move |event: SqsEvent| {
            let s = Arc::clone(&s);
            async move { steward_fn_ingest::handle(&s, event).await }
        })?;

        let scheduler = QueueSource::resolve(
            sqs,
            "scheduler",
            &stack.settings.scheduler_queue_url,
            &region,
        )
        .await?;
        let s = Arc::clone(&stack);
        let scheduler = Poller::new(
            sqs.clone(),
            scheduler,
            // One tick at a time, as the function's event source mapping (BatchSize 1).
            PollerConfig {
                batch_size: 1,
                concurrency: 1,
                ..config
            },
            move |event: SqsEvent| {
                let s = Arc::clone(&s);
                async move { steward_fn_scheduler::handle(&s, event).await }
            },
        )?;

        // Both automation queues feed the automation function, as deployed.
        let mut automation = Vec::new();
        for (name, url) in [
            ("automation", &stack.settings.automation_queue_url),
            (
                "automation-start",
                &stack.settings.automation_start_queue_url,
            ),
        ] {
            let source = QueueSource::resolve(sqs, name, url, &region).await?;
            let s = Arc::clone(&stack);
            automation.push(Poller::new(
                sqs.clone(),
                source,
                config,
                move |event: SqsEvent| {
                    let s = Arc::clone(&s);
                    async move { steward_fn_automation::handle(&s, event).await }
                },
            )?);
        }

        let mut sources = vec![work.source(), ingest.source(), scheduler.source()];
        sources.extend(automation.iter().map(|p| p.source()));
        for poller in &sources {
            tracing::info!(queue = %poller.name, arn = %poller.queue_arn, batch_size = config.batch_size, concurrency = config.concurrency, "polling");
        }
        tasks.spawn(work.run(shutdown_rx.clone()));
        tasks.spawn(ingest.run(shutdown_rx.clone()));
        tasks.spawn(scheduler.run(shutdown_rx.clone()));
        if args.scheduler_tick_seconds > 0 {
            tasks.spawn(extra_ticks(
                sqs.clone(),
                stack.settings.scheduler_queue_url.clone(),
                std::time::Duration::from_secs(args.scheduler_tick_seconds),
                shutdown_rx.clone(),
            ));
        }
        for poller in automation {
            tasks.spawn(poller.run(shutdown_rx.clone()));
        }
        for poller in stream_pollers {
            tasks.spawn(poller.run(shutdown_rx.clone()));
        }
    }

    let mut api_line = String::from("api off");
    if !args.no_api {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, args.api_port));
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen on {addr}; is another steward-local running? pass --api-port")
        })?;
        let s = Arc::clone(&stack);
        let handler = move |req: http::Request<bytes::Bytes>| {
            let s = Arc::clone(&s);
            async move {
                if req.method() == http::Method::GET && req.uri().path() == METRICS_PATH {
                    return metrics(&s);
                }
                // Through the Function URL event and lambda_http, as deployed.
                function_url::serve(req, |r| steward_fn_api::handle(&s, r)).await
            }
        };
        tasks.spawn(api::serve(
            listener,
            handler,
            args.max_body_bytes,
            shutdown_rx.clone(),
        ));
        api_line = format!("api on http://{addr}");
    }
    ready.push(api_line);
    ready.push(if args.no_pollers {
        "pollers: none".to_string()
    } else {
        format!(
            "pollers: work, ingest, scheduler, automation, automation-start{}",
            if args.no_streams { "" } else { ", streams" }
        )
    });

    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "steward-local: {}", ready.join(", "))?;
        out.flush()?;
    }

    if tasks.is_empty() {
        tracing::warn!("--no-api and --no-pollers: nothing to run");
        return Ok(());
    }

    tokio::select! {
        signal = signals.next() => {
            tracing::info!(signal, "shutting down: finishing batches and requests in flight");
        }
        Some(ended) = tasks.join_next() => {
            // A part ended on its own: that is a fault, stop the rest.
            tracing::error!(result = ?ended.err(), "a component stopped unexpectedly; shutting down");
        }
    }
    let _ = shutdown_tx.send(true);
    tokio::select! {
        _ = async { while tasks.join_next().await.is_some() {} } => {}
        signal = signals.next() => {
            tracing::warn!(signal, "second signal: exiting now");
            std::process::exit(130);
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Puts a tick on the scheduler queue every `every` until shutdown. A tick
/// that cannot be sent is logged and the next one tried: the rule's own
/// ticks still come.
async fn extra_ticks(
    sqs: aws_sdk_sqs::Client,
    queue_url: String,
    every: std::time::Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = sqs
            .send_message()
            .queue_url(&queue_url)
            .message_body(r#"{"source":"steward-local","detail-type":"Scheduled Event"}"#)
            .send()
            .await
        {
            tracing::warn!(error = ?e, "local scheduler tick not sent");
        }
    }
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate()).context("cannot install the SIGTERM handler")?,
            int: signal(SignalKind::interrupt()).context("cannot install the SIGINT handler")?,
        })
    }

    async fn next(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Text => builder.init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse() {
        let a = Args::try_parse_from([
            "steward-local",
            "--api-port",
            "9000",
            "--no-pollers",
            "--log-format",
            "json",
            "--batch-size",
            "5",
            "--concurrency",
            "3",
        ])
        .unwrap();
        assert_eq!(a.api_port, 9000);
        assert!(a.no_pollers && !a.no_api);
        assert!(matches!(a.log_format, LogFormat::Json));
        assert_eq!((a.batch_size, a.concurrency), (5, 3));
        // Out of range: refused as a bad value, not as an unknown flag.
        for bad in [["--batch-size", "11"], ["--concurrency", "0"]] {
            let e = Args::try_parse_from(["steward-local", bad[0], bad[1]]).unwrap_err();
            assert_eq!(e.kind(), clap::error::ErrorKind::ValueValidation, "{bad:?}");
        }
    }
}
