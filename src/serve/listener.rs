//! Binding the listening sockets: TCP (IPv4 or IPv6, optionally `SO_REUSEPORT`) and Unix
//! sockets with the owner, group and mode of the configuration, so that the MTA's user can
//! connect and nobody else can.
//!
//! Binding happens before the privilege drop and before any thread starts; the server turns the
//! bound sockets into Tokio listeners.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use socket2::{Domain as SocketDomain, Socket as RawSocket, Type};

use super::error::ServeError;
use super::privileges::{self, Identity};
use crate::config::{ListenerConfig, ServeConfig, DEFAULT_LINE_ZONE, DEFAULT_SOCKET_MODE};

/// Listen backlog: where connections wait while the daemon is at `max_connections`.
const BACKLOG: i32 = 1024;

/// What a listener speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protocol {
    /// Netstring socketmap requests `NAME KEY`.
    Socketmap,
    /// One request line, one answer line, in the dialect of the zone named here.
    Line {
        /// The zone every line is answered in.
        zone: String,
    },
}

/// A bound socket.
#[derive(Debug)]
pub enum Socket {
    /// A TCP listener.
    Tcp(TcpListener),
    /// A Unix socket listener and its path.
    Unix(UnixListener, PathBuf),
}

/// One bound listener.
#[derive(Debug)]
pub struct Bound {
    /// What it speaks.
    pub protocol: Protocol,
    /// The socket.
    pub socket: Socket,
}

impl Bound {
    /// The address for log lines: `127.0.0.1:8461` or the socket path.
    pub fn address(&self) -> String {
        match &self.socket {
            Socket::Tcp(l) => l.local_addr().map_or_else(|_| "tcp".into(), |a| a.to_string()),
            Socket::Unix(_, path) => path.display().to_string(),
        }
    }
}

/// Every listener of the configuration, bound.
#[derive(Debug)]
pub struct Listeners {
    /// In configuration order: socketmap listeners, then line listeners.
    pub bound: Vec<Bound>,
}

impl Listeners {
    /// Removes the files of the Unix sockets (at exit; a failure is only logged, the next start
    /// replaces a stale file anyway).
    pub fn remove_socket_files(&self) {
        for bound in &self.bound {
            if let Socket::Unix(_, path) = &bound.socket {
                remove_socket_file(path);
            }
        }
    }

    /// The addresses of the TCP listeners, in order (for tests that bind port 0).
    pub fn tcp_addresses(&self) -> Vec<SocketAddr> {
        self.bound
            .iter()
            .filter_map(|b| match &b.socket {
                Socket::Tcp(l) => l.local_addr().ok(),
                Socket::Unix(..) => None,
            })
            .collect()
    }
}

/// Binds every listener of `serve`. Unix socket files get their owner and group (defaulting to
/// `daemon`, the identity the daemon is about to switch to) and mode.
///
/// # Errors
///
/// [`ServeError`] when a listener's configuration contradicts itself, a user or group does not
/// exist, or a socket cannot be bound or set up. Nothing stays bound then.
pub fn bind(serve: &ServeConfig, daemon: Option<&Identity>) -> Result<Listeners, ServeError> {
    check(serve)?;
    let socketmap =
        serve.socketmap.iter().enumerate().map(|(n, c)| (format!("serve.socketmap[{n}]"), Protocol::Socketmap, c));
    let line = serve.line.iter().enumerate().map(|(n, c)| {
        let zone = c.zone.clone().unwrap_or_else(|| DEFAULT_LINE_ZONE.to_owned());
        (format!("serve.line[{n}]"), Protocol::Line { zone }, c)
    });
    let all: Vec<_> = socketmap.chain(line).collect();
    for (name, protocol, config) in &all {
        let reason = match (config.address, &config.path) {
            (Some(_), Some(_)) => Some("set address or path, not both"),
            (None, None) => Some("set address (TCP) or path (Unix socket)"),
            (Some(_), None) if config.owner.is_some() || config.group.is_some() || config.mode.is_some() => {
                Some("owner, group and mode apply to Unix sockets (path) only")
            }
            _ if *protocol == Protocol::Socketmap && config.zone.is_some() => {
                Some("zone applies to line listeners only; socketmap requests name their zone")
            }
            _ => None,
        };
        if let Some(reason) = reason {
            return Err(ServeError::Listener { listener: name.clone(), reason });
        }
    }
    let mut listeners = Listeners { bound: Vec::new() };
    for (name, protocol, config) in all {
        let socket = match (config.address, &config.path) {
            (Some(address), _) => bind_tcp(address, serve.reuse_port).map(Socket::Tcp),
            (None, Some(path)) => bind_unix(path, config, daemon).map(|l| Socket::Unix(l, path.clone())),
            (None, None) => {
                Err(ServeError::Listener { listener: name, reason: "set address (TCP) or path (Unix socket)" })
            }
        };
        match socket {
            Ok(socket) => listeners.bound.push(Bound { protocol, socket }),
            Err(e) => {
                listeners.remove_socket_files();
                return Err(e);
            }
        }
    }
    Ok(listeners)
}

