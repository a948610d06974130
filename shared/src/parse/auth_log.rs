//! Authentication and privilege messages of sshd, sudo, su and their PAM modules.
//!
//! Each function is only called for messages its program logged (see [`super::normalize`]), and each pattern is
//! anchored to the whole message, so look-alikes (`Connection closed by ... [preauth]`, `Received disconnect`,
//! "Failed password" inside a sudo `COMMAND=`, `logger` text) are not classified as authentication events.
//!
//! What is produced:
//! * logins (sshd): category `authentication`, action `login`, outcome success/failure;
//! * sudo / su: category `privilege`, action `sudo` / `su`, `labels["target_user"]`;
//! * PAM session lines (`pam_unix(X:session): session opened|closed for user U`): category `session`, action
//!   `session_open` / `session_close`, outcome success — a session starting or ending is not itself an
//!   authentication, and the login that opened it was already counted by its own line;
//! * `labels["count"]` where a line stands for several failures (`PAM 2 more authentication failures`,
//!   `3 incorrect password attempts`), so detections may weigh it.

use std::collections::HashMap;
use std::sync::LazyLock;

use regex::Regex;

use super::{fill, fill_label, fill_outcome, fill_source, fill_str};
use crate::model::{Event, Outcome};

fn re(pattern: &str) -> Regex {
    Regex::new(pattern).expect("static regex compiles")
}

/// `Failed password for [invalid user ]USER from ADDR port N ssh2`, `Accepted publickey for USER ... ssh2: RSA ...`.
/// The user is greedy so a username containing ` from X port N` cannot hide the real address (the last one).
static SSHD_LOGIN: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^(Failed|Accepted) (\S+) for (invalid user )?(.*) from (\S+) port ([0-9]+)(?: ssh[0-9]?)?(?:: .*)?$")
});
/// `Invalid user USER from ADDR [port N]`.
static SSHD_INVALID: LazyLock<Regex> =
    LazyLock::new(|| re(r"^Invalid user (.*) from (\S+?)(?: port ([0-9]+))?(?: \[preauth\])?$"));
/// `error: maximum authentication attempts exceeded for [invalid user ]USER from ADDR port N ssh2 [preauth]`.
static SSHD_MAX_TRIES: LazyLock<Regex> = LazyLock::new(|| {
    re(
        r"^(?:error: )?maximum authentication attempts exceeded for (invalid user )?(.*) from (\S+) port ([0-9]+)(?: ssh[0-9]?)?(?: \[preauth\])?$",
    )
});
/// `PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=ADDR  user=USER`.
static PAM_MORE: LazyLock<Regex> = LazyLock::new(|| re(r"^PAM ([0-9]+) more authentication failures?;(.*)$"));
/// `pam_unix(SERVICE:TYPE): DETAIL`.
static PAM_UNIX: LazyLock<Regex> = LazyLock::new(|| re(r"^pam_unix\(([^:()\s]+):([a-z]+)\): (.*)$"));
/// `session opened for user root(uid=0) by alice(uid=1000)`, `session closed for user alice`.
static PAM_SESSION: LazyLock<Regex> = LazyLock::new(|| {
    re(r"^session (opened|closed) for user ([^\s(]+)(?:\(uid=[0-9]+\))?(?: by ([^\s(]*)(?:\(uid=[0-9]+\))?)?\s*$")
});
/// sudo: `USER : [REASON ; ]TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=/bin/bash`.
static SUDO: LazyLock<Regex> = LazyLock::new(|| re(r"^(\S+) : (.+)$"));
static SUDO_COUNT: LazyLock<Regex> = LazyLock::new(|| re(r"^([0-9]+) incorrect password attempts?$"));
/// su: `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`.
static SU_TO: LazyLock<Regex> = LazyLock::new(|| re(r"^(FAILED SU )?\(to (\S+)\) (\S+) on (\S+)$"));
/// su: `Successful su for root by alice`, `FAILED su for root by alice`.
static SU_FOR: LazyLock<Regex> = LazyLock::new(|| re(r"^(Successful|FAILED) su for (\S+) by (\S+)$"));
/// Old su: `+ pts/0 alice:root` (success), `- pts/0 alice:root` (failure).
static SU_OLD: LazyLock<Regex> = LazyLock::new(|| re(r"^([+-]) (\S+) ([^\s:]+):(\S+)$"));

