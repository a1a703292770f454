//! `Config::from_toml`, the one configuration loader of every face, and the zones the daemon
//! derives from it. Never panics, whatever the text; and a configuration that loads can be used:
//! every deadline computed from its durations (a clock reading plus a duration, or plus the DNS
//! and fetch timeouts together, as the cross-process lock wait is) is representable.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use mta_sts::config::{parse_duration, Config};
use mta_sts::serve::zones::Zones;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = parse_duration(text);
    let Ok(config) = Config::from_toml(text) else { return };
    let _ = Zones::new(&config.serve, &config.output);
    let now = Instant::now();
    let durations = [
        config.dns.timeout,
        config.fetch.timeout,
        config.cache.recheck_interval,
        config.cache.negative_ttl,
        config.cache.tempfail_ttl,
        config.cache.fetch_retry_interval,
        config.serve.idle_timeout,
        config.serve.shutdown_timeout,
        config.serve.refresh_interval,
        config.check.smtp_timeout,
        config.dns.timeout.checked_add(config.fetch.timeout).unwrap_or(Duration::MAX),
    ];
    for d in durations {
        assert!(now.checked_add(d).is_some(), "a deadline {d:?} from now overflows");
    }
});