/// The numeric settings a daemon cannot run with.
fn check(serve: &ServeConfig) -> Result<(), ServeError> {
    let setting = |key, reason| Err(ServeError::Setting { key, reason });
    if serve.socketmap.is_empty() && serve.line.is_empty() {
        return setting("socketmap", "no listener configured (socketmap and line are both empty)");
    }
    if serve.max_request == 0 {
        return setting("max_request", "must be at least 1");
    }
    if serve.max_connections == 0 || serve.max_connections > u32::MAX as usize >> 3 {
        return setting("max_connections", "must be between 1 and 536870911");
    }
    if serve.idle_timeout.is_zero() {
        return setting("idle_timeout", "must be more than 0s");
    }
    Ok(())
}

fn bind_tcp(address: SocketAddr, reuse_port: bool) -> Result<TcpListener, ServeError> {
    let fail = |source: io::Error| ServeError::Bind { address: address.to_string(), source };
    let socket = RawSocket::new(SocketDomain::for_address(address), Type::STREAM, None).map_err(fail)?;
    socket.set_reuse_address(true).map_err(fail)?;
    if reuse_port {
        socket.set_reuse_port(true).map_err(fail)?;
    }
    if address.is_ipv6() {
        // `[::]:8461` means IPv6 only; list `0.0.0.0:8461` too for IPv4.
        socket.set_only_v6(true).map_err(fail)?;
    }
    socket.bind(&address.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(socket.into())
}

fn bind_unix(path: &Path, config: &ListenerConfig, daemon: Option<&Identity>) -> Result<UnixListener, ServeError> {
    let fail = |source: io::Error| ServeError::Bind { address: path.display().to_string(), source };
    remove_stale(path).map_err(fail)?;
    let uid = match &config.owner {
        Some(name) => Some(privileges::user_id(name)?),
        None => daemon.map(|d| d.uid),
    };
    let gid = match &config.group {
        Some(name) => Some(privileges::group_id(name)?),
        None => daemon.map(|d| d.gid),
    };
    let listener = UnixListener::bind(path).map_err(fail)?;
    let set_up = || -> io::Result<()> {
        if uid.is_some() || gid.is_some() {
            std::os::unix::fs::chown(path, uid.map(|u| u.as_raw()), gid.map(|g| g.as_raw()))?;
        }
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(config.mode.unwrap_or(DEFAULT_SOCKET_MODE)))?;
        listener.set_nonblocking(true)
    };
    if let Err(e) = set_up() {
        let _ = std::fs::remove_file(path);
        return Err(fail(e));
    }
    Ok(listener)
}

/// Removes one socket file we created, logging a failure.
pub fn remove_socket_file(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        tracing::debug!(path = %path.display(), error = %e, "socket file not removed");
    }
}