/// What a PAM auth failure means for the program that logged it.
#[derive(Clone, Copy)]
enum PamKind {
    Login,
    Sudo,
    Su,
}

pub(crate) fn sshd(e: &mut Event, message: &str) {
    let m = message.trim();
    if let Some(c) = SSHD_LOGIN.captures(m) {
        let outcome = if &c[1] == "Accepted" { Outcome::Success } else { Outcome::Failure };
        login(e, outcome);
        fill_label(e, "auth_method", &c[2]);
        if c.get(3).is_some() {
            fill_label(e, "invalid_user", "true");
        }
        fill_str(&mut e.user, &c[4]);
        fill_source(e, &c[5]);
        fill(&mut e.src_port, c[6].parse().ok());
    } else if let Some(c) = SSHD_INVALID.captures(m) {
        // The probe of an account that does not exist: a failed login attempt in itself.
        login(e, Outcome::Failure);
        fill_label(e, "invalid_user", "true");
        fill_str(&mut e.user, &c[1]);
        fill_source(e, &c[2]);
        fill(&mut e.src_port, c.get(3).and_then(|p| p.as_str().parse().ok()));
    } else if let Some(c) = SSHD_MAX_TRIES.captures(m) {
        login(e, Outcome::Failure);
        fill_label(e, "reason", "maximum authentication attempts exceeded");
        if c.get(1).is_some() {
            fill_label(e, "invalid_user", "true");
        }
        fill_str(&mut e.user, &c[2]);
        fill_source(e, &c[3]);
        fill(&mut e.src_port, c[4].parse().ok());
    } else if let Some(c) = PAM_MORE.captures(m) {
        login(e, Outcome::Failure);
        fill_label(e, "count", &c[1]);
        let kv = pam_kv(&c[2]);
        fill_str(&mut e.user, kv.get("user").copied().unwrap_or(""));
        fill_source(e, kv.get("rhost").copied().unwrap_or(""));
    } else {
        pam_unix(e, m, "sshd", PamKind::Login);
    }
}

pub(crate) fn sudo(e: &mut Event, message: &str) {
    let m = message.trim();
    if pam_unix(e, m, "sudo", PamKind::Sudo) {
        return;
    }
    let Some(c) = SUDO.captures(m) else { return };
    let user = c.get(1).map_or("", |u| u.as_str());
    let rest = c.get(2).map_or("", |r| r.as_str());
    // COMMAND= is last and may itself contain " ; ": everything after the first COMMAND= that starts a field.
    let (head, command) = match rest.strip_prefix("COMMAND=") {
        Some(cmd) => ("", Some(cmd)),
        None => match rest.find("; COMMAND=") {
            Some(p) => (&rest[..p], Some(&rest[p + "; COMMAND=".len()..])),
            None => (rest, None),
        },
    };
    let mut fields: HashMap<&str, &str> = HashMap::new();
    let mut reason = None;
    for part in head.split(" ; ").map(str::trim).filter(|p| !p.is_empty()) {
        let part = part.trim_end_matches(';').trim();
        match part.split_once('=') {
            Some((k, v)) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_uppercase() || b == b'_') => {
                fields.insert(k, v);
            }
            _ if reason.is_none() && fields.is_empty() => reason = Some(part),
            _ => {}
        }
    }
    if command.is_none() && !fields.contains_key("TTY") && !fields.contains_key("USER") {
        return; // e.g. "unable to resolve host": not a sudo decision.
    }
    fill_str(&mut e.category, "privilege");
    fill_str(&mut e.action, "sudo");
    fill_str(&mut e.user, user);
    fill_label(e, "target_user", fields.get("USER").copied().unwrap_or(""));
    fill_label(e, "tty", fields.get("TTY").copied().unwrap_or(""));
    fill_label(e, "pwd", fields.get("PWD").copied().unwrap_or(""));
    fill_label(e, "command", command.map_or("", str::trim));
    match reason {
        // "3 incorrect password attempts", "user NOT in sudoers", "command not allowed", "a password is required"
        Some(reason) => {
            fill_outcome(e, Outcome::Failure);
            fill_label(e, "reason", reason);
            if let Some(n) = SUDO_COUNT.captures(reason) {
                fill_label(e, "count", &n[1]);
            }
        }
        None => fill_outcome(e, Outcome::Success),
    }
}

