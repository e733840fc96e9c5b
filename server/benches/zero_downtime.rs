//! The zero-downtime benchmark: for each router (real HAProxy, real nginx, the embedded
//! proxy), blue-green, rolling and canary campaigns v1 → v2, 20 canaries aborted at 25 %, a
//! canary whose v2 starts failing, and the in-place-restart baseline, each under 200 req/s
//! from 8 keep-alive clients. Rewrites the zero-downtime section of BENCHMARKS.md.
//!
//! `cargo bench -p server --bench zero_downtime` (ABORTS=n changes the abort count).

use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use server::testbed::Tally;
use server::testbed::bench::{BenchServer, percentile, write_section};
use server::testbed::scenarios::{self, Api, Bed, RouterKind};

fn cell(t: &Tally) -> String {
    let retried = if t.retried > 0 { format!(", {} retried", t.retried) } else { String::new() };
    format!("**{}** of {}{retried}", t.failed, t.sent)
}

/// The gate-trip figures of 2026-11-22 (gates judged only in their gate step, after the bake).
fn before_continuous(kind: RouterKind) -> &'static str {
    match kind {
        RouterKind::Haproxy => "5.02 s, 251 of 1055 failed",
        RouterKind::Nginx => "6.18 s, 301 of 1317 failed",
        RouterKind::Embedded => "4.98 s, 249 of 1048 failed",
    }
}

/// How far into the bake v2 starts failing in the mid-bake gate trip.
const MID_BAKE: Duration = Duration::from_secs(6);

