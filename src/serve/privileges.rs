//! Users, groups and the privilege drop of a daemon started as root.
//!
//! The daemon binds its sockets first (a Unix socket may sit in a root-owned directory), gives
//! them their owner, group and mode, then sets its supplementary groups, group and user for
//! real (not only the effective ids, which upstream's `-u`/`-g` set and which leave the process
//! able to regain root), and only then opens the cache file, so that the file belongs to the
//! daemon's user. The system calls go through `nix`, which keeps this crate free of `unsafe`.

use std::ffi::CString;

use nix::unistd::{self, Gid, Group, Uid, User};

use super::error::ServeError;

/// The user and group the daemon is to run as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user's name, for the supplementary groups; `None` when only a group was configured.
    pub user: Option<String>,
    /// The user id.
    pub uid: Uid,
    /// The group id.
    pub gid: Gid,
}

/// Looks up the configured `user` and `group`; `None` when neither is configured. The group
/// defaults to the user's primary group, the user to the current one.
///
/// # Errors
///
/// [`ServeError::Account`] when a name does not exist or the lookup fails.
pub fn identity(user: Option<&str>, group: Option<&str>) -> Result<Option<Identity>, ServeError> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    let (name, uid, primary) = match user {
        Some(name) => {
            let u = lookup_user(name)?;
            (Some(u.name), u.uid, u.gid)
        }
        None => (None, unistd::getuid(), unistd::getgid()),
    };
    let gid = match group {
        Some(name) => lookup_group(name)?,
        None => primary,
    };
    Ok(Some(Identity { user: name, uid, gid }))
}

/// The uid of a user name.
///
/// # Errors
///
/// [`ServeError::Account`] when it does not exist or the lookup fails.
pub fn user_id(name: &str) -> Result<Uid, ServeError> {
    lookup_user(name).map(|u| u.uid)
}

/// The gid of a group name.
///
/// # Errors
///
/// [`ServeError::Account`] when it does not exist or the lookup fails.
pub fn group_id(name: &str) -> Result<Gid, ServeError> {
    lookup_group(name)
}

fn lookup_user(name: &str) -> Result<User, ServeError> {
    let account = |reason: String| ServeError::Account { kind: "user", name: name.to_owned(), reason };
    match User::from_name(name) {
        Ok(Some(u)) => Ok(u),
        Ok(None) => Err(account("no such user".into())),
        Err(e) => Err(account(e.desc().to_owned())),
    }
}

fn lookup_group(name: &str) -> Result<Gid, ServeError> {
    let account = |reason: String| ServeError::Account { kind: "group", name: name.to_owned(), reason };
    match Group::from_name(name) {
        Ok(Some(g)) => Ok(g.gid),
        Ok(None) => Err(account("no such group".into())),
        Err(e) => Err(account(e.desc().to_owned())),
    }
}

/// Switches the whole process to `identity`: supplementary groups (the user's, or just the
/// group), then the group, then the user. Returns whether anything changed. Must run before the
/// daemon starts threads that should not keep root.
///
/// # Errors
///
/// [`ServeError::Privileges`] when a step fails, when the process is not root and is asked to
/// become someone else, or when root could be regained afterwards.
pub fn drop_to(identity: &Identity) -> Result<bool, ServeError> {
    let fail = |step: &'static str, reason: String| ServeError::Privileges { step, reason };
    if !unistd::geteuid().is_root() {
        if unistd::getuid() == identity.uid && unistd::getgid() == identity.gid {
            return Ok(false);
        }
        return Err(fail("setuid", "only root can switch to another user or group".into()));
    }
    match &identity.user {
        Some(name) => {
            let name = CString::new(name.as_str()).map_err(|_| fail("initgroups", "user name holds NUL".into()))?;
            unistd::initgroups(&name, identity.gid).map_err(|e| fail("initgroups", e.desc().into()))?;
        }
        None => unistd::setgroups(&[identity.gid]).map_err(|e| fail("setgroups", e.desc().into()))?,
    }
    unistd::setgid(identity.gid).map_err(|e| fail("setgid", e.desc().into()))?;
    unistd::setuid(identity.uid).map_err(|e| fail("setuid", e.desc().into()))?;
    if !identity.uid.is_root() && unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(fail("setuid", "root could be regained after the switch".into()));
    }
    Ok(true)
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups() {
        assert_eq!(user_id("root").unwrap(), Uid::from_raw(0));
        assert_eq!(group_id("root").unwrap(), Gid::from_raw(0));
        let e = user_id("no-such-user-mta-sts").unwrap_err();
        assert_eq!(e.to_string(), "serve: user \"no-such-user-mta-sts\": no such user");
        assert!(group_id("no-such-group-mta-sts").is_err());
        assert_eq!(identity(None, None).unwrap(), None);
        let me = identity(None, Some("root")).unwrap().unwrap();
        assert_eq!((me.user, me.gid), (None, Gid::from_raw(0)));
    }

    #[test]
    fn staying_who_we_are_is_no_switch() {
        let me = Identity { user: None, uid: unistd::getuid(), gid: unistd::getgid() };
        if !is_root() {
            assert!(!drop_to(&me).unwrap());
        }
    }
}
