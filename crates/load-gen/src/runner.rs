//! How a run runs: pre-flight, prompt preparation, closed-loop workers or the open-loop
//! dispatcher, the record collector, the progress display, shutdown and the final outputs.
//!
//! Every request task holds a sender of the record channel; the collector task ends when
//! the last sender is dropped, so "all requests done" needs no extra
//! bookkeeping. Shutdown is a `watch` flag: workers stop starting requests and in-flight
//! requests are cancelled (counted as `cancelled`, not as failures), then the summary and
//! the files are still written.
//!
//! The open-loop dispatcher is a dedicated OS thread: it sleeps until shortly before each
//! scheduled time, spins the last ~150 µs, then spawns the request on the runtime. Tokio's
//! timer has a 1 ms granularity, too coarse for sub-millisecond lateness at 2,000 req/s.

use std::{
    fs::File,
    future::Future,
    io::{BufWriter, Write},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use rand::{Rng, SeedableRng, rngs::StdRng};
use tokenizer::Tokenizer;
use tokio::sync::{mpsc, watch};

use crate::{
    Error,
    client::{HttpClient, Outgoing, WorkerConnection},
    config::{ClosedLoop, Config, DEFAULT_TEMPERATURE, Load, Mix, OpenLoop, Workload},
    console::{self, Console, Counters, Remaining},
    html,
    pattern::Pattern,
    prompt::{BuiltPrompt, ClassPools, PromptPlan, TextGen},
    record::RequestRecord,
    report::Report,
    schedule::ArrivalSchedule,
    stats::{RunInfo, Stats},
    trace::TraceContext,
};

/// Runs `config` until its limit or Ctrl-C, then returns the report (also on Ctrl-C).
pub async fn run(config: Config) -> Result<Report, Error> {
    run_until(config, async {
        if tokio::signal::ctrl_c().await.is_err() {
            // No signal handler available: only the limit ends the run.
            std::future::pending::<()>().await;
        }
    })
    .await
}

/// Runs `config` until its limit or until `shutdown` completes, then returns the report.
pub async fn run_until(
    config: Config,
    shutdown: impl Future<Output = ()>,
) -> Result<Report, Error> {
    config.validate()?;
    let temperature = match &config.workload {
        Workload::Mix(mix) => mix.temperature,
        Workload::PdConcurrent(_) => DEFAULT_TEMPERATURE,
    };
    let client = HttpClient::new(&config, temperature)?;
    let console = Arc::new(Console::new(config.console, bar_length(&config)));
    for line in banner(&config) {
        console.line(&line);
    }
    if config.preflight {
        console.line("Checking endpoint availability...");
        if let Err(error) = client.preflight().await {
            console.line(&format!("ERROR: {error}"));
            console.line("Make sure the llm-d gateway/service is running and accessible");
            return Err(error);
        }
        console.line("✓ Endpoint accessible");
        console.line("");
    }

    // Sizing prompts tokenizes up to a few hundred thousand tokens: keep it off the runtime.
    let prompt_config = config.clone();
    let plan = tokio::task::spawn_blocking(move || build_plan(&prompt_config))
        .await
        .map_err(|error| Error::Config(format!("prompt preparation panicked: {error}")))??;

    let jsonl = match &config.outputs.jsonl {
        Some(path) => {
            let file = File::create(path).map_err(|source| Error::Output {
                path: path.display().to_string(),
                source,
            })?;
            Some((path.display().to_string(), BufWriter::new(file)))
        }
        None => None,
    };

    let (records_tx, records_rx) = mpsc::unbounded_channel();
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let run_start = Instant::now();
    let shared = Arc::new(Shared {
        client,
        console: console.clone(),
        counters: Counters::default(),
        run_start,
        deadline: config.limit.duration.map(|d| run_start + d),
        budget: config.limit.requests,
        admitted: AtomicU64::new(0),
        stop: AtomicBool::new(false),
        shutdown: shutdown_rx,
        seed: config.seed,
        run_id: format!("{:08x}", rand::rng().random::<u32>()),
    });

    let mut stats = Stats::new(config.seed);
    start_load(&config, &shared, plan, &records_tx, &mut stats);
    drop(records_tx);

    let collector = {
        let shared = shared.clone();
        let per_request_lines = config.per_request_lines;
        // A task, not a thread: a record wakes it without a cross-thread futex wake-up, and
        // its work per record is a few microseconds (the JSON lines go through a buffer).
        tokio::spawn(
            async move { collect(records_rx, stats, &shared, per_request_lines, jsonl).await },
        )
    };
    let progress = tokio::spawn(progress(shared.clone(), config.progress_interval));

    let mut collector = collector;
    let mut interrupted = false;
    tokio::pin!(shutdown);
    let collected = tokio::select! {
        collected = &mut collector => collected,
        () = &mut shutdown => {
            interrupted = true;
            shared.stop.store(true, Ordering::SeqCst);
            let _ = shutdown_tx.send(true);
            collector.await
        }
    };
    progress.abort();
    console.finish();
    let (stats, jsonl_error) =
        collected.map_err(|error| Error::Config(format!("collector panicked: {error}")))?;
    let duration = run_start.elapsed();

    let report = stats.report(RunInfo {
        workload: match &config.workload {
            Workload::PdConcurrent(_) => "pd-concurrent".to_owned(),
            Workload::Mix(mix) => mix.name.clone(),
        },
        endpoint: config.endpoint.clone(),
        model: config.model.clone(),
        seed: config.seed,
        planned_duration_s: config.limit.duration.map(|d| d.as_secs_f64()),
        duration_s: duration.as_secs_f64(),
        interrupted,
    });
    for line in report.summary_text().lines() {
        console.line(line);
    }
    write_outputs(&config, &report, &console)?;
    if let Some((path, source)) = jsonl_error {
        return Err(Error::Output { path, source });
    }
    Ok(report)
}

/// State shared by workers, the dispatcher, request tasks and the progress display.
struct Shared {
    client: HttpClient,
    console: Arc<Console>,
    counters: Counters,
    run_start: Instant,
    deadline: Option<Instant>,
    budget: Option<u64>,
    admitted: AtomicU64,
    /// Set on shutdown; read by the dispatcher thread.
    stop: AtomicBool,
    shutdown: watch::Receiver<bool>,
    seed: u64,
    run_id: String,
}

/// What the record channel carries.
enum Message {
    Done(Box<RequestRecord>),
    Cancelled,
}

/// A request's shape, before trace context and timing.
struct Planned {
    pattern: String,
    api: crate::Api,
    prompt: BuiltPrompt,
    max_tokens: u32,
    stream: bool,
    request_id: String,
    worker: Option<(u32, u64)>,
}

enum Plan {
    Pools(ClassPools),
    Mix(PromptPlan),
}

impl Shared {
    /// Admits one more request (its sequence number), or `None` once the run must stop.
    fn admit(&self) -> Option<u64> {
        if self.stop.load(Ordering::Relaxed) || *self.shutdown.borrow() {
            return None;
        }
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            return None;
        }
        let seq = self.admitted.fetch_add(1, Ordering::Relaxed);
        if self.budget.is_some_and(|budget| seq >= budget) {
            return None;
        }
        Some(seq)
    }

    /// Resolves when shutdown is requested.
    async fn shutdown_requested(&self) {
        let mut shutdown = self.shutdown.clone();
        if shutdown.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    fn ms_since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.run_start).as_secs_f64() * 1000.0
    }

    /// Sends one request; `None` when shutdown cancelled it.
    async fn execute(
        &self,
        planned: Planned,
        seq: u64,
        scheduled: Option<Instant>,
        connection: Option<&mut WorkerConnection>,
    ) -> Option<RequestRecord> {
        let trace = TraceContext::generate(&mut rand::rng());
        let traceparent = trace.traceparent();
        let outgoing = Outgoing {
            api: planned.api,
            prompt: &planned.prompt.prompt,
            max_tokens: planned.max_tokens,
            stream: planned.stream,
            request_id: &planned.request_id,
            traceparent: &traceparent,
        };
        let body = self.client.body(&outgoing);
        self.counters.in_flight.fetch_add(1, Ordering::Relaxed);
        let send_start = Instant::now();
        let outcome = tokio::select! {
            outcome = self.client.send(&outgoing, body, connection) => Some(outcome),
            () = self.shutdown_requested() => None,
        };
        self.counters.in_flight.fetch_sub(1, Ordering::Relaxed);
        let outcome = outcome?;
        Some(RequestRecord {
            seq,
            worker: planned.worker.map(|(worker, _)| worker),
            worker_request: planned.worker.map(|(_, n)| n),
            pattern: planned.pattern,
            request_id: planned.request_id,
            trace_id: trace.trace_id_hex(),
            stream: planned.stream,
            prompt_chars: planned.prompt.chars,
            prompt_tokens: planned.prompt.tokens,
            max_tokens: planned.max_tokens,
            scheduled_ms: scheduled.map(|at| self.ms_since_start(at)),
            lateness_ms: scheduled
                .map(|at| send_start.saturating_duration_since(at).as_secs_f64() * 1000.0),
            start_ms: self.ms_since_start(send_start),
            status: outcome.status,
            failure: outcome.failure,
            error: outcome.error,
            headers_ms: outcome.headers_ms,
            ttft_ms: outcome.ttft_ms,
            itl_ms: outcome.itl_ms,
            e2e_ms: outcome.e2e_ms,
            usage_prompt_tokens: outcome.usage_prompt_tokens,
            usage_completion_tokens: outcome.usage_completion_tokens,
        })
    }

    /// Sleeps `pause` (cut at the deadline); false when shutdown was requested meanwhile.
    async fn pause(&self, pause: Duration) -> bool {
        if pause.is_zero() {
            return true;
        }
        let mut until = Instant::now() + pause;
        if let Some(deadline) = self.deadline {
            until = until.min(deadline);
        }
        tokio::select! {
            () = tokio::time::sleep_until(until.into()) => true,
            () = self.shutdown_requested() => false,
        }
    }

    fn send(&self, records: &mpsc::UnboundedSender<Message>, record: Option<RequestRecord>) {
        let message = match record {
            Some(record) => Message::Done(Box::new(record)),
            None => Message::Cancelled,
        };
        // The collector outlives every sender.
        let _ = records.send(message);
    }
}