pub(crate) fn su(e: &mut Event, message: &str) {
    let m = message.trim();
    let (failed, target, user, tty) = if let Some(c) = SU_TO.captures(m) {
        (c.get(1).is_some(), c[2].to_string(), c[3].to_string(), Some(c[4].to_string()))
    } else if let Some(c) = SU_FOR.captures(m) {
        (&c[1] == "FAILED", c[2].to_string(), c[3].to_string(), None)
    } else if let Some(c) = SU_OLD.captures(m) {
        (&c[1] == "-", c[4].to_string(), c[3].to_string(), Some(c[2].to_string()))
    } else {
        pam_unix(e, m, "su", PamKind::Su);
        return;
    };
    privilege(e, "su", if failed { Outcome::Failure } else { Outcome::Success });
    fill_str(&mut e.user, &user);
    fill_label(e, "target_user", &target);
    if let Some(tty) = tty {
        fill_label(e, "tty", &tty);
    }
}

/// `pam_unix(SERVICE:auth|session): ...` when SERVICE is the logging program's own (`su-l` counts as `su`).
/// Returns whether the line was classified.
fn pam_unix(e: &mut Event, m: &str, service: &str, kind: PamKind) -> bool {
    let Some(c) = PAM_UNIX.captures(m) else { return false };
    let svc = &c[1];
    let own = svc == service || svc.strip_prefix(service).is_some_and(|rest| rest.starts_with('-'));
    if !own {
        return false;
    }
    let detail = c.get(3).map_or("", |d| d.as_str()).trim();
    match &c[2] {
        "auth" => {
            let Some(kv) = detail.strip_prefix("authentication failure;") else { return false };
            let kv = pam_kv(kv);
            let get = |k: &str| kv.get(k).copied().unwrap_or("");
            match kind {
                PamKind::Login => {
                    login(e, Outcome::Failure);
                    fill_str(&mut e.user, get("user"));
                    fill_source(e, get("rhost"));
                }
                PamKind::Sudo => {
                    // user= is the account whose password was asked: the invoker (ruser), not the target.
                    privilege(e, "sudo", Outcome::Failure);
                    let who = [get("ruser"), get("logname"), get("user")].into_iter().find(|s| !s.is_empty());
                    fill_str(&mut e.user, who.unwrap_or(""));
                }
                PamKind::Su => {
                    // ruser is who ran su; user= is the account they tried to become.
                    privilege(e, "su", Outcome::Failure);
                    let who = [get("ruser"), get("logname")].into_iter().find(|s| !s.is_empty());
                    fill_str(&mut e.user, who.unwrap_or(""));
                    fill_label(e, "target_user", get("user"));
                }
            }
            fill_label(e, "tty", get("tty"));
            true
        }
        "session" => {
            let Some(s) = PAM_SESSION.captures(detail) else { return false };
            fill_str(&mut e.category, "session");
            fill_str(&mut e.action, if &s[1] == "opened" { "session_open" } else { "session_close" });
            fill_outcome(e, Outcome::Success);
            fill_str(&mut e.user, &s[2]);
            fill_label(e, "by_user", s.get(3).map_or("", |b| b.as_str()));
            true
        }
        _ => false,
    }
}

/// `logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root` → map (empty values kept as "").
fn pam_kv(s: &str) -> HashMap<&str, &str> {
    s.split_whitespace().filter_map(|w| w.split_once('=')).collect()
}

fn login(e: &mut Event, outcome: Outcome) {
    fill_str(&mut e.category, "authentication");
    fill_str(&mut e.action, "login");
    fill_outcome(e, outcome);
}

fn privilege(e: &mut Event, action: &str, outcome: Outcome) {
    fill_str(&mut e.category, "privilege");
    fill_str(&mut e.action, action);
    fill_outcome(e, outcome);
}

#[cfg(test)]
mod tests {
    use super::super::test_support::normalized;
    use crate::model::Outcome;

