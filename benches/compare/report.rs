//! Medians of the rounds, number formatting, and the description of the machine.

use std::process::Command;

/// The values one measurement took over the rounds.
#[derive(Debug, Default, Clone)]
pub struct Samples(pub Vec<f64>);

impl Samples {
    pub fn push(&mut self, v: f64) {
        self.0.push(v);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The median (the mean of the middle two for an even count).
    pub fn median(&self) -> Option<f64> {
        let mut v = self.0.clone();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 })
    }

    fn range(&self) -> Option<(f64, f64)> {
        let min = self.0.iter().copied().min_by(f64::total_cmp)?;
        let max = self.0.iter().copied().max_by(f64::total_cmp)?;
        Some((min, max))
    }

    /// `median (min–max)` with `fmt`, or the median alone for one sample.
    pub fn cell(&self, fmt: fn(f64) -> String) -> String {
        match (self.median(), self.range()) {
            (Some(m), Some((lo, hi))) if self.0.len() > 1 => format!("{} ({}–{})", fmt(m), fmt(lo), fmt(hi)),
            (Some(m), _) => fmt(m),
            _ => "–".to_owned(),
        }
    }
}

/// `1,234,567`.
pub fn thousands(v: f64) -> String {
    let digits = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate, `1,234/s`.
pub fn rate(v: f64) -> String {
    format!("{}/s", thousands(v))
}

/// Seconds as milliseconds with three significant digits: `0.412 ms`, `41.2 ms`, `4,120 ms`.
pub fn ms(secs: f64) -> String {
    let m = secs * 1e3;
    if m < 1.0 {
        format!("{m:.3} ms")
    } else if m < 10.0 {
        format!("{m:.2} ms")
    } else if m < 100.0 {
        format!("{m:.1} ms")
    } else {
        format!("{} ms", thousands(m))
    }
}

/// Bytes as MiB: `41.3 MiB`.
pub fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

/// A plain count.
pub fn count(v: f64) -> String {
    thousands(v)
}

/// A ratio: `12.3×`, `0.42×`, `1,234×`.
pub fn times(v: f64) -> String {
    if v >= 100.0 {
        format!("{}×", thousands(v))
    } else if v >= 10.0 {
        format!("{v:.1}×")
    } else if v >= 0.01 {
        format!("{v:.2}×")
    } else {
        format!("{v:.4}×")
    }
}

/// The machine and the software, one bullet each.
pub fn machine(manifest_dir: &str, theirs: &str, load_before: &str) -> Vec<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_owned();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| m.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|kb| kb.parse::<f64>().ok()))
        .map(|kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0))
        .unwrap_or_default();
    let run = |cmd: &str, args: &[&str]| {
        Command::new(cmd)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| "unknown".to_owned())
    };
    let commit = run("git", &["-C", manifest_dir, "rev-parse", "--short", "HEAD"]);
    let dirty = !run("git", &["-C", manifest_dir, "status", "--porcelain", "--untracked-files=no"]).is_empty();
    vec![
        format!("CPU: {model}, {cores} cores (nproc); memory {mem}"),
        format!("kernel {kernel}; {}", run("sh", &["-c", ". /etc/os-release && echo \"$PRETTY_NAME\""])),
        format!(
            "ours: mta-sts {} at commit {commit}{}, built by {} ({} profile)",
            env!("CARGO_PKG_VERSION"),
            if dirty { " with local changes" } else { "" },
            run("rustc", &["-V"]),
            if cfg!(debug_assertions) { "debug" } else { "release" }
        ),
        format!("theirs: {theirs}"),
        format!("load average before the run: {load_before}; date {}", run("date", &["-u", "+%Y-%m-%d %H:%M UTC"])),
    ]
}
