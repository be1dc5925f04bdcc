//! SSRF protection: the prefill target named by the client-visible `x-prefiller-host-port`
//! header must be one of the pool's pods, so a client cannot make the sidecar call an
//! arbitrary address.
//!
//! Entries are `host` (any port, as upstream's pool allow-list) or `host:port` (that port
//! only). They come from `--allowed-prefill-hosts`/`PD_PROXY_ALLOWED_PREFILL_HOSTS`, from a
//! pool file (one endpoint per line, `#` comments) re-read when its contents change, and from
//! the watched `InferencePool` (`--inference-pool`): the IPs of its ready pods, as upstream.
//! Secure by default: protection on and no entries means no prefill target is allowed.

#[cfg(test)]
mod tests;

use std::{collections::HashSet, path::PathBuf, sync::Arc, time::Duration};

use parking_lot::RwLock;

use crate::config::SsrfConfig;

/// The verdict on one prefill target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Allowed,
    /// Not in the allow-list.
    Denied,
    /// Not a `host:port`.
    Malformed,
}

#[derive(Debug, Default, PartialEq, Eq)]
struct Entries {
    any_port: HashSet<String>,
    exact: HashSet<(String, u16)>,
}

impl Entries {
    fn from_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Entries {
        let mut entries = Entries::default();
        for line in lines {
            let line = line.split('#').next().unwrap_or_default().trim();
            if line.is_empty() {
                continue;
            }
            let line = strip_scheme(line);
            match split_host_port(line) {
                Some((host, port)) => {
                    entries.exact.insert((host, port));
                }
                None => {
                    entries
                        .any_port
                        .insert(line.trim_matches(['[', ']']).to_ascii_lowercase());
                }
            }
        }
        entries
    }

    fn len(&self) -> usize {
        self.any_port.len() + self.exact.len()
    }
}

/// The allow-list of prefill targets.
#[derive(Debug)]
pub struct AllowList {
    enabled: bool,
    static_lines: Vec<String>,
    /// The pool file's contents.
    file: RwLock<String>,
    /// The watched InferencePool's pod IPs (any port, as upstream).
    pool_hosts: RwLock<Vec<String>>,
    entries: RwLock<Entries>,
}

impl AllowList {
    /// Builds the list from the static entries and, when configured, the pool file's current
    /// contents (an unreadable file counts as empty and is logged).
    pub fn new(config: &SsrfConfig) -> AllowList {
        let list = AllowList {
            enabled: config.enabled,
            static_lines: config.allowed_hosts.clone(),
            file: RwLock::new(String::new()),
            pool_hosts: RwLock::new(Vec::new()),
            entries: RwLock::new(Entries::default()),
        };
        let file = config.pool_file.as_ref().map(read_pool_file);
        list.replace(file.as_deref());
        list
    }

    fn replace(&self, pool_file: Option<&str>) -> usize {
        *self.file.write() = pool_file.unwrap_or_default().to_owned();
        self.rebuild()
    }

    /// Replaces the hosts learned from the InferencePool; returns the entry count.
    pub fn set_pool_hosts(&self, hosts: Vec<String>) -> usize {
        *self.pool_hosts.write() = hosts;
        self.rebuild()
    }

    fn rebuild(&self) -> usize {
        let file = self.file.read();
        let pool_hosts = self.pool_hosts.read();
        let lines = self
            .static_lines
            .iter()
            .map(String::as_str)
            .chain(file.lines())
            .chain(pool_hosts.iter().map(String::as_str));
        let entries = Entries::from_lines(lines);
        let len = entries.len();
        *self.entries.write() = entries;
        len
    }

    /// Whether targets are checked at all.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Number of entries (static and from the pool).
    pub fn len(&self) -> usize {
        self.entries.read().len()
    }

    /// Whether no entry is configured.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Checks a `host:port` target (a leading `http://` or `https://` is tolerated).
    pub fn check(&self, target: &str) -> Verdict {
        let Some((host, port)) = split_host_port(strip_scheme(target)) else {
            return Verdict::Malformed;
        };
        if !self.enabled {
            return Verdict::Allowed;
        }
        let entries = self.entries.read();
        if entries.any_port.contains(&host) || entries.exact.contains(&(host, port)) {
            Verdict::Allowed
        } else {
            Verdict::Denied
        }
    }

    /// Re-reads `path` every `every` while the returned task runs.
    pub fn watch(self: &Arc<Self>, path: PathBuf, every: Duration) -> tokio::task::JoinHandle<()> {
        let list = self.clone();
        tokio::spawn(async move {
            let mut last = read_pool_file(&path);
            let mut ticker = tokio::time::interval(every.max(Duration::from_millis(10)));
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let contents = tokio::fs::read_to_string(&path).await.unwrap_or_default();
                if contents != last {
                    let len = list.replace(Some(&contents));
                    tracing::info!(path = %path.display(), entries = len, "Pool file changed; allow-list reloaded.");
                    last = contents;
                }
            }
        })
    }
}

fn read_pool_file(path: &PathBuf) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|error| {
        tracing::warn!(path = %path.display(), %error, "Pool file unreadable; treating it as empty.");
        String::new()
    })
}

/// Drops a leading `http://` or `https://` (the 2025 README's header carried one).
pub fn strip_scheme(target: &str) -> &str {
    target
        .strip_prefix("http://")
        .or_else(|| target.strip_prefix("https://"))
        .unwrap_or(target)
        .trim_end_matches('/')
}

/// `host:port` or `[v6]:port`, host lowercased; `None` without a valid port.
pub fn split_host_port(target: &str) -> Option<(String, u16)> {
    let (host, port) = if let Some(rest) = target.strip_prefix('[') {
        let (host, rest) = rest.split_once(']')?;
        (host, rest.strip_prefix(':')?)
    } else {
        let (host, port) = target.rsplit_once(':')?;
        if host.contains(':') {
            return None;
        }
        (host, port)
    };
    if host.is_empty()
        || !host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
    {
        return None;
    }
    let port: u16 = port.parse().ok().filter(|port| *port != 0)?;
    Some((host.to_ascii_lowercase(), port))
}
