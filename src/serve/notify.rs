//! The systemd readiness protocol (`sd_notify(3)`): one datagram of `KEY=value` lines to the
//! Unix socket named by `NOTIFY_SOCKET`, a path or, when it starts with `@`, an abstract socket
//! name. Written here with std rather than through libsystemd.

use std::io;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// The environment variable systemd sets for `Type=notify` services.
pub const ENV_VAR: &str = "NOTIFY_SOCKET";

/// Sends `state` (for example `"READY=1"`) to the socket in `NOTIFY_SOCKET`. Returns whether
/// there was one to send to.
///
/// # Errors
///
/// The socket error when `NOTIFY_SOCKET` is set but the datagram cannot be sent.
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os(ENV_VAR).filter(|v| !v.is_empty()) {
        Some(target) => send(target.as_encoded_bytes(), state).map(|()| true),
        None => Ok(false),
    }
}

/// Sends `state` to the socket named `target`, in `NOTIFY_SOCKET` syntax.
///
/// # Errors
///
/// When `target` is not a usable socket name or the datagram cannot be sent.
pub fn send(target: &[u8], state: &str) -> io::Result<()> {
    let addr = address(target)?;
    let socket = UnixDatagram::unbound()?;
    let sent = socket.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(io::ErrorKind::WriteZero, "notify: datagram cut short"));
    }
    Ok(())
}

fn address(target: &[u8]) -> io::Result<SocketAddr> {
    match target.strip_prefix(b"@") {
        Some(name) => abstract_address(name),
        None => {
            use std::os::unix::ffi::OsStrExt;
            SocketAddr::from_pathname(std::ffi::OsStr::from_bytes(target))
        }
    }
}

#[cfg(any(target_os = "linux", target_os = "android"))]
fn abstract_address(name: &[u8]) -> io::Result<SocketAddr> {
    use std::os::linux::net::SocketAddrExt;
    SocketAddr::from_abstract_name(name)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn abstract_address(_name: &[u8]) -> io::Result<SocketAddr> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "notify: abstract sockets exist on Linux only"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_socket_receives_the_datagram() {
        let dir = std::env::temp_dir().join(format!("mta-sts-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        send(path.as_os_str().as_encoded_bytes(), "READY=1\nSTATUS=serving").unwrap();
        let mut buf = [0u8; 64];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1\nSTATUS=serving");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn abstract_socket_receives_the_datagram() {
        use std::os::linux::net::SocketAddrExt;
        let name = format!("mta-sts-notify-test-{}", std::process::id());
        let server = UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
        send(format!("@{name}").as_bytes(), "READY=1").unwrap();
        let mut buf = [0u8; 16];
        let n = server.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
    }

    #[test]
    fn a_missing_socket_is_an_error() {
        assert!(send(b"/nonexistent/mta-sts/notify.sock", "READY=1").is_err());
    }
}