/// Removes a socket file left by a daemon that is gone. A live socket (something accepts
/// connections on it) or a file of another type stays, and binding fails.
fn remove_stale(path: &Path) -> io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if UnixStream::connect(path).is_ok() {
                return Err(io::Error::new(io::ErrorKind::AddrInUse, "another process is listening on this socket"));
            }
            std::fs::remove_file(path)
        }
        Ok(_) => Err(io::Error::new(io::ErrorKind::AlreadyExists, "the path exists and is not a socket")),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::Config;

    fn dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("mta-sts-listener-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn binds_tcp_and_unix_with_mode() {
        let d = dir("bind");
        let toml = format!(
            "[[serve.socketmap]]\naddress = \"127.0.0.1:0\"\n[[serve.socketmap]]\naddress = \"[::1]:0\"\n\
             [[serve.line]]\npath = \"{}\"\nmode = 0o600\n[[serve.line]]\npath = \"{}\"\nzone = \"json\"\n",
            d.join("a.sock").display(),
            d.join("b.sock").display()
        );
        let config = Config::from_toml(&toml).unwrap();
        let l = bind(&config.serve, None).unwrap();
        assert_eq!(l.bound.len(), 4);
        assert_eq!(l.tcp_addresses().len(), 2);
        assert_eq!(l.bound[2].protocol, Protocol::Line { zone: "exim".into() });
        assert_eq!(l.bound[3].protocol, Protocol::Line { zone: "json".into() });
        assert_eq!(std::fs::metadata(d.join("a.sock")).unwrap().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(d.join("b.sock")).unwrap().mode() & 0o777, 0o660);
        // A live socket is not replaced; once its listener is gone, it is.
        assert!(matches!(bind(&config.serve, None), Err(ServeError::Bind { .. })));
        drop(l);
        bind(&config.serve, None).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn contradictions_are_refused() {
        let d = dir("bad");
        let file = d.join("plain-file");
        std::fs::write(&file, "x").unwrap();
        for (toml, want) in [
            ("[[serve.socketmap]]\n", "serve: serve.socketmap[0]: set address (TCP) or path (Unix socket)"),
            (
                "[[serve.socketmap]]\naddress = \"127.0.0.1:0\"\npath = \"/x\"\n",
                "serve: serve.socketmap[0]: set address or path, not both",
            ),
            (
                "[[serve.line]]\naddress = \"127.0.0.1:0\"\nmode = 0o666\n",
                "serve: serve.line[0]: owner, group and mode apply to Unix sockets (path) only",
            ),
            (
                "[[serve.socketmap]]\naddress = \"127.0.0.1:0\"\nzone = \"exim\"\n",
                "serve: serve.socketmap[0]: zone applies to line listeners only; socketmap requests name their zone",
            ),
            (
                "[serve]\nsocketmap = []\n",
                "serve: serve.socketmap: no listener configured (socketmap and line are both empty)",
            ),
            ("[serve]\nmax_request = 0\n", "serve: serve.max_request: must be at least 1"),
            ("[serve]\nidle_timeout = \"0s\"\n", "serve: serve.idle_timeout: must be more than 0s"),
        ] {
            let config = Config::from_toml(toml).unwrap();
            assert_eq!(bind(&config.serve, None).unwrap_err().to_string(), want, "{toml}");
        }
        let config = Config::from_toml(&format!("[[serve.socketmap]]\npath = \"{}\"\n", file.display())).unwrap();
        let e = bind(&config.serve, None).unwrap_err().to_string();
        assert!(e.contains("exists and is not a socket"), "{e}");
        let config = Config::from_toml(&format!(
            "[[serve.socketmap]]\npath = \"{}\"\ngroup = \"no-such-group-mta-sts\"\n",
            d.join("g.sock").display()
        ))
        .unwrap();
        assert!(matches!(bind(&config.serve, None), Err(ServeError::Account { .. })));
        std::fs::remove_dir_all(&d).unwrap();
    }
}
