//! Real MTA clients against `mta-sts serve`: Postfix's `postmap -q` through
//! `socketmap:inet:` and `socketmap:unix:` tables, and Sendmail's `-bt` with `/map sts` and the
//! `STS_Check` ruleset of `FEATURE(sts)`.
//!
//! The MTAs are not installed (they conflict with each other as packages): their Debian packages
//! are downloaded with `apt-get download` and unpacked with `dpkg-deb -x` into
//! `target/tmp/mta/root`, once, as `mta-integration.md` §5 describes (`tests/mta/`, shared with
//! `tests/exim.rs`). That needs root and access to the Debian archive; without them the tests
//! print `SKIP` and pass. `MTA_STS_MTA_ROOT` points at another (or a pre-filled) directory;
//! `MTA_STS_SKIP_MTA_TESTS=1` skips on purpose.
//!
//! Sendmail sleeps a minute at start when it cannot qualify the host name, so it runs in a
//! private mount namespace (`unshare -m`) with an `/etc/hosts` that names the host for IPv4 and
//! IPv6; the host's own files are never touched.

mod common;
mod daemon;
mod mta;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use daemon::{Daemon, World};
use mta::skip;

/// The packages to unpack: the two MTAs, Sendmail's m4 files and m4 itself, and the two
/// libraries Sendmail needs that a standard bookworm image lacks. Postfix's libraries (libicu72,
/// libssl3, libsasl2-2, libdb5.3, libnsl2) are on every standard image.
const PACKAGES: [&str; 6] = ["postfix", "sendmail-bin", "sendmail-cf", "m4", "libwrap0", "liblockfile1"];

const RFC_SECURE: &str = "secure match=mail.example.com:.example.net:backupmx.example.com servername=hostname";

struct Mta {
    root: PathBuf,
    library_path: String,
}

impl Mta {
    fn command(&self, relative: &str) -> Command {
        let mut cmd = Command::new(self.root.join(relative));
        cmd.env("LD_LIBRARY_PATH", &self.library_path);
        cmd
    }
}

/// The unpacked MTAs, or why there are none.
fn mta() -> Result<&'static Mta, &'static str> {
    static MTA: OnceLock<Result<Mta, String>> = OnceLock::new();
    MTA.get_or_init(prepare).as_ref().map_err(String::as_str)
}

fn prepare() -> Result<Mta, String> {
    let unpacked = mta::unpack(&PACKAGES)?;
    // Set-id programs run with LD_LIBRARY_PATH ignored; these copies are run by root only.
    for program in ["usr/libexec/sendmail/sendmail", "usr/sbin/postdrop", "usr/sbin/postqueue"] {
        let _ = Command::new("chmod").arg("ug-s").arg(unpacked.path(program)).status();
    }
    let dirs = unpacked.library_dirs(&["usr/lib/postfix"]);
    let library_path = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(":");
    for program in ["usr/sbin/postmap", "usr/libexec/sendmail/sendmail", "usr/bin/m4"] {
        let missing = unpacked.missing_libraries(program, &library_path);
        if !missing.is_empty() {
            return Err(format!("{program} lacks libraries: {}", missing.join(", ")));
        }
    }
    Ok(Mta { root: unpacked.root, library_path })
}

macro_rules! mta_or_skip {
    ($test:literal) => {
        match mta() {
            Ok(mta) => mta,
            Err(why) => {
                skip($test, why);
                return;
            }
        }
    };
}

fn text(out: &Output) -> (String, String, Option<i32>) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

#[test]
fn postfix_postmap_reads_policies_through_socketmap() {
    let mta = mta_or_skip!("postfix_postmap_reads_policies_through_socketmap");
    let world = World::start();
    let unix = world.dir.join("socketmap.sock");
    let extra =
        format!("[[serve.socketmap]]\npath = \"{}\"\n[serve.zones.postfix310]\ntlsrpt = true\n", unix.display());
    let daemon = Daemon::start(&world.config("postfix.toml", "", &extra));
    let conf = world.dir.join("pfconf");
    std::fs::create_dir_all(&conf).unwrap();
    // mta-integration.md §3.1: the smallest main.cf postmap accepts without a postfix user.
    std::fs::write(conf.join("main.cf"), "mail_owner = daemon\nsetgid_group = mail\ncompatibility_level = 3.6\n")
        .unwrap();
    let version = mta.command("usr/sbin/postconf").arg("-c").arg(&conf).args(["-h", "mail_version"]).output().unwrap();
    eprintln!("postfix {}", String::from_utf8_lossy(&version.stdout).trim());

    let inet = format!("socketmap:inet:{}:postfix", daemon.addr());
    let postmap = |key: &str, table: &str| {
        text(&mta.command("usr/sbin/postmap").arg("-c").arg(&conf).args(["-q", key, table]).output().unwrap())
    };
    for (key, stdout, code) in [
        ("example.com", format!("{RFC_SECURE}\n"), Some(0)),
        (
            "enforce.example",
            "secure match=mail.enforce.example:.mx.enforce.example servername=hostname\n".into(),
            Some(0),
        ),
        ("[example.com]:25", format!("{RFC_SECURE}\n"), Some(0)),
        ("testing.example", String::new(), Some(1)),
        ("none.example", String::new(), Some(1)),
        ("nopolicy.example", String::new(), Some(1)),
        (".example.com", String::new(), Some(1)),
        ("[192.0.2.1]:25", String::new(), Some(1)),
    ] {
        let (out, err, rc) = postmap(key, &inet);
        assert_eq!((out.as_str(), rc), (stdout.as_str(), code), "{key}: {err}");
    }
    // TEMP: Postfix reports the reason and fails the query (smtp(8) defers the mail).
    let (out, err, rc) = postmap("tempfail.example", &inet);
    assert_eq!((out.as_str(), rc), ("", Some(1)));
    assert!(err.contains("socketmap server temporary error: dns: _mta-sts.tempfail.example."), "{err}");
    // Postfix 3.10's attributes through another map name, and the Unix socket.
    let tlsrpt = format!("socketmap:inet:{}:postfix310", daemon.addr());
    let (out, _, rc) = postmap("example.com", &tlsrpt);
    assert_eq!(rc, Some(0));
    assert!(
        out.starts_with(&format!("{RFC_SECURE} policy_type=sts policy_domain=example.com mx_host_pattern=")),
        "{out}"
    );
    let (out, err, rc) = postmap("example.com", &format!("socketmap:unix:{}:postfix", unix.display()));
    assert_eq!((out, rc), (format!("{RFC_SECURE}\n"), Some(0)), "{err}");
}

