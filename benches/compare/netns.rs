//! The private network the comparison runs in: what `unshare -mn` does, done in process before
//! any thread starts. A new network namespace holds only a loopback interface, which is brought
//! up; a new mount namespace, made private first so that nothing propagates back to the host,
//! gets a resolv.conf naming 127.0.0.1 bind-mounted over /etc/resolv.conf. Both daemons then
//! use the DNS fixture on 127.0.0.1:53 and the HTTPS fixture on 127.0.0.1:443 unchanged, as they
//! would use a real resolver and real policy hosts.

use std::ffi::CString;
use std::io;
use std::path::Path;
use std::ptr;

/// Moves this process into a new network and mount namespace with loopback up, and makes
/// `resolv_conf` this namespace's /etc/resolv.conf. Must run before any thread is started
/// (unsharing the mount namespace fails with EINVAL in a threaded process).
///
/// # Errors
///
/// The failing step and its OS error: not root, no namespace support (a container without
/// CAP_SYS_ADMIN), no /etc/resolv.conf to cover.
pub fn enter(resolv_conf: &Path) -> Result<(), String> {
    let step = |what: &str, rc: libc::c_int| {
        if rc == 0 {
            Ok(())
        } else {
            Err(format!("{what}: {}", io::Error::last_os_error()))
        }
    };
    // SAFETY: plain system calls on this process; no thread exists yet.
    step("unshare(CLONE_NEWNS | CLONE_NEWNET)", unsafe { libc::unshare(libc::CLONE_NEWNS | libc::CLONE_NEWNET) })?;
    // SAFETY: constant C strings; a null source, type and data are allowed for a propagation
    // change.
    step("mount --make-rprivate /", unsafe {
        libc::mount(ptr::null(), c"/".as_ptr(), ptr::null(), libc::MS_REC | libc::MS_PRIVATE, ptr::null())
    })?;
    loopback_up()?;
    let source = CString::new(resolv_conf.as_os_str().as_encoded_bytes()).map_err(|e| e.to_string())?;
    // SAFETY: NUL-terminated paths that outlive the call.
    step("mount --bind resolv.conf /etc/resolv.conf", unsafe {
        libc::mount(source.as_ptr(), c"/etc/resolv.conf".as_ptr(), ptr::null(), libc::MS_BIND, ptr::null())
    })
}

/// `ip link set lo up` without needing iproute2.
fn loopback_up() -> Result<(), String> {
    // SAFETY: a datagram socket used only for the two ioctls below, closed before returning.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(format!("socket for SIOCSIFFLAGS: {}", io::Error::last_os_error()));
    }
    // SAFETY: an all-zero ifreq is valid; the name "lo" fits IFNAMSIZ with its NUL.
    let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
        *dst = *src as libc::c_char;
    }
    // SAFETY: fd is open and ifr is a valid ifreq for these requests.
    let result = unsafe {
        if libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut ifr) != 0 {
            Err(format!("SIOCGIFFLAGS lo: {}", io::Error::last_os_error()))
        } else {
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(fd, libc::SIOCSIFFLAGS, &ifr) != 0 {
                Err(format!("SIOCSIFFLAGS lo up: {}", io::Error::last_os_error()))
            } else {
                Ok(())
            }
        }
    };
    // SAFETY: fd was opened above and is not used afterwards.
    unsafe { libc::close(fd) };
    result
}

/// Raises the open-file limit to the hard limit (inherited by the daemons): 1,000 concurrent
/// client connections plus as many outgoing HTTPS connections exceed the usual 1,024.
pub fn raise_nofile() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: a valid rlimit out-parameter.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 && lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max.min(1 << 20);
        // SAFETY: a valid rlimit no higher than the hard limit.
        unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    }
}

/// Resident set size of a process in bytes (VmRSS from /proc), if it is still running.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