fn build_plan(config: &Config) -> Result<Plan, Error> {
    let text_gen = TextGen::new(Tokenizer::embedded());
    Ok(match &config.workload {
        Workload::PdConcurrent(_) => {
            Plan::Pools(ClassPools::build(&text_gen, &config.prompt_sizes))
        }
        Workload::Mix(mix) => Plan::Mix(PromptPlan::build(
            &text_gen,
            &mix.prompt,
            &config.prompt_sizes,
        )?),
    })
}

/// Spawns the workers or the dispatcher; each holds a clone of `records`.
fn start_load(
    config: &Config,
    shared: &Arc<Shared>,
    plan: Plan,
    records: &mpsc::UnboundedSender<Message>,
    stats: &mut Stats,
) {
    match (&config.workload, plan) {
        (Workload::PdConcurrent(pd), Plan::Pools(pools)) => {
            let pools = Arc::new(pools);
            shared
                .console
                .line(&format!("Starting {} concurrent workers...", pd.workers));
            for worker in 1..=pd.workers {
                stats.add_worker(worker, Pattern::for_worker(worker).name());
                let delay = pd.stagger * (worker - 1);
                tokio::spawn(pd_worker(
                    shared.clone(),
                    pools.clone(),
                    worker,
                    delay,
                    pd.pause_scale,
                    records.clone(),
                ));
            }
            shared.console.line("");
            shared.console.line(RULE);
            shared
                .console
                .line("Traffic generation in progress... (Ctrl+C to stop)");
            shared.console.line(RULE);
            shared.console.line("");
        }
        (Workload::Mix(mix), Plan::Mix(prompts)) => {
            let prompts = Arc::new(prompts);
            let mix = Arc::new(mix.clone());
            match &mix.load {
                Load::Closed(ClosedLoop { workers, pause }) => {
                    for worker in 1..=*workers {
                        stats.add_worker(worker, mix.prompt.label());
                        tokio::spawn(mix_worker(
                            shared.clone(),
                            mix.clone(),
                            prompts.clone(),
                            worker,
                            *pause,
                            records.clone(),
                        ));
                    }
                }
                Load::Open(open) => {
                    let open = open.clone();
                    let shared = shared.clone();
                    let records = records.clone();
                    let handle = tokio::runtime::Handle::current();
                    std::thread::Builder::new()
                        .name("load-gen-dispatch".to_owned())
                        .spawn(move || dispatch(&shared, &handle, &open, &mix, &prompts, &records))
                        .map(drop)
                        .unwrap_or_else(|error| {
                            tracing::error!(%error, "Cannot start the open-loop dispatcher.");
                        });
                }
            }
        }
        // `build_plan` derives the plan from the same workload.
        _ => tracing::error!("Prompt plan does not match the workload."),
    }
}

