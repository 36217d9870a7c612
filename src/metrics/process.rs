//! What the process is, read at scrape time: `tai_gateway_build_info` and the standard
//! `process_*` families Prometheus' own clients export (CPU, memory, descriptors, start time),
//! from `/proc/self` (Linux; elsewhere only the build info).

use std::fmt::Write as _;

use super::text::{header, label_text};

/// The commit the binary was built from (`build.rs` reads it from `.git`; `unknown` outside a
/// checkout).
const COMMIT: &str = match option_env!("TAI_GATEWAY_COMMIT") {
    Some(commit) => commit,
    None => "unknown",
};

/// Appends the build info and the process families.
pub fn render_process(out: &mut String) {
    let name = "tai_gateway_build_info";
    header(
        out,
        name,
        "The running build: always 1, with its version and commit as labels.",
        "gauge",
    );
    let labels = label_text(
        &[
            ("version", env!("CARGO_PKG_VERSION").to_owned()),
            ("commit", COMMIT.to_owned()),
        ],
        None,
    );
    let _ = writeln!(out, "{name}{labels} 1");
    if let Some(figures) = ProcessFigures::read() {
        figures.render(out);
    }
}

/// The process' resource figures.
struct ProcessFigures {
    cpu_seconds: f64,
    resident_bytes: u64,
    virtual_bytes: u64,
    start_time_seconds: f64,
    open_fds: u64,
    max_fds: Option<u64>,
}

impl ProcessFigures {
    /// Reads `/proc/self`; `None` where it does not exist.
    fn read() -> Option<ProcessFigures> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // Fields after the command name (which may hold spaces), from field 3 (state) on.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        let started = *START_TIME_SECONDS.get_or_init(|| {
            Some(boot_time_seconds()? + field(22)? as f64 / CLOCK_TICKS_PER_SECOND)
        });
        Some(ProcessFigures {
            cpu_seconds: (field(14)? + field(15)?) as f64 / CLOCK_TICKS_PER_SECOND,
            resident_bytes: field(24)? * PAGE_BYTES,
            virtual_bytes: field(23)?,
            start_time_seconds: started?,
            open_fds: std::fs::read_dir("/proc/self/fd").ok()?.count() as u64,
            max_fds: max_open_files(),
        })
    }

    fn render(&self, out: &mut String) {
        let families: [(&str, &str, &str, String); 5] = [
            (
                "process_cpu_seconds_total",
                "User and system CPU time spent, in seconds.",
                "counter",
                self.cpu_seconds.to_string(),
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                "gauge",
                self.resident_bytes.to_string(),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                "gauge",
                self.virtual_bytes.to_string(),
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch, in seconds.",
                "gauge",
                self.start_time_seconds.to_string(),
            ),
            (
                "process_open_fds",
                "Open file descriptors.",
                "gauge",
                self.open_fds.to_string(),
            ),
        ];
        for (name, help, kind, value) in families {
            header(out, name, help, kind);
            let _ = writeln!(out, "{name} {value}");
        }
        if let Some(max) = self.max_fds {
            header(
                out,
                "process_max_fds",
                "Limit on open file descriptors.",
                "gauge",
            );
            let _ = writeln!(out, "process_max_fds {max}");
        }
    }
}

/// `sysconf(_SC_CLK_TCK)`: 100 on every Linux the gateway runs on (the kernel's USER_HZ).
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

/// The page size `/proc/self/stat` counts resident memory in (x86-64 Linux).
const PAGE_BYTES: u64 = 4096;

/// The process' start time never changes: read once (boot time + start ticks), not per scrape.
static START_TIME_SECONDS: std::sync::OnceLock<Option<f64>> = std::sync::OnceLock::new();

/// When the machine booted (`btime` of `/proc/stat`), in seconds since the Unix epoch.
fn boot_time_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("btime "))?;
    line[6..].trim().parse::<f64>().ok()
}

/// The soft limit on open files (`Max open files` of `/proc/self/limits`).
fn max_open_files() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_build_and_process_families_are_there_with_plausible_values() {
        let mut out = String::new();
        render_process(&mut out);
        assert!(
            out.contains(&format!(
                "tai_gateway_build_info{{version=\"{}\",commit=\"",
                env!("CARGO_PKG_VERSION")
            )),
            "{out}"
        );
        let value = |name: &str| -> f64 {
            out.lines()
                .find_map(|l| l.strip_prefix(&format!("{name} ")))
                .unwrap_or_else(|| panic!("no {name} in {out}"))
                .parse()
                .expect("a number")
        };
        assert!(value("process_resident_memory_bytes") > 1e6);
        assert!(value("process_open_fds") >= 3.0);
        assert!(value("process_max_fds") >= value("process_open_fds"));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("clock")
            .as_secs_f64();
        let started = value("process_start_time_seconds");
        assert!(
            started <= now + 1.0 && started > now - 86_400.0 * 365.0,
            "{started} vs {now}"
        );
        assert!(value("process_cpu_seconds_total") >= 0.0);
    }
}
