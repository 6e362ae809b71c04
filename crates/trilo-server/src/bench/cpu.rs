//! Where the machine's CPU time went during a scenario's measured window, read from
//! `/proc` (Linux): the server process's, the load generator's (this process's), the
//! PostgreSQL backends' serving the scratch database, and the share the machine sat idle.
//! Together they tell a scenario bound by the CPU from one bound by waiting (a commit's
//! flush, a round trip), which the rate alone cannot.
//!
//! Beside each party's CPU time, the time its threads were ready to run but waited for a
//! CPU (`/proc/PID/task/TID/schedstat`): on a machine whose cores the server, the load
//! generator and PostgreSQL share, a serial writer (SQLite's committer, PostgreSQL's batch
//! backend) that waits there holds up every request behind it even while the machine has
//! idle time overall.

use std::collections::HashMap;
use std::time::Duration;

/// The unit of `/proc`'s times: fixed at 100 a second in Linux's interface to user space,
/// whatever the kernel's own tick.
const USER_HZ: u64 = 100;

/// One process's counters at one moment; each `None` where `/proc` cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Counters {
    /// CPU time, in ticks of [`USER_HZ`].
    ticks: Option<u64>,
    /// Time its threads waited for a CPU, in nanoseconds.
    waited_ns: Option<u64>,
}

impl Counters {
    /// The counters of process `pid` (`self` for this one).
    fn of(pid: &str) -> Counters {
        Counters {
            ticks: process_ticks(pid),
            waited_ns: process_waited_ns(pid),
        }
    }
}

/// The counters at one moment.
pub struct CpuSample {
    server: Counters,
    load: Counters,
    /// Each backend's counters, by process id.
    database: Option<HashMap<u32, Counters>>,
    /// Idle ticks and all ticks, over every CPU.
    machine: Option<(u64, u64)>,
}

/// What was spent between two samples.
#[derive(Debug, Default, PartialEq)]
pub struct Spent {
    pub server: Option<Duration>,
    pub load: Option<Duration>,
    /// `None` without PostgreSQL, or when its backends are not processes of this machine.
    pub database: Option<Duration>,
    /// How long each party's threads were ready to run but waited for a CPU.
    pub server_waited: Option<Duration>,
    pub load_waited: Option<Duration>,
    pub database_waited: Option<Duration>,
    /// The idle share of all CPUs' time, in percent.
    pub idle_pct: Option<f64>,
}

impl CpuSample {
    /// Reads the counters of the server process `server_pid`, of this process, of the
    /// PostgreSQL backends connected to `database` (when given) and of the machine.
    pub fn take(server_pid: u32, database: Option<&str>) -> CpuSample {
        CpuSample {
            server: Counters::of(&server_pid.to_string()),
            load: Counters::of("self"),
            database: database.map(backends_of),
            machine: std::fs::read_to_string("/proc/stat")
                .ok()
                .and_then(|stat| machine_ticks(&stat)),
        }
    }

    /// What was spent from `earlier` to this sample. A backend that started in between
    /// counts whole; one that ended in between is not counted.
    pub fn spent_since(&self, earlier: &CpuSample) -> Spent {
        let ticks = |later: Counters, before: Counters| {
            Some(duration_of(later.ticks?.saturating_sub(before.ticks?)))
        };
        let waited = |later: Counters, before: Counters| {
            Some(Duration::from_nanos(
                later.waited_ns?.saturating_sub(before.waited_ns?),
            ))
        };
        let (database, database_waited) = match (&self.database, &earlier.database) {
            (Some(later), Some(before)) if !later.is_empty() => {
                let fresh = Counters {
                    ticks: Some(0),
                    waited_ns: Some(0),
                };
                let each = || {
                    later
                        .iter()
                        .map(|(pid, now)| (*now, before.get(pid).copied().unwrap_or(fresh)))
                };
                (
                    each().map(|(now, then)| ticks(now, then)).sum(),
                    each().map(|(now, then)| waited(now, then)).sum(),
                )
            }
            _ => (None, None),
        };
        let idle_pct = match (self.machine, earlier.machine) {
            (Some((idle, total)), Some((idle_before, total_before))) if total > total_before => {
                let idle = idle.saturating_sub(idle_before) as f64;
                Some(idle * 100.0 / (total - total_before) as f64)
            }
            _ => None,
        };
        Spent {
            server: ticks(self.server, earlier.server),
            load: ticks(self.load, earlier.load),
            database,
            server_waited: waited(self.server, earlier.server),
            load_waited: waited(self.load, earlier.load),
            database_waited,
            idle_pct,
        }
    }
}

fn duration_of(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / USER_HZ)
}