const RULE: &str = "============================================================";

fn worker_rng(seed: u64, worker: u32) -> StdRng {
    StdRng::seed_from_u64(seed ^ u64::from(worker).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Last 7 digits of the nanosecond clock, as the script's `date +%s%N | tail -c 8`.
fn clock_suffix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() % 10_000_000)
        .unwrap_or(0) as u64
}

async fn pd_worker(
    shared: Arc<Shared>,
    pools: Arc<ClassPools>,
    worker: u32,
    delay: Duration,
    pause_scale: f64,
    records: mpsc::UnboundedSender<Message>,
) {
    if !shared.pause(delay).await {
        return;
    }
    let pattern = Pattern::for_worker(worker);
    shared.console.line(&format!(
        "[Worker {worker}] Started with pattern: {}",
        pattern.name()
    ));
    let mut rng = worker_rng(shared.seed, worker);
    let mut connection = WorkerConnection::default();
    let mut n = 0u64;
    while let Some(seq) = shared.admit() {
        n += 1;
        let step = pattern.step(n, &mut rng);
        let planned = Planned {
            pattern: pattern.name().to_owned(),
            api: crate::Api::Chat,
            prompt: pools.get(step.class, step.pool_idx).clone(),
            max_tokens: step.max_tokens,
            stream: step.stream,
            request_id: format!("worker{worker}-req{n}-{:07}", clock_suffix()),
            worker: Some((worker, n)),
        };
        let record = shared
            .execute(planned, seq, None, Some(&mut connection))
            .await;
        let cancelled = record.is_none();
        shared.send(&records, record);
        if cancelled || !shared.pause(step.pause.mul_f64(pause_scale)).await {
            break;
        }
    }
}

