//! Exim's own expansion of the `${dlfunc}` entry points (issue 5): `exim -C <test.conf> -be
//! '${dlfunc{.../libmtasts.so}{mta_sts_lookup}{DOMAIN}}'` (and `mta_sts_policy`,
//! `mta_sts_mx_allowed`) for enforce, testing, none, no policy, broken policy and
//! temporary-failure domains published by the in-process DNS and HTTPS servers, and what Exim
//! does with each answer.
//!
//! `-be` prints the expansion, or `Failed: <message>` for a failure of any kind, and exits 0
//! either way. Forced (`FAIL_FORCED`) and plain (`FAIL`) failures look alike here; the routers
//! of `delivery.rs` tell them apart (decline and deliver, defer), and `tests/c/exim_abi.c`
//! checks the codes. What `-be` does show is that neither is logged, while `ERROR` is (Exim
//! writes the log lines of `-be` to its standard error). `mta_sts_policy`, which the shipped
//! `exim/mta-sts-dlfunc.conf` uses, never fails for an answer: every outcome is a line.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use hickory_proto::rr::RecordType;

use crate::common::dns::Answer;
use crate::common::https::Site;
use crate::common::world::World;
use crate::sandbox::{self, Sandbox};

const ENFORCE: &str =
    "version: STSv1\nmode: enforce\nmx: mail.enforce.example\nmx: *.mx.enforce.example\nmax_age: 86400\n";
const TESTING: &str = "version: STSv1\nmode: testing\nmx: mx.testing.example\nmax_age: 3600\n";
const NONE: &str = "version: STSv1\nmode: none\nmax_age: 600\n";
const BROKEN: &str = "version: STSv2\nmode: enforce\nmx: mx.broken.example\nmax_age: 600\n";

const ENFORCE_LINE: &str = concat!(
    r#"mode=enforce ignore="!^mail[.]enforce[.]example$ : !^[^.]+[.]mx[.]enforce[.]example$ : *""#,
    r#" match="^(mail[.]enforce[.]example|[^.]+[.]mx[.]enforce[.]example)$" max_age=86400 id="e1""#,
    r#" mx="mail.enforce.example *.mx.enforce.example""#,
);
const TESTING_LINE: &str = concat!(
    r#"mode=testing ignore="!^mx[.]testing[.]example$ : *" match="^(mx[.]testing[.]example)$""#,
    r#" max_age=3600 id="t1" mx="mx.testing.example""#,
);

