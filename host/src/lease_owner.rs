//! Who holds a lease (a job's, the scheduler's): this process, named so that
//! another process on the same machine can prove it dead and take over at
//! once, instead of waiting out the lease (a `serve` restarted after a crash
//! would otherwise sit idle for the lease's length).
//!
//! A name is `inlet/<host>/<pid>/<start>/<machine>`. On Linux `<start>` is
//! the process's start time in clock ticks since boot (from `/proc`), and
//! `<machine>` the boot id with the PID namespace: a PID is only meaningful
//! in the same namespace of the same boot, and the start time tells a reused
//! PID from the process that held it. Elsewhere there is no `<machine>`, and
//! such names are never judged dead: their jobs wait for the lease.

use std::sync::OnceLock;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseOwner {
    host: String,
    pid: u32,
    start: u64,
    machine: Option<String>,
}

impl LeaseOwner {
    /// This process. The same all its life.
    pub fn this_process() -> &'static LeaseOwner {
        static OWNER: OnceLock<LeaseOwner> = OnceLock::new();
        OWNER.get_or_init(|| {
            let host = std::fs::read_to_string("/etc/hostname")
                .map(|h| h.trim().replace('/', "-"))
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "host".into());
            let pid = std::process::id();
            match (linux::start_ticks(pid), linux::machine()) {
                (Ok(start), Some(machine)) => LeaseOwner { host, pid, start, machine: Some(machine) },
                _ => {
                    let started =
                        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                    LeaseOwner { host, pid, start: started.as_micros() as u64, machine: None }
                }
            }
        })
    }

    /// A name read from the database; `None` for names this version does not
    /// write (older versions', tests' own).
    pub fn parse(name: &str) -> Option<LeaseOwner> {
        let mut parts = name.strip_prefix("inlet/")?.split('/');
        let owner = LeaseOwner {
            host: parts.next()?.to_string(),
            pid: parts.next()?.parse().ok()?,
            start: parts.next()?.parse().ok()?,
            machine: parts.next().filter(|m| !m.is_empty()).map(str::to_string),
        };
        parts.next().is_none().then_some(owner)
    }

    /// Whether this names a process of this machine that has ended: its PID
    /// is gone, or now belongs to a process that started at another time.
    /// This process never has, whatever `/proc` answers.
    pub fn is_gone(&self) -> bool {
        let here = LeaseOwner::this_process();
        // The boot and PID namespace name the PID space; the host name adds nothing.
        if self == here || self.machine.is_none() || self.machine != here.machine {
            return false;
        }
        ended(self.start, linux::start_ticks(self.pid))
    }
}

/// Whether a process that started at `start` has ended, given what reading
/// its PID's start time gave. Only a PID that no longer exists, or that
/// started at another time, proves it: a read that failed otherwise (out of
/// file descriptors, say) proves nothing, and judging a live holder ended
/// would run its jobs twice at once. (Under `hidepid`, another user's
/// processes look gone: run inlet's processes as one user.)
fn ended(start: u64, read: std::io::Result<u64>) -> bool {
    match read {
        Ok(started) => started != start,
        Err(error) => error.kind() == std::io::ErrorKind::NotFound,
    }
}

impl std::fmt::Display for LeaseOwner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let machine = self.machine.as_deref().unwrap_or_default();
        write!(f, "inlet/{}/{}/{}/{machine}", self.host, self.pid, self.start)
    }
}

mod linux {
    /// When process `pid` started, in clock ticks since boot: field 22 of
    /// `/proc/<pid>/stat`, counted after the command name (which may hold
    /// spaces and parentheses).
    pub fn start_ticks(pid: u32) -> std::io::Result<u64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        let unreadable = || std::io::Error::new(std::io::ErrorKind::InvalidData, format!("/proc/{pid}/stat: {stat}"));
        let after_name = &stat[stat.rfind(')').ok_or_else(unreadable)? + 1..];
        after_name.split_whitespace().nth(19).and_then(|ticks| ticks.parse().ok()).ok_or_else(unreadable)
    }

    /// This boot of this kernel, and this PID namespace within it.
    pub fn machine() -> Option<String> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        let namespace = namespace.to_str()?.strip_prefix("pid:[")?.strip_suffix(']')?.to_string();
        Some(format!("{}-{namespace}", boot.trim().replace('-', "")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_its_name_reads_back() {
        let me = LeaseOwner::this_process();
        assert_eq!(LeaseOwner::parse(&me.to_string()).as_ref(), Some(me));
        assert!(!me.is_gone());
    }

    #[test]
    fn a_process_that_ended_is_gone_and_a_reused_pid_is_told_apart() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let pid = child.id();
        let start = linux::start_ticks(pid).expect("a running child's start time");
        child.kill().unwrap();
        child.wait().unwrap();
        let me = LeaseOwner::this_process();
        let ended = LeaseOwner { pid, start, ..me.clone() };
        assert!(ended.is_gone());
        let reused = LeaseOwner { start: me.start + 1, ..me.clone() };
        assert!(reused.is_gone(), "this PID, another start time: the holder ended and the PID was reused");
        let elsewhere = LeaseOwner { machine: Some("another-boot".into()), pid, start, ..me.clone() };
        assert!(!elsewhere.is_gone(), "a process of another machine is never judged from here");
    }

    /// A read that failed for another reason than a PID that no longer
    /// exists (out of file descriptors, no permission) proves nothing: a
    /// holder judged ended on it would have its jobs rescued and run twice.
    #[test]
    fn only_a_missing_pid_or_another_start_time_proves_a_process_ended() {
        use std::io::{Error, ErrorKind};
        assert!(!ended(7, Ok(7)));
        assert!(ended(7, Ok(8)), "the PID was reused");
        assert!(ended(7, Err(Error::from(ErrorKind::NotFound))), "no such PID");
        assert!(!ended(7, Err(Error::from_raw_os_error(24))), "EMFILE: too many open files");
        assert!(!ended(7, Err(Error::from(ErrorKind::PermissionDenied))));
        assert!(!ended(7, Err(Error::from(ErrorKind::InvalidData))), "a stat line not understood");
    }

    #[test]
    fn names_of_other_versions_and_tests_are_not_parsed() {
        for name in ["inlet-host-12-abc", "another-worker", "inlet/host/12", "inlet/host/x/3/m", "inlet/h/1/2/m/extra"]
        {
            assert_eq!(LeaseOwner::parse(name), None, "{name}");
        }
    }
}
