//! What one attack did to the good clients and to the gateway's memory, against the goals of
//! issue 12: success ≥ 99.9 %, p99 within 2× of the run without the attack, and (item 3) a peak
//! RSS under 300 MB.

use std::time::Duration;

use crate::good::Stats;

const SUCCESS_GOAL_PERCENT: f64 = 99.9;
const P99_GOAL_FACTOR: f64 = 2.0;
const RSS_GOAL_MB: f64 = 300.0;

/// The result of one attack phase.
pub(crate) struct Outcome {
    pub(crate) name: String,
    pub(crate) item: u8,
    pub(crate) window: Duration,
    /// The good clients alone; `None` when the phase could not run.
    pub(crate) calm: Option<Stats>,
    /// The good clients next to the attack.
    pub(crate) attacked: Option<Stats>,
    pub(crate) rss_before_kib: u64,
    pub(crate) rss_sampled_peak_kib: u64,
    pub(crate) rss_hwm_kib: u64,
    pub(crate) rss_after_kib: u64,
    /// What the attacker saw, and anything unusual (the gateway exiting, its stderr).
    pub(crate) notes: Vec<String>,
}

impl Outcome {
    pub(crate) fn new(name: String, item: u8, window: Duration) -> Outcome {
        Outcome {
            name,
            item,
            window,
            calm: None,
            attacked: None,
            rss_before_kib: 0,
            rss_sampled_peak_kib: 0,
            rss_hwm_kib: 0,
            rss_after_kib: 0,
            notes: Vec::new(),
        }
    }

    /// Peak RSS in MB: the larger of `VmHWM` and the sampled `VmRSS` (the process may be gone).
    fn peak_mb(&self) -> f64 {
        self.rss_hwm_kib.max(self.rss_sampled_peak_kib) as f64 * 1024.0 / 1e6
    }

    /// Each goal that applies, as (what, met).
    fn goals(&self) -> Vec<(String, bool)> {
        let (Some(calm), Some(attacked)) = (&self.calm, &self.attacked) else {
            return Vec::new();
        };
        let success = attacked.success_percent();
        let limit = calm.percentile_ms(0.99) * P99_GOAL_FACTOR;
        let p99 = attacked.percentile_ms(0.99);
        let mut goals = vec![
            (
                format!("success {success:.2} % ≥ {SUCCESS_GOAL_PERCENT} %"),
                success >= SUCCESS_GOAL_PERCENT,
            ),
            (format!("p99 {p99:.1} ms ≤ {limit:.1} ms"), p99 <= limit),
        ];
        if self.item == 3 {
            let peak = self.peak_mb();
            goals.push((
                format!("peak RSS {peak:.0} MB < {RSS_GOAL_MB:.0} MB"),
                peak < RSS_GOAL_MB,
            ));
        }
        goals
    }

    fn verdict(&self) -> &'static str {
        let goals = self.goals();
        if goals.is_empty() {
            "not run"
        } else if goals.iter().all(|(_, met)| *met) {
            "met"
        } else {
            "NOT MET"
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// The table of one attack, printed as soon as it ends.
pub(crate) fn print_phase(outcome: &Outcome) {
    println!();
    println!(
        "== {} (issue 12 item {}), attack window {:?} ==",
        outcome.name, outcome.item, outcome.window
    );
    for note in &outcome.notes {
        println!("  {note}");
    }
    println!(
        "  {:<16} {:>9} {:>9} {:>9} {:>9}  failures",
        "good clients", "requests", "success", "p50 ms", "p99 ms"
    );
    for (label, stats) in [
        ("without attack", &outcome.calm),
        ("with attack", &outcome.attacked),
    ] {
        if let Some(stats) = stats {
            println!(
                "  {:<16} {:>9} {:>8.2}% {:>9.1} {:>9.1}  {}",
                label,
                stats.requests(),
                stats.success_percent(),
                stats.percentile_ms(0.5),
                stats.percentile_ms(0.99),
                stats.failures()
            );
        }
    }
    println!(
        "  gateway RSS: {} before the attack, {} peak sampled, {} VmHWM, {} after",
        mib(outcome.rss_before_kib),
        mib(outcome.rss_sampled_peak_kib),
        mib(outcome.rss_hwm_kib),
        mib(outcome.rss_after_kib)
    );
    let goals: Vec<String> = outcome
        .goals()
        .into_iter()
        .map(|(what, met)| format!("{what}: {}", if met { "met" } else { "NOT MET" }))
        .collect();
    println!(
        "  goal: {}",
        if goals.is_empty() {
            "not run".to_owned()
        } else {
            goals.join("; ")
        }
    );
}

/// All attacks in one Markdown table, ready for benches/RESULTS.md.
pub(crate) fn print_summary(outcomes: &[Outcome]) {
    println!();
    println!(
        "| attack | item | good requests (calm / attack) | success % (calm / attack) | p50 ms (calm / attack) | p99 ms (calm / attack) | gateway peak RSS | goal |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for outcome in outcomes {
        let (Some(calm), Some(attacked)) = (&outcome.calm, &outcome.attacked) else {
            println!(
                "| {} | {} | — | — | — | — | — | not run |",
                outcome.name, outcome.item
            );
            continue;
        };
        println!(
            "| {} | {} | {} / {} | {:.2} / {:.2} | {:.1} / {:.1} | {:.1} / {:.1} | {:.0} MB | {} |",
            outcome.name,
            outcome.item,
            calm.requests(),
            attacked.requests(),
            calm.success_percent(),
            attacked.success_percent(),
            calm.percentile_ms(0.5),
            attacked.percentile_ms(0.5),
            calm.percentile_ms(0.99),
            attacked.percentile_ms(0.99),
            outcome.peak_mb(),
            outcome.verdict()
        );
    }
}
