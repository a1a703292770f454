//! `mta-sts serve`: the policy daemon. Binds the listeners, drops privileges, opens the cache,
//! then serves until SIGTERM or SIGINT; SIGHUP reloads the configuration.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use mta_sts::serve::server::Server;
use mta_sts::serve::{listener, notify, privileges};
use tokio::signal::unix::{signal, SignalKind};

use super::{Exit, Setup};

/// Serve MTA-STS policies to Postfix and Sendmail (socketmap) and Exim (line mode) until
/// SIGTERM or SIGINT.
///
/// Listeners, zones and limits come from the [serve] section of the configuration (default: one
/// socketmap listener on 127.0.0.1:8461). SIGHUP reloads the configuration for the lookups that
/// follow, keeping every connection. SIGTERM stops accepting, lets open connections finish
/// (serve.shutdown_timeout, default 20 s), then exits; a second SIGTERM exits at once. With
/// NOTIFY_SOCKET set (systemd Type=notify), READY=1 is sent once serving. Logs go to stderr;
/// set MTA_STS_LOG=info to see each lookup that went to the network.
///
/// Exit status: 0 after a clean stop, 78 when the configuration is unusable or a socket cannot
/// be bound.
#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    setup: Setup,
}

/// Runs the subcommand.
pub fn run(args: ServeArgs) -> ExitCode {
    let config = match args.setup.config() {
        Ok(c) => c,
        Err(exit) => return exit.into(),
    };
    let start = || -> Result<_, mta_sts::serve::error::ServeError> {
        let identity = privileges::identity(config.serve.user.as_deref(), config.serve.group.as_deref())?;
        let listeners = listener::bind(&config.serve, identity.as_ref())?;
        match &identity {
            Some(identity) => {
                if let Err(e) = privileges::drop_to(identity) {
                    listeners.remove_socket_files();
                    return Err(e);
                }
            }
            None if privileges::is_root() => {
                tracing::warn!("running as root: set serve.user to switch to an unprivileged user");
            }
            None => {}
        }
        Ok(listeners)
    };
    // Before any thread exists: the switch of user applies to the whole process.
    let listeners = match start() {
        Ok(l) => l,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Config.into();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("mta-sts-serve").build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("mta-sts: serve: cannot start the runtime: {e}");
            listeners.remove_socket_files();
            return Exit::Config.into();
        }
    };
    let code = runtime.block_on(daemon(config, listeners, &args.setup));
    // Lookups still running on the blocking pool are abandoned, not waited for.
    runtime.shutdown_timeout(Duration::from_millis(500));
    code
}

async fn daemon(config: mta_sts::Config, listeners: listener::Listeners, setup: &Setup) -> ExitCode {
    let mut shutdown_timeout = config.serve.shutdown_timeout;
    let signals = (signal(SignalKind::hangup()), signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
    let (mut hup, mut term, mut int) = match signals {
        (Ok(h), Ok(t), Ok(i)) => (h, t, i),
        _ => {
            eprintln!("mta-sts: serve: cannot install signal handlers");
            listeners.remove_socket_files();
            return Exit::Config.into();
        }
    };
    let server = match Server::start(config, listeners) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("mta-sts: {e}");
            return Exit::Config.into();
        }
    };
    send_notify("READY=1\nSTATUS=serving");
    tracing::info!(pid = std::process::id(), "ready");
    loop {
        tokio::select! {
            _ = hup.recv() => {
                send_notify("STATUS=reloading");
                // `Setup::config` has printed why on stderr when it fails.
                match setup.config() {
                    Ok(config) => {
                        let timeout = config.serve.shutdown_timeout;
                        match server.reload(config).await {
                            Ok(()) => shutdown_timeout = timeout,
                            Err(e) => tracing::error!(error = %e, "reload refused, the old configuration stays in force"),
                        }
                    }
                    Err(_) => tracing::error!("reload refused, the old configuration stays in force"),
                }
                send_notify("STATUS=serving");
            }
            _ = term.recv() => break,
            _ = int.recv() => break,
        }
    }
    send_notify("STOPPING=1\nSTATUS=stopping");
    tokio::select! {
        drained = server.stop(shutdown_timeout) => {
            if drained {
                tracing::info!("stopped");
            }
        }
        _ = term.recv() => tracing::warn!("second signal: exiting now"),
        _ = int.recv() => tracing::warn!("second signal: exiting now"),
    }
    ExitCode::SUCCESS
}

fn send_notify(state: &str) {
    if let Err(e) = notify::notify(state) {
        tracing::warn!(error = %e, socket = ?std::env::var_os(notify::ENV_VAR), "systemd notify failed");
    }
}