fn plan_mix(
    shared: &Shared,
    mix: &Mix,
    prompts: &PromptPlan,
    rng: &mut StdRng,
    seq: u64,
    worker: Option<(u32, u64)>,
) -> Planned {
    let prompt = prompts.next(rng);
    let max_tokens = prompt
        .max_tokens
        .unwrap_or_else(|| mix.output_tokens.sample(rng));
    let stream = mix.stream_ratio > 0.0 && rng.random_bool(mix.stream_ratio.min(1.0));
    Planned {
        pattern: prompt
            .class
            .map_or_else(|| mix.prompt.label(), |class| class.name())
            .to_owned(),
        api: mix.api,
        prompt,
        max_tokens,
        stream,
        request_id: format!("lg-{}-{seq}", shared.run_id),
        worker,
    }
}

async fn mix_worker(
    shared: Arc<Shared>,
    mix: Arc<Mix>,
    prompts: Arc<PromptPlan>,
    worker: u32,
    pause: Duration,
    records: mpsc::UnboundedSender<Message>,
) {
    let mut rng = worker_rng(shared.seed, worker);
    let mut connection = WorkerConnection::default();
    let mut n = 0u64;
    while let Some(seq) = shared.admit() {
        n += 1;
        let planned = plan_mix(&shared, &mix, &prompts, &mut rng, seq, Some((worker, n)));
        let record = shared
            .execute(planned, seq, None, Some(&mut connection))
            .await;
        let cancelled = record.is_none();
        shared.send(&records, record);
        if cancelled || !shared.pause(pause).await {
            break;
        }
    }
}

/// Spin instead of sleeping when the next arrival is closer than this.
const SPIN_WINDOW: Duration = Duration::from_micros(150);
/// Longest single sleep, so a shutdown is noticed promptly.
const MAX_SLEEP: Duration = Duration::from_millis(20);

/// Waits until `at`; false when the run stopped meanwhile.
fn wait_until(at: Instant, stop: &AtomicBool) -> bool {
    loop {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let now = Instant::now();
        if now >= at {
            return true;
        }
        let left = at - now;
        if left > SPIN_WINDOW {
            std::thread::sleep((left - SPIN_WINDOW).min(MAX_SLEEP));
        } else {
            std::hint::spin_loop();
        }
    }
}

