//! A process's CPU time and resident memory, read from Linux's `/proc`, so that
//! a benchmark can charge the server's own CPU to each request it answered.
//! Systems without `/proc` give `None`, printed as "n/a".

use std::time::Duration;

/// Clock ticks per second of the times in `/proc/<pid>/stat`. Linux reports
/// them in USER_HZ, which is 100 on the architectures it runs on in practice;
/// asking `sysconf(_SC_CLK_TCK)` would add the libc crate for one constant.
const TICKS_PER_SEC: u64 = 100;

/// User plus system CPU time `pid` has used so far.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    parse_cpu_time(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// User plus system CPU time this process has used so far.
pub fn own_cpu_time() -> Option<Duration> {
    parse_cpu_time(&std::fs::read_to_string("/proc/self/stat").ok()?)
}

/// Resident memory of `pid` now (`VmRSS`), in bytes.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    status_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmRSS:",
    )
    .map(|kib| kib * 1024)
}

/// Peak resident memory of `pid` so far (`VmHWM`), in bytes.
pub fn peak_resident_bytes(pid: u32) -> Option<u64> {
    status_kib(
        &std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        "VmHWM:",
    )
    .map(|kib| kib * 1024)
}

/// `utime + stime` from a `/proc/<pid>/stat` line. The command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted after the
/// last `)`: state is the first there, utime the 12th, stime the 13th.
fn parse_cpu_time(stat: &str) -> Option<Duration> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    let ticks = utime + stime;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SEC))
}

/// The `kB` figure of line `key` in a `/proc/<pid>/status` text.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Bytes as MiB for tables, or "n/a".
pub fn mib(bytes: Option<u64>) -> String {
    match bytes {
        Some(b) => format!("{} MiB", crate::number::grouped(b / (1024 * 1024))),
        None => "n/a".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_counts_fields_after_the_command_name() {
        let stat = "4242 (tephra (x) y) S 1 4242 4242 0 -1 4194560 5000 0 0 0 \
                    250 130 0 0 20 0 7 0 100 1000000 2000 18446744073709551615";
        assert_eq!(parse_cpu_time(stat), Some(Duration::from_millis(3800)));
        assert_eq!(parse_cpu_time("4242 (tephra) S 1"), None);
    }

    #[test]
    fn status_lines_in_kib() {
        let status = "Name:\ttephra\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(102_400));
        assert_eq!(status_kib(status, "VmHWM:"), Some(204_800));
        assert_eq!(status_kib(status, "VmSwap:"), None);
        assert_eq!(mib(Some(100 * 1024 * 1024)), "100 MiB");
        assert_eq!(mib(None), "n/a");
    }

    #[test]
    fn this_process_has_figures_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(own_cpu_time().is_some());
            assert!(resident_bytes(std::process::id()).unwrap() > 0);
        }
    }
}