fn add(a: &mut Tally, b: &Tally) {
    a.sent += b.sent;
    a.failed += b.failed;
    a.retried += b.retried;
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let aborts: usize = std::env::var("ABORTS").ok().and_then(|v| v.parse().ok()).unwrap_or(20);
    let dir = tempfile::tempdir()?;
    let srv = BenchServer::start(dir.path(), &[]).await?;
    let registry = srv.registry.clone();
    let api = Api::new(srv.url.clone(), srv.token.clone());
    let exe = Path::new(env!("CARGO_BIN_EXE_switchyard"));
    let started = Instant::now();

    let mut rows = String::new();
    let mut abort_rows = String::new();
    let mut gate_rows = String::new();
    for kind in RouterKind::ALL {
        eprintln!("== {}", kind.label());
        let mut cells = Vec::new();
        for (label, strategy) in [
            ("blue-green", scenarios::blue_green()),
            ("rolling", scenarios::rolling()),
            ("canary", scenarios::canary(&[(25, 2), (100, 1)])),
        ] {
            let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await?;
            let r = scenarios::full_campaign(&api, &bed, label, strategy).await?;
            eprintln!(
                "   {label}: {:?} in {:.1} s, afterwards all v2: {}",
                r.tally, r.secs, r.after_ok
            );
            cells.push(format!(
                "{} ({:.1} s){}",
                cell(&r.tally),
                r.secs,
                if r.after_ok { "" } else { " ⚠ not all v2 after" }
            ));
        }
        let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await?;
        let mut secs = Vec::new();
        let mut total = Tally::default();
        let mut all_v1 = true;
        for i in 0..aborts {
            let r = scenarios::canary_abort(&api, &bed, &format!("abort-{i}")).await?;
            secs.push(r.rollback_secs);
            add(&mut total, &r.tally);
            all_v1 &= r.after_ok;
        }
        secs.sort_by(f64::total_cmp);
        eprintln!(
            "   {aborts} aborts: {total:?}, rollback p50 {:.3} p99 {:.3}",
            percentile(&secs, 0.5),
            percentile(&secs, 0.99)
        );
        cells.push(cell(&total));
        for all_at_once in [false, true] {
            let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await?;
            let base = scenarios::in_place_restart(&bed, &registry, all_at_once).await?;
            eprintln!("   in-place restart (all at once: {all_at_once}): {:?}", base.tally);
            cells.push(cell(&base.tally));
        }
        let _ = writeln!(rows, "| {} | {} |", kind.label(), cells.join(" | "));
        let _ = writeln!(
            abort_rows,
            "| {} | {aborts} | {:.3} s | {:.3} s | {:.3} s | {:.3} s | {} | {} |",
            kind.label(),
            percentile(&secs, 0.0),
            percentile(&secs, 0.5),
            percentile(&secs, 0.99),
            secs.last().copied().unwrap_or(f64::NAN),
            cell(&total),
            if all_v1 { "yes" } else { "**no**" }
        );
        let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await?;
        let g = scenarios::gate_trip(&api, &bed, "gate-trip", &registry, 120, MID_BAKE).await?;
        eprintln!("   gate trip mid-bake: {g:?}");
        let bed = Bed::start(kind, dir.path(), exe, &api, &registry).await?;
        let s = scenarios::gate_trip(&api, &bed, "gate-trip-start", &registry, 120, Duration::ZERO)
            .await?;
        eprintln!("   gate trip as the stage begins: {s:?}");
        let _ = writeln!(
            gate_rows,
            "| {} | {:.2} s | {:.2} s | {} of {} | {:.2} s / {:.2} s, {} of {} | {} | {} |",
            kind.label(),
            g.secs_to_verdict,
            g.secs_to_zero,
            g.failed,
            g.sent,
            s.secs_to_verdict,
            s.secs_to_zero,
            s.failed,
            s.sent,
            if g.after_ok && s.after_ok { "yes" } else { "**no**" },
            before_continuous(kind),
        );
    }
    srv.stop().await;

    let section = format!(
        "<!-- zero-downtime:begin (written by `cargo bench -p server --bench zero_downtime`) -->\n\
## Zero downtime behind real routers\n\n\
Written by `cargo bench -p server --bench zero_downtime` on {date}, one run of {mins:.1} min, on the\n\
project's machine (2 cores, 24 GiB, Debian 12; release build; HAProxy 2.6.12 and nginx 1.22.1 from\n\
Debian, started by the benchmark on loopback). Each scenario: four `demo-service` v1 instances\n\
behind the router, a load of {rps} requests/s from {clients} keep-alive clients for the scenario's\n\
whole duration, campaigns driven through Switchyard's API and engine. A request counts as failed\n\
when it got no 200 (including connection errors and timeouts). Like a browser, the load client\n\
retries a request once when a kept-alive connection was closed before any answer; such requests\n\
are shown as *retried* (they happen on nginx reloads, when old workers close idle connections).\n\n\
### Failed requests per strategy × router (failed of sent)\n\n\
| router | blue-green | rolling (batch 2) | canary 25 % → 100 % | canary aborted at 25 %, all {aborts} runs | baseline: in-place restart, one instance after another | **baseline: in-place restart, all four at once** |\n\
|---|---|---|---|---|---|---|\n{rows}\n\
The baselines change nothing on the router: each instance is killed and v2 started on the same\n\
port. One at a time, the routers' own retries (HAProxy `retries`/`redispatch`, nginx\n\
`proxy_next_upstream`, the embedded router's retry of idempotent requests) hide the gap from\n\
these GET requests; all at once, nothing can.\n\n\
### Abort → all traffic on the stable release\n\n\
Engine-measured `rollback_secs`: from the abort being accepted to the router reading back 100 % on\n\
v1, over {aborts} canaries aborted once v2 had answered users at 25 %.\n\n\
| router | aborts | min | p50 | p99 | max | failed requests (all aborts) | every answer from v1 afterwards |\n\
|---|---|---|---|---|---|---|---|\n{abort_rows}\n\
### Gate trip: v2 starts failing at 25 %\n\n\
Every v2 instance is told to answer 500 (and fail its health check), {mid} s into a 120 s bake at\n\
25 % (*mid-bake*: the gate's 4 s window already holds healthy samples of the stage), or as soon\n\
as v2 has answered a user (*as the stage begins*: the gate first needs its 2 samples of the\n\
stage, one sampling round more). The gates watch on every sampling round (1 s), bakes included:\n\
the gate (probe success ≥ 90 %, error rate ≤ 5 %, 4 s window, 2 samples, 2 consecutive\n\
failures) trips and the automatic rollback takes v2 out. *Verdict*: from the failure being\n\
switched on to the campaign saying it rolls back (polled every 50 ms). *0 % on v2*: to the last\n\
answer any user got from v2. Failed: user requests that failed meanwhile (sent to v2 while it\n\
failed; zero is impossible by construction). *Before*: the same scenario on 2026-11-22, when\n\
gates were judged only in their gate step after a 2 s bake.\n\n\
| router | mid-bake: failure → verdict | mid-bake: failure → 0 % on v2 | mid-bake: failed meanwhile | as the stage begins: verdict / 0 % on v2, failed | every answer from v1 afterwards | before (gate step only) |\n\
|---|---|---|---|---|---|---|\n{gate_rows}\n\
<!-- zero-downtime:end -->",
        date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        mins = started.elapsed().as_secs_f64() / 60.0,
        rps = scenarios::RPS,
        clients = scenarios::CLIENTS,
        mid = MID_BAKE.as_secs(),
    );
    println!("{section}");
    write_section("zero-downtime", &section)?;
    Ok(())
}