/// The open-loop dispatcher thread: one spawned request per scheduled arrival.
fn dispatch(
    shared: &Arc<Shared>,
    handle: &tokio::runtime::Handle,
    open: &OpenLoop,
    mix: &Arc<Mix>,
    prompts: &Arc<PromptPlan>,
    records: &mpsc::UnboundedSender<Message>,
) {
    let schedule = ArrivalSchedule::new(open.arrival, &open.stages, shared.seed);
    for offset in schedule {
        let at = shared.run_start + offset;
        if shared.deadline.is_some_and(|deadline| at >= deadline) {
            break;
        }
        if !wait_until(at, &shared.stop) {
            break;
        }
        let Some(seq) = shared.admit() else {
            break;
        };
        let shared = shared.clone();
        let mix = mix.clone();
        let prompts = prompts.clone();
        let records = records.clone();
        handle.spawn(async move {
            let mut rng = StdRng::seed_from_u64(
                shared
                    .seed
                    .wrapping_add(seq.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
            );
            let planned = plan_mix(&shared, &mix, &prompts, &mut rng, seq, None);
            let record = shared.execute(planned, seq, Some(at), None).await;
            shared.send(&records, record);
        });
    }
}

/// The collector: stats, counters, per-request lines and the JSON lines file.
async fn collect(
    mut records: mpsc::UnboundedReceiver<Message>,
    mut stats: Stats,
    shared: &Shared,
    per_request_lines: bool,
    mut jsonl: Option<(String, BufWriter<File>)>,
) -> (Stats, Option<(String, std::io::Error)>) {
    let mut jsonl_error = None;
    while let Some(message) = records.recv().await {
        let record = match message {
            Message::Done(record) => record,
            Message::Cancelled => {
                stats.add_cancelled();
                continue;
            }
        };
        stats.add(&record);
        let counters = &shared.counters;
        counters.total.fetch_add(1, Ordering::Relaxed);
        if record.is_success() {
            counters.successful.fetch_add(1, Ordering::Relaxed);
        } else {
            counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        if per_request_lines && !shared.console.is_quiet() {
            let clock = console::clock(SystemTime::now());
            shared.console.line(&console::request_line(&clock, &record));
        }
        if let Some((path, writer)) = jsonl.as_mut() {
            let written = serde_json::to_writer(&mut *writer, &record)
                .map_err(std::io::Error::from)
                .and_then(|()| writer.write_all(b"\n"));
            if let Err(error) = written {
                jsonl_error = Some((path.clone(), error));
                jsonl = None;
            }
        }
    }
    if let Some((path, mut writer)) = jsonl
        && let Err(error) = writer.flush()
    {
        jsonl_error = Some((path, error));
    }
    (stats, jsonl_error)
}

/// The bar's length: seconds of the planned duration, else the request budget.
fn bar_length(config: &Config) -> Option<(u64, bool)> {
    match (config.limit.duration, config.limit.requests) {
        (Some(duration), _) => Some((duration.as_secs().max(1), true)),
        (None, Some(requests)) => Some((requests, false)),
        (None, None) => None,
    }
}

/// Bar refresh interval.
const BAR_REFRESH: Duration = Duration::from_millis(250);

async fn progress(shared: Arc<Shared>, interval: Duration) {
    let remaining = |now: Instant| match (shared.deadline, shared.budget) {
        (Some(deadline), _) => Remaining::Seconds(
            deadline
                .saturating_duration_since(now)
                .as_secs_f64()
                .round() as u64,
        ),
        (None, Some(budget)) => {
            Remaining::Requests(budget.saturating_sub(shared.counters.snapshot().total))
        }
        (None, None) => Remaining::Unbounded,
    };
    if shared.console.is_bar() {
        let mut last = (Instant::now(), 0u64);
        loop {
            tokio::time::sleep(BAR_REFRESH).await;
            let now = Instant::now();
            let snapshot = shared.counters.snapshot();
            let recent = (snapshot.total - last.1) as f64
                / now.duration_since(last.0).as_secs_f64().max(f64::EPSILON);
            last = (now, snapshot.total);
            let elapsed = now.duration_since(shared.run_start);
            let position = match shared.deadline {
                Some(_) => elapsed.as_secs(),
                None => snapshot.total,
            };
            shared
                .console
                .update_bar(position, console::bar_message(snapshot, elapsed, recent));
        }
    } else if !shared.console.is_quiet() {
        let start = tokio::time::Instant::from_std(shared.run_start);
        let mut ticker = tokio::time::interval_at(start + interval, interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            ticker.tick().await;
            let now = Instant::now();
            let line = console::progress_line(
                &console::clock(SystemTime::now()),
                shared.counters.snapshot(),
                now.duration_since(shared.run_start),
                remaining(now),
            );
            shared.console.line(&line);
        }
    }
}

fn banner(config: &Config) -> Vec<String> {
    let mut lines = vec![RULE.to_owned()];
    match &config.workload {
        Workload::PdConcurrent(pd) => {
            lines.push("   P/D Disaggregation Concurrent Traffic Generator".to_owned());
            lines.push(RULE.to_owned());
            lines.push(format!("Endpoint:     {}", config.endpoint));
            lines.push(format!("Model:        {}", config.model));
            lines.push(format!("Workers:      {}", pd.workers));
            if let Some(duration) = config.limit.duration {
                lines.push(format!(
                    "Duration:     {} minutes",
                    trim_float(duration.as_secs_f64() / 60.0)
                ));
            }
            let sizes = config.prompt_sizes;
            lines.push(format!(
                "Prompts:      short {} / medium {} / long {} / very long {} tokens",
                sizes.short, sizes.medium, sizes.long, sizes.very_long
            ));
            lines.push(String::new());
            lines.push("This run creates sustained concurrent load to showcase:".to_owned());
            lines.push("  ✓ True TTFT vs vLLM TTFT gap (coordinator view vs instance)".to_owned());
            lines.push(
                "  ✓ Prefill/Decode stage separation and P/D coordination overhead".to_owned(),
            );
            lines.push(
                "  ✓ NIXL KV cache transfer metrics (prefill→decode transfer time/size)".to_owned(),
            );
            lines.push("  ✓ Impact of varied ISL/OSL ratios on P/D performance".to_owned());
            lines.push("  ✓ Queueing behavior under concurrent load".to_owned());
        }
        Workload::Mix(mix) => {
            lines.push(format!("   load-gen scenario: {}", mix.name));
            lines.push(RULE.to_owned());
            lines.push(format!("Endpoint:     {}", config.endpoint));
            lines.push(format!("Model:        {}", config.model));
            let load = match &mix.load {
                Load::Closed(closed) => format!("closed loop, {} workers", closed.workers),
                Load::Open(open) => format!(
                    "open loop, {:?} arrivals, {} stage(s) starting at {} req/s",
                    open.arrival,
                    open.stages.len(),
                    open.stages.first().map_or(0.0, |s| s.rate)
                ),
            };
            lines.push(format!("Load:         {load}"));
            lines.push(format!("Prompts:      {}", mix.prompt.label()));
            if let Some(duration) = config.limit.duration {
                lines.push(format!(
                    "Duration:     {}s",
                    trim_float(duration.as_secs_f64())
                ));
            }
            if let Some(requests) = config.limit.requests {
                lines.push(format!("Requests:     {requests}"));
            }
        }
    }
    lines.push(String::new());
    lines.push(RULE.to_owned());
    lines.push(String::new());
    lines
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

fn write_outputs(config: &Config, report: &Report, console: &Console) -> Result<(), Error> {
    let write = |path: &std::path::Path, content: &[u8]| {
        std::fs::write(path, content).map_err(|source| Error::Output {
            path: path.display().to_string(),
            source,
        })
    };
    if let Some(path) = &config.outputs.summary_json {
        let mut json = serde_json::to_vec_pretty(report).unwrap_or_default();
        json.push(b'\n');
        write(path, &json)?;
        console.line(&format!("Summary JSON: {}", path.display()));
    }
    if let Some(path) = &config.outputs.html {
        write(path, html::render(report).as_bytes())?;
        console.line(&format!("HTML report:  {}", path.display()));
    }
    if let Some(path) = &config.outputs.jsonl {
        console.line(&format!("Requests:     {} (JSON lines)", path.display()));
    }
    Ok(())
}