#[test]
fn dlfunc_entry_points_answer_exim_be() {
    let Some(sb) = sandbox::enter(module_path!(), "dlfunc_entry_points_answer_exim_be") else { return };
    let world = World::start("mta-sts-exim-be");
    world.publish("enforce.example", "e1", Site::policy(ENFORCE));
    world.publish("testing.example", "t1", Site::policy(TESTING));
    world.publish("none.example", "n1", Site::policy(NONE));
    world.publish("broken.example", "b1", Site::policy(BROKEN));
    world.dns.set_for("_mta-sts.tempfail.example", RecordType::TXT, Answer::ServFail);
    let config = world.config_file("mta-sts.toml", "[cache]\npath = \"\"\n");
    let conf = sb.config(
        "be.conf",
        &format!(
            "primary_hostname = sender.test\nkeep_environment = MTA_STS_CONFIG\n\
             spool_directory = {}\nlog_file_path = {}/%slog\n",
            sb.exim_dir("spool").display(),
            sb.exim_dir("log").display()
        ),
    );
    let lib = sb.lib.display().to_string();
    let lookup = |domain: &str| format!("${{dlfunc{{{lib}}}{{mta_sts_lookup}}{{{domain}}}}}");
    let policy = |domain: &str| format!("${{dlfunc{{{lib}}}{{mta_sts_policy}}{{{domain}}}}}");
    let mx_allowed =
        |domain: &str, host: &str| format!("${{dlfunc{{{lib}}}{{mta_sts_mx_allowed}}{{{domain}}}{{{host}}}}}");
    // The printed expansions, one per line, and what Exim logged.
    let be_logged = |expansions: &[String]| -> (Vec<String>, String) {
        let mut cmd = sb.command(&conf, Some(&config));
        cmd.arg("-be").args(expansions);
        let out = Sandbox::run(&mut cmd, "");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "exim -be: {}\n{stdout}{stderr}", out.status);
        let lines: Vec<String> = stdout.lines().map(str::to_owned).collect();
        assert_eq!(lines.len(), expansions.len(), "{expansions:?}:\n{stdout}");
        (lines, stderr)
    };
    // Answers that are no fault are never logged.
    let be = |expansions: &[String]| -> Vec<String> {
        let (lines, logged) = be_logged(expansions);
        assert_eq!(logged, "", "{expansions:?} logged");
        lines
    };

    let version = sb.command(&conf, None).arg("-bV").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout);
    assert!(version.contains(" Expand_dlfunc "), "not a heavy build:\n{version}");
    println!("{}", version.lines().next().unwrap_or_default());

    // One Exim process per group: the library is loaded once and its resolver answers the
    // repeated domains from memory.
    let got = be(&[
        lookup("enforce.example"),
        lookup("testing.example"),
        lookup("none.example"),
        lookup("nopolicy.example"),
        lookup("broken.example"),
        lookup("tempfail.example"),
        lookup("[192.0.2.1]"),
        lookup("Enforce.Example."),
    ]);
    let want = [
        ENFORCE_LINE.to_owned(),
        TESTING_LINE.to_owned(),
        // mode none: a forced failure, so a router declines and the mail goes out as usual.
        "Failed: mta-sts: none.example: none (max_age 600, id n1, from fetched)".to_owned(),
        "Failed: mta-sts: nopolicy.example: no policy".to_owned(),
        "Failed: mta-sts: broken.example: no policy (policy: version \"STSv2\" is not STSv1)".to_owned(),
        "Failed: mta-sts: tempfail.example: temporary failure (dns: _mta-sts.tempfail.example.: server answered Server Failure)"
            .to_owned(),
        "Failed: mta-sts: error: domain: address literals have no MTA-STS policy".to_owned(),
        ENFORCE_LINE.to_owned(),
    ];
    assert_eq!(got, want);

    // mta_sts_policy: every answer is a line, the same as `mta-sts query --format exim` prints.
    let got = be(&[
        policy("enforce.example"),
        policy("testing.example"),
        policy("none.example"),
        policy("nopolicy.example"),
        policy("broken.example"),
        policy("tempfail.example"),
        policy("[192.0.2.1]"),
        policy("a..example"),
        policy("Enforce.Example."),
    ]);
    let want = [
        ENFORCE_LINE,
        TESTING_LINE,
        r#"mode=none max_age=600 id="n1""#,
        "mode=none",
        r#"mode=none error="policy: version 'STSv2' is not STSv1""#,
        r#"mode=defer error="dns: _mta-sts.tempfail.example.: server answered Server Failure""#,
        r#"mode=error error="domain: address literals have no MTA-STS policy""#,
        r#"mode=error error="domain: empty label""#,
        ENFORCE_LINE,
    ];
    assert_eq!(got, want);

    // What the shipped routers read from it: the mode, and the reason that mta_sts_nopolicy_log
    // logs and mta_sts_defer gives.
    let extract = |key: &str, domain: &str| format!("[${{extract{{{key}}}{{{}}}}}]", policy(domain));
    let got = be(&[
        extract("mode", "testing.example"),
        extract("match", "testing.example"),
        extract("mode", "none.example"),
        extract("error", "none.example"),
        extract("error", "nopolicy.example"),
        extract("mode", "broken.example"),
        extract("error", "broken.example"),
        extract("mode", "tempfail.example"),
        extract("error", "tempfail.example"),
        extract("mode", "[192.0.2.1]"),
        extract("error", "[192.0.2.1]"),
    ]);
    let want = [
        "[testing]",
        "[^(mx[.]testing[.]example)$]",
        "[none]",
        "[]",
        "[]",
        "[none]",
        "[policy: version 'STSv2' is not STSv1]",
        "[defer]",
        "[dns: _mta-sts.tempfail.example.: server answered Server Failure]",
        "[error]",
        "[domain: address literals have no MTA-STS policy]",
    ];
    assert_eq!(got, want);

    // Bytes that are not UTF-8 in the domain are an invalid name too, not a failure.
    let mut cmd = sb.command(&conf, Some(&config));
    let mut expansion = format!("${{dlfunc{{{lib}}}{{mta_sts_policy}}{{").into_bytes();
    expansion.extend_from_slice(b"\xff.example}}");
    cmd.arg("-be").arg(OsStr::from_bytes(&expansion));
    let out = Sandbox::run(&mut cmd, "");
    assert_eq!(
        (String::from_utf8_lossy(&out.stdout).as_ref(), String::from_utf8_lossy(&out.stderr).as_ref()),
        ("mode=error error=\"domain argument is not UTF-8\"\n", "")
    );

    // What the shipped routers do with the line: ${extract} reads it, the regexes match one
    // label per "*" and nothing else.
    let line = lookup("enforce.example");
    let extract = |key: &str| format!("${{extract{{{key}}}{{{line}}}}}");
    let matches = |host: &str| format!("${{if match{{{host}}}{{{}}}{{yes}}{{no}}}}", extract("match"));
    let got = be(&[
        extract("mode"),
        extract("id"),
        extract("ignore"),
        matches("mail.enforce.example"),
        matches("a.mx.enforce.example"),
        matches("b.a.mx.enforce.example"),
        matches("mail.enforce.example.evil.example"),
        matches("xmail.enforce.example"),
        mx_allowed("enforce.example", "a.mx.enforce.example"),
        mx_allowed("enforce.example", "b.a.mx.enforce.example"),
        mx_allowed("testing.example", "mx.testing.example"),
        mx_allowed("nopolicy.example", "mx.nopolicy.example"),
        mx_allowed("tempfail.example", "mx.tempfail.example"),
    ]);
    let want = [
        "enforce",
        "e1",
        "!^mail[.]enforce[.]example$ : !^[^.]+[.]mx[.]enforce[.]example$ : *",
        "yes",
        "yes",
        "no",
        "no",
        "no",
        "yes",
        "no",
        "yes",
        "Failed: mta-sts: nopolicy.example: no policy",
        "Failed: mta-sts: tempfail.example: temporary failure (dns: _mta-sts.tempfail.example.: server answered Server Failure)",
    ];
    assert_eq!(got, want);

    // A configuration error is a fault (ERROR): Exim logs it, in the main and panic logs.
    let (got, logged) = be_logged(&[format!("${{dlfunc{{{lib}}}{{mta_sts_lookup}}{{a.example}}{{b.example}}}}")]);
    assert_eq!(got, ["Failed: mta_sts_lookup: expected 1 argument(s) (domain), got 2"]);
    let want =
        format!("dlfunc{{{lib}}}{{mta_sts_lookup}} failed (3): mta_sts_lookup: expected 1 argument(s) (domain), got 2");
    assert!(logged.trim_end().ends_with(&want), "{logged}");
    // The same for mta_sts_policy: a fault of the call is the one thing it fails for.
    let (got, logged) = be_logged(&[format!("${{dlfunc{{{lib}}}{{mta_sts_policy}}{{a.example}}{{b.example}}}}")]);
    assert_eq!(got, ["Failed: mta_sts_policy: expected 1 argument(s) (domain), got 2"]);
    let want =
        format!("dlfunc{{{lib}}}{{mta_sts_policy}} failed (3): mta_sts_policy: expected 1 argument(s) (domain), got 2");
    assert!(logged.trim_end().ends_with(&want), "{logged}");
}