/// `utime + stime` of `/proc/{pid}/stat`.
fn process_ticks(pid: &str) -> Option<u64> {
    cpu_ticks(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// `utime + stime` of a `/proc/PID/stat` line, in ticks of [`USER_HZ`]. The fields are
/// counted after the command name, which is in parentheses and may hold spaces.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace();
    // Fields 14 and 15 of the line; `after_name` starts at field 3 (the state).
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The time every thread of process `pid` has waited for a CPU, in nanoseconds: the
/// second field of each `/proc/{pid}/task/{tid}/schedstat`, summed. Unlike CPU time, a
/// thread's waits leave with it; the threads that matter here (the runtime's workers,
/// SQLite's committer, the load generator's) live as long as the run.
fn process_waited_ns(pid: &str) -> Option<u64> {
    let waits: Vec<u64> = std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|schedstat| waited_ns(&schedstat))
        .collect();
    (!waits.is_empty()).then(|| waits.iter().sum())
}

/// The run-queue wait of a `schedstat` line: time on a CPU, time waiting for one (both in
/// nanoseconds), timeslices run.
fn waited_ns(schedstat: &str) -> Option<u64> {
    let mut fields = schedstat.split_whitespace();
    let _on_cpu: u64 = fields.next()?.parse().ok()?;
    fields.next()?.parse().ok()
}

/// Idle ticks (`idle` and `iowait`) and all ticks of `/proc/stat`'s `cpu` line. `guest`
/// and `guest_nice` are left out: `user` and `nice` already hold them.
fn machine_ticks(stat: &str) -> Option<(u64, u64)> {
    let line = stat.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    let [_user, _nice, _system, idle, iowait, ..] = fields[..] else {
        return None;
    };
    Some((idle + iowait, fields.iter().sum()))
}

/// The counters of every process of this machine that is a PostgreSQL backend connected
/// to `database`, by process id.
fn backends_of(database: &str) -> HashMap<u32, Counters> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|title| is_backend_of(&String::from_utf8_lossy(&title), database))
        })
        .map(|pid| (pid, Counters::of(&pid.to_string())))
        .filter(|(_, counters)| counters.ticks.is_some())
        .collect()
}

/// Whether a process title (its `cmdline`, which a PostgreSQL backend rewrites to
/// `postgres: [cluster: ]user database host(port) state`) is a backend's on `database`.
fn is_backend_of(title: &str, database: &str) -> bool {
    title.starts_with("postgres: ")
        && title
            .split(|c: char| c.is_whitespace() || c == '\0')
            .any(|word| word == database)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_user_plus_system_time_counted_after_the_name() {
        // A name with spaces and a parenthesis must not shift the fields.
        let stat = "4242 (trilo) bench) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 56 0 0 20 0 \
                    3 0 99 1000 200 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(1234 + 56));
        assert_eq!(cpu_ticks("4242 (trilo) S 1"), None);
        assert_eq!(cpu_ticks("garbage"), None);
    }

    #[test]
    fn the_machine_is_idle_in_idle_and_iowait() {
        let stat = "cpu  100 5 50 800 40 3 2 0 7 0\ncpu0 50 2 25 400 20 1 1 0 3 0\nintr 1\n";
        // user, nice, system, idle, iowait, irq, softirq, steal; guests left out.
        assert_eq!(machine_ticks(stat), Some((840, 1000)));
        assert_eq!(machine_ticks("cpu0 1 2 3 4 5 6 7 8\n"), None);
        assert_eq!(machine_ticks("cpu  1 2 3\n"), None);
    }

    #[test]
    fn backends_are_known_by_their_database_in_the_title() {
        let database = "trilo_test_0a1b";
        for title in [
            "postgres: 15/main: postgres trilo_test_0a1b 127.0.0.1(53540) idle",
            "postgres: postgres trilo_test_0a1b [local] SELECT\0\0\0",
        ] {
            assert!(is_backend_of(title, database), "{title}");
        }
        for title in [
            "postgres: 15/main: postgres trilo_test_0a1bc 127.0.0.1(53540) idle",
            "postgres: 15/main: walwriter ",
            "/usr/bin/trilo bench --database-url postgres://h/trilo_test_0a1b",
            "trilo_test_0a1b",
        ] {
            assert!(!is_backend_of(title, database), "{title}");
        }
    }

    #[test]
    fn the_wait_for_a_cpu_is_schedstats_second_field() {
        assert_eq!(waited_ns("1234567 89012 345\n"), Some(89012));
        assert_eq!(waited_ns("1234567\n"), None);
        assert_eq!(waited_ns("x 1 2\n"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_waits_to_read() {
        // Every thread of a running process has a `schedstat` on Linux.
        let counters = Counters::of("self");
        assert!(counters.ticks.is_some());
        assert!(counters.waited_ns.is_some());
        assert_eq!(Counters::of("0"), Counters::default());
    }

    fn counters(ticks: u64, waited_ns: u64) -> Counters {
        Counters {
            ticks: Some(ticks),
            waited_ns: Some(waited_ns),
        }
    }

    #[test]
    fn what_was_spent_is_the_difference_and_new_backends_count_whole() {
        let earlier = CpuSample {
            server: counters(100, 7_000_000),
            load: counters(40, 1_000),
            database: Some(HashMap::from([
                (7, counters(10, 2_000_000)),
                (8, counters(5, 9_000_000)),
            ])),
            machine: Some((500, 1000)),
        };
        let later = CpuSample {
            server: counters(350, 10_000_000),
            load: counters(90, 501_000),
            // 8 ended; 9 started.
            database: Some(HashMap::from([
                (7, counters(30, 5_000_000)),
                (9, counters(4, 1_000_000)),
            ])),
            machine: Some((600, 1400)),
        };
        assert_eq!(
            later.spent_since(&earlier),
            Spent {
                server: Some(Duration::from_millis(2500)),
                load: Some(Duration::from_millis(500)),
                database: Some(Duration::from_millis(240)),
                server_waited: Some(Duration::from_millis(3)),
                load_waited: Some(Duration::from_micros(500)),
                database_waited: Some(Duration::from_millis(4)),
                idle_pct: Some(25.0),
            }
        );
        let unknown = CpuSample {
            server: Counters::default(),
            load: Counters::default(),
            database: Some(HashMap::new()),
            machine: None,
        };
        assert_eq!(unknown.spent_since(&earlier), Spent::default());
    }
}