    fn label<'a>(e: &'a crate::model::Event, k: &str) -> Option<&'a str> {
        e.labels.get(k).map(String::as_str)
    }

    #[test]
    fn sshd_failed_password_for_invalid_user() {
        let e = normalized(Some("sshd"), "Failed password for invalid user admin from 203.0.113.7 port 52144 ssh2");
        assert_eq!(e.category.as_deref(), Some("authentication"));
        assert_eq!(e.action.as_deref(), Some("login"));
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(e.user.as_deref(), Some("admin"));
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());
        assert_eq!(e.src_port, Some(52144));
        assert_eq!(label(&e, "invalid_user"), Some("true"));
        assert_eq!(label(&e, "auth_method"), Some("password"));
    }

    #[test]
    fn sshd_failed_other_methods() {
        for method in ["publickey", "keyboard-interactive/pam", "none"] {
            let e = normalized(Some("sshd"), &format!("Failed {method} for root from 198.51.100.4 port 22 ssh2"));
            assert_eq!(e.outcome, Outcome::Failure, "{method}");
            assert_eq!(e.user.as_deref(), Some("root"));
            assert_eq!(label(&e, "auth_method"), Some(method));
            assert_eq!(label(&e, "invalid_user"), None);
        }
        let e = normalized(Some("sshd"), "Failed none for invalid user guest from 198.51.100.4 port 22 ssh2");
        assert_eq!(e.user.as_deref(), Some("guest"));
    }

    #[test]
    fn sshd_accepted_logins() {
        let e = normalized(Some("sshd"), "Accepted password for alice from 10.0.0.5 port 50000 ssh2");
        assert_eq!((e.outcome, e.user.as_deref(), e.src_port), (Outcome::Success, Some("alice"), Some(50000)));
        let e = normalized(
            Some("sshd"),
            "Accepted publickey for deploy from 10.0.0.6 port 40022 ssh2: ED25519 SHA256:abcdefghijklmnop",
        );
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Success, Some("deploy")));
        assert_eq!(e.src_ip, "10.0.0.6".parse().ok());
        let e = normalized(Some("sshd"), "Accepted keyboard-interactive/pam for carol from 10.0.0.7 port 1 ssh2");
        assert_eq!(label(&e, "auth_method"), Some("keyboard-interactive/pam"));
        assert_eq!(e.action.as_deref(), Some("login"));
    }

    #[test]
    fn sshd_ipv6_sources() {
        let e = normalized(Some("sshd"), "Failed password for root from 2001:db8::1 port 2222 ssh2");
        assert_eq!(e.src_ip, "2001:db8::1".parse().ok());
        assert_eq!(e.src_port, Some(2222));
        let e = normalized(Some("sshd"), "Accepted password for bob from ::ffff:10.0.0.1 port 22 ssh2");
        assert_eq!(e.src_ip, "10.0.0.1".parse().ok());
    }

    #[test]
    fn sshd_hostname_sources_go_to_src_host() {
        let e = normalized(Some("sshd"), "Failed password for root from scanner.example.net port 22 ssh2");
        assert_eq!(e.src_ip, None);
        assert_eq!(label(&e, "src_host"), Some("scanner.example.net"));
        assert_eq!(e.outcome, Outcome::Failure);
    }

    #[test]
    fn sshd_username_cannot_spoof_the_address() {
        let e = normalized(
            Some("sshd"),
            "Failed password for invalid user x from 192.0.2.1 port 1 from 203.0.113.9 port 4444 ssh2",
        );
        assert_eq!(e.src_ip, "203.0.113.9".parse().ok());
        assert_eq!(e.user.as_deref(), Some("x from 192.0.2.1 port 1"));
        // An empty username is not a user.
        let e = normalized(Some("sshd"), "Failed password for invalid user  from 203.0.113.9 port 4444 ssh2");
        assert_eq!(e.user, None);
        assert_eq!(e.outcome, Outcome::Failure);
    }

    #[test]
    fn sshd_invalid_user_with_and_without_port() {
        let e = normalized(Some("sshd"), "Invalid user oracle from 203.0.113.7 port 40000");
        assert_eq!((e.outcome, e.user.as_deref(), e.src_port), (Outcome::Failure, Some("oracle"), Some(40000)));
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());
        let e = normalized(Some("sshd"), "Invalid user test from 2001:db8::7");
        assert_eq!((e.user.as_deref(), e.src_port), (Some("test"), None));
        assert_eq!(e.src_ip, "2001:db8::7".parse().ok());
    }

    #[test]
    fn sshd_maximum_authentication_attempts() {
        let e = normalized(
            Some("sshd"),
            "error: maximum authentication attempts exceeded for invalid user admin from 203.0.113.7 port 5555 ssh2 [preauth]",
        );
        assert_eq!((e.outcome, e.user.as_deref(), e.src_port), (Outcome::Failure, Some("admin"), Some(5555)));
        assert_eq!(label(&e, "invalid_user"), Some("true"));
        let e = normalized(
            Some("sshd"),
            "error: maximum authentication attempts exceeded for root from 203.0.113.7 port 5555 ssh2 [preauth]",
        );
        assert_eq!(e.user.as_deref(), Some("root"));
        assert_eq!(label(&e, "invalid_user"), None);
    }

    #[test]
    fn sshd_pam_more_failures_carries_the_count() {
        let e = normalized(
            Some("sshd"),
            "PAM 2 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
        );
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("root")));
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());
        assert_eq!(label(&e, "count"), Some("2"));
        assert_eq!(e.category.as_deref(), Some("authentication"));
    }

    #[test]
    fn sshd_pam_unix_auth_failure_with_ip_and_hostname() {
        let e = normalized(
            Some("sshd"),
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
        );
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("root")));
        assert_eq!(e.src_ip, "203.0.113.7".parse().ok());
        assert_eq!(e.action.as_deref(), Some("login"));
        let e = normalized(
            Some("sshd"),
            "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=host.example",
        );
        assert_eq!((e.outcome, e.user.as_deref(), e.src_ip), (Outcome::Failure, None, None));
        assert_eq!(label(&e, "src_host"), Some("host.example"));
    }

    #[test]
    fn look_alikes_are_not_auth_failures() {
        let not_auth = [
            (Some("logger"), "Failed password for root from 203.0.113.7 port 22 ssh2"),
            (Some("cron"), "pam_unix(sshd:auth): authentication failure; rhost=203.0.113.7 user=root"),
            (None, "Failed password for root from 203.0.113.7 port 22 ssh2"),
            (Some("sshd"), "Connection closed by 203.0.113.7 port 52144 [preauth]"),
            (Some("sshd"), "Connection closed by authenticating user root 203.0.113.7 port 52144 [preauth]"),
            (Some("sshd"), "Received disconnect from 203.0.113.7 port 52144:11: Bye Bye [preauth]"),
            (Some("sshd"), "Disconnected from invalid user admin 203.0.113.7 port 52144 [preauth]"),
            (Some("sshd"), "pam_unix(sshd:auth): check pass; user unknown"),
            (Some("sshd"), "pam_unix(cron:auth): authentication failure; rhost=203.0.113.7 user=root"),
            (Some("sshd"), "Server listening on 0.0.0.0 port 22."),
            (Some("sshd"), "something: Failed password for root from 203.0.113.7 port 22 ssh2"),
        ];
        for (program, msg) in not_auth {
            let e = normalized(program, msg);
            assert_eq!(e.outcome, Outcome::Unknown, "{program:?} {msg}");
            assert_eq!(e.category, None, "{program:?} {msg}");
        }
    }

    #[test]
    fn pam_sessions_are_session_events() {
        let e = normalized(Some("sshd"), "pam_unix(sshd:session): session opened for user alice(uid=1000) by (uid=0)");
        assert_eq!(e.category.as_deref(), Some("session"));
        assert_eq!(e.action.as_deref(), Some("session_open"));
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e = normalized(Some("sshd"), "pam_unix(sshd:session): session closed for user alice");
        assert_eq!(e.action.as_deref(), Some("session_close"));
        let e =
            normalized(Some("sudo"), "pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)");
        assert_eq!((e.category.as_deref(), e.user.as_deref()), (Some("session"), Some("root")));
        assert_eq!(label(&e, "by_user"), Some("alice"));
    }

    #[test]
    fn sudo_command_success() {
        let e = normalized(Some("sudo"), "   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash");
        assert_eq!(e.category.as_deref(), Some("privilege"));
        assert_eq!(e.action.as_deref(), Some("sudo"));
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.user.as_deref(), Some("alice"));
        assert_eq!(label(&e, "target_user"), Some("root"));
        assert_eq!(label(&e, "command"), Some("/bin/bash"));
        assert_eq!(label(&e, "tty"), Some("pts/0"));
        assert_eq!(label(&e, "pwd"), Some("/home/alice"));
    }

    #[test]
    fn sudo_failed_password_text_inside_command_is_just_a_command() {
        let e = normalized(
            Some("sudo"),
            "bob : TTY=pts/1 ; PWD=/tmp ; USER=root ; COMMAND=/usr/bin/grep Failed password for root from 1.2.3.4 port 22 ssh2 ; echo x",
        );
        assert_eq!(e.outcome, Outcome::Success);
        assert_eq!(e.category.as_deref(), Some("privilege"));
        assert_eq!(e.src_ip, None);
        assert_eq!(
            label(&e, "command"),
            Some("/usr/bin/grep Failed password for root from 1.2.3.4 port 22 ssh2 ; echo x")
        );
    }

    #[test]
    fn sudo_incorrect_password_attempts_and_other_refusals() {
        let e = normalized(
            Some("sudo"),
            "alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
        );
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(label(&e, "count"), Some("3"));
        assert_eq!(label(&e, "target_user"), Some("root"));
        assert_eq!(e.user.as_deref(), Some("alice"));
        let e =
            normalized(Some("sudo"), "mallory : user NOT in sudoers ; TTY=pts/2 ; PWD=/ ; USER=root ; COMMAND=/bin/sh");
        assert_eq!(e.outcome, Outcome::Failure);
        assert_eq!(label(&e, "reason"), Some("user NOT in sudoers"));
        assert_eq!(label(&e, "count"), None);
        // Not a sudo decision at all.
        let e = normalized(Some("sudo"), "unable to resolve host bastion: Name or service not known");
        assert_eq!((e.category, e.outcome), (None, Outcome::Unknown));
    }

    #[test]
    fn sudo_pam_auth_failure() {
        let e = normalized(
            Some("sudo"),
            "pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
        );
        assert_eq!((e.category.as_deref(), e.action.as_deref()), (Some("privilege"), Some("sudo")));
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("alice")));
    }

    #[test]
    fn su_success_and_failure() {
        let e = normalized(Some("su"), "(to root) alice on pts/0");
        assert_eq!((e.category.as_deref(), e.action.as_deref()), (Some("privilege"), Some("su")));
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Success, Some("alice")));
        assert_eq!(label(&e, "target_user"), Some("root"));
        assert_eq!(label(&e, "tty"), Some("pts/0"));

        let e = normalized(Some("su"), "Successful su for root by alice");
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Success, Some("alice")));
        assert_eq!(label(&e, "target_user"), Some("root"));

        let e = normalized(Some("su"), "FAILED SU (to root) mallory on pts/3");
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("mallory")));
        assert_eq!(label(&e, "target_user"), Some("root"));

        let e = normalized(Some("su"), "FAILED su for postgres by mallory");
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("mallory")));

        let e = normalized(Some("su"), "- pts/3 mallory:root");
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("mallory")));
    }

    #[test]
    fn su_pam_auth_failure_names_who_and_whom() {
        let e = normalized(
            Some("su"),
            "pam_unix(su:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=pts/3 ruser=mallory rhost=  user=root",
        );
        assert_eq!((e.outcome, e.user.as_deref()), (Outcome::Failure, Some("mallory")));
        assert_eq!(e.action.as_deref(), Some("su"));
        assert_eq!(label(&e, "target_user"), Some("root"));
        let e = normalized(
            Some("su"),
            "pam_unix(su-l:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=pts/3 ruser=mallory rhost=  user=root",
        );
        assert_eq!(e.outcome, Outcome::Failure);
        // su does not own sshd's PAM lines.
        let e = normalized(Some("su"), "pam_unix(sshd:auth): authentication failure; ruser= rhost=1.2.3.4 user=root");
        assert_eq!(e.outcome, Outcome::Unknown);
    }

    #[test]
    fn sshd_session_program_of_newer_openssh() {
        let e = normalized(Some("sshd-session"), "Failed password for root from 203.0.113.7 port 22 ssh2");
        assert_eq!(e.outcome, Outcome::Failure);
    }
}