#[test]
fn sendmail_feature_sts_reads_policies_through_the_sts_socket_map() {
    let mta = mta_or_skip!("sendmail_feature_sts_reads_policies_through_the_sts_socket_map");
    let world = World::start();
    let unix = world.dir.join("sts.sock");
    let daemon = Daemon::start(&world.config(
        "sendmail.toml",
        "",
        &format!("[[serve.socketmap]]\npath = \"{}\"\n", unix.display()),
    ));
    let work = world.dir.path();
    std::fs::create_dir_all(work.join("mqueue")).unwrap();
    let cf_dir = mta.root.join("usr/share/sendmail/cf");
    let hosts = work.join("hosts");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_else(|_| "localhost".into());
    let host = host.trim();
    std::fs::write(&hosts, format!("127.0.0.1 localhost {host} {host}.invalid\n::1 localhost {host} {host}.invalid\n"))
        .unwrap();

    let trace = |map: &str, input: &str| -> String {
        // mta-integration.md §2.7, with the map pointed at the daemon.
        let mc = format!(
            "include(`{cf}/m4/cf.m4')dnl\nOSTYPE(`linux')dnl\n\
             define(`confDONT_PROBE_INTERFACES', `True')dnl\n\
             define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl\n\
             define(`confQUEUE_DIR', `{q}')dnl\n\
             FEATURE(`sts', `socket -d5 -T<TMPF> {map}')dnl\nMAILER(`smtp')dnl\n",
            cf = cf_dir.display(),
            q = work.join("mqueue").display(),
        );
        std::fs::write(work.join("test.mc"), mc).unwrap();
        let m4 = mta
            .command("usr/bin/m4")
            .arg(format!("-D_CF_DIR_={}/", cf_dir.display()))
            .arg(work.join("test.mc"))
            .output()
            .unwrap();
        assert!(m4.status.success(), "{}", String::from_utf8_lossy(&m4.stderr));
        std::fs::write(work.join("test.cf"), &m4.stdout).unwrap();
        let script = format!(
            "mount --bind {} /etc/hosts && exec {} -C {} -bt",
            hosts.display(),
            mta.root.join("usr/libexec/sendmail/sendmail").display(),
            work.join("test.cf").display()
        );
        let mut child = Command::new("timeout")
            .args(["60", "unshare", "-m", "sh", "-c", &script])
            .env("LD_LIBRARY_PATH", &mta.library_path)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        let (stdout, stderr, _) = text(&out);
        format!("{stdout}{stderr}")
    };

    let inet = format!("inet:{}@127.0.0.1", daemon.addr().port());
    let out = trace(
        &inet,
        "/map sts example.com\n/map sts testing.example\n/map sts nopolicy.example\n/map sts tempfail.example\n",
    );
    if out.contains("unshare") && out.contains("Operation not permitted") {
        skip(
            "sendmail_feature_sts_reads_policies_through_the_sts_socket_map",
            &format!("no private mount namespace: {out}"),
        );
        return;
    }
    for want in [
        format!("map_lookup: sts (example.com) returns {RFC_SECURE} (0)"),
        "map_lookup: sts (testing.example) no match (68)".into(),
        "map_lookup: sts (nopolicy.example) no match (68)".into(),
        "map_lookup: sts (tempfail.example) no match (75)".into(),
    ] {
        assert!(out.contains(&want), "want {want:?} in:\n{out}");
    }
    // FEATURE(sts)'s rules enforce the reply: an MX in the list with the name in its
    // certificate passes; another MX, or a wildcard two labels deep, is refused.
    let out = trace(
        &inet,
        ".D{rcpt_addr}user@example.com\n.D{server_name}a.example.net\n.C{cert_altnames}a.example.net\nSTS_Check user@example.com\n\
         .D{server_name}b.c.example.net\nSTS_Check user@example.com\n\
         .D{server_name}evil.example.org\nSTS_Check user@example.com\n",
    );
    // Sendmail prints tokens separated by spaces: "450 b . c . example . net not found in".
    let returns: Vec<&str> = out.lines().filter(|l| l.starts_with("STS_Check") && l.contains("returns:")).collect();
    assert_eq!(returns.len(), 3, "{out}");
    assert!(returns[0].trim_end().ends_with("returns: ok"), "{out}");
    assert!(returns[1].contains("450 b . c . example . net not found in"), "{out}");
    assert!(returns[2].contains("450 evil . example . org not found in"), "{out}");
    // The Unix socket, as `local:` in Sendmail's map syntax.
    let out = trace(&format!("local:{}", unix.display()), "/map sts example.com\n");
    assert!(out.contains(&format!("map_lookup: sts (example.com) returns {RFC_SECURE} (0)")), "{out}");
    assert!(daemon.wait_log("map=sts", Duration::from_secs(5)));
}
