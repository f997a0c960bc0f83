//! Dropping root after the listeners are bound (`user` / `group` in the configuration), and
//! refusing to stay root on a non-loopback address unless told to (`allow_root`).
//!
//! The drop is, in this order: `setgroups([])` (no supplementary groups), `setgid`, `setuid`,
//! through libc so that every thread of the process changes (glibc applies set*id to all
//! threads; the async runtime's workers already exist when the drop happens). Afterwards the
//! real, effective and saved uid must all be the target and `setuid(0)` must fail, or ctdns
//! stops.

use std::net::SocketAddr;

use nix::unistd::{Gid, Group, Uid, User};

/// Why privileges could not be checked or dropped. Each variant names the configuration key
/// or the step that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PrivilegeError {
    /// Running as root, listening on a non-loopback address, with neither `user` nor
    /// `allow_root` set.
    #[error(
        "config key `user`: ctdns is running as root and listens on {addr}, which is not a \
         loopback address; set `user` (and optionally `group`) to drop privileges after \
         binding, or `allow_root = true` to keep root deliberately"
    )]
    RootOnPublicAddress {
        /// The first non-loopback listen address.
        addr: SocketAddr,
    },
    /// The configured user does not exist.
    #[error("config key `user`: no user named `{name}`")]
    UnknownUser {
        /// The name.
        name: String,
    },
    /// The configured group does not exist.
    #[error("config key `group`: no group named `{name}`")]
    UnknownGroup {
        /// The name.
        name: String,
    },
    /// The user or group database could not be read.
    #[error("config key `{key}`: cannot look up `{name}`: {source}")]
    Lookup {
        /// `user` or `group`.
        key: &'static str,
        /// The name looked up.
        name: String,
        /// The error.
        source: nix::Error,
    },
    /// `user` is set but ctdns is neither root nor already that user.
    #[error(
        "config key `user`: cannot switch to `{name}` (uid {uid}): ctdns is not running as root \
         (uid {current})"
    )]
    NotRoot {
        /// The configured user.
        name: String,
        /// Its uid.
        uid: u32,
        /// The current effective uid.
        current: u32,
    },
    /// The configured user is root itself.
    #[error("config key `user`: `{name}` has uid 0; name an unprivileged user")]
    UserIsRoot {
        /// The configured user.
        name: String,
    },
    /// A step of the drop failed.
    #[error("dropping privileges: {step} failed: {source}")]
    Drop {
        /// `setgroups`, `setgid` or `setuid`.
        step: &'static str,
        /// The error.
        source: nix::Error,
    },
    /// The drop did not take (still root, or a uid/gid other than the target).
    #[error("dropping privileges: {0}")]
    NotDropped(String),
}

impl PrivilegeError {
    /// Whether the configuration is at fault (exit code 2) rather than the system (exit 1).
    pub fn is_config_error(&self) -> bool {
        !matches!(self, Self::Drop { .. } | Self::NotDropped(_))
    }
}

/// The user (and group) to run as.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The user name.
    pub user: String,
    /// Its uid.
    pub uid: u32,
    /// The gid to run with: the configured group's, else the user's primary group.
    pub gid: u32,
}

/// Whether `addr` is on the loopback network (IPv4-mapped loopback included).
pub fn is_loopback(addr: &SocketAddr) -> bool {
    addr.ip().to_canonical().is_loopback()
}

/// Refuse to run as root (`euid_is_root`) on a non-loopback address unless `user` is set or
/// `allow_root` is true.
pub fn check_root_listen(
    listen: &[SocketAddr],
    user: Option<&str>,
    allow_root: bool,
    euid_is_root: bool,
) -> Result<(), PrivilegeError> {
    if !euid_is_root || user.is_some() || allow_root {
        return Ok(());
    }
    match listen.iter().find(|a| !is_loopback(a)) {
        Some(addr) => Err(PrivilegeError::RootOnPublicAddress { addr: *addr }),
        None => Ok(()),
    }
}

/// Look up `user` and `group` (default: the user's primary group).
pub fn resolve(user: &str, group: Option<&str>) -> Result<Target, PrivilegeError> {
    let u = User::from_name(user)
        .map_err(|source| PrivilegeError::Lookup {
            key: "user",
            name: user.to_string(),
            source,
        })?
        .ok_or_else(|| PrivilegeError::UnknownUser {
            name: user.to_string(),
        })?;
    if u.uid.is_root() {
        return Err(PrivilegeError::UserIsRoot {
            name: user.to_string(),
        });
    }
    let gid = match group {
        Some(name) => {
            Group::from_name(name)
                .map_err(|source| PrivilegeError::Lookup {
                    key: "group",
                    name: name.to_string(),
                    source,
                })?
                .ok_or_else(|| PrivilegeError::UnknownGroup {
                    name: name.to_string(),
                })?
                .gid
        }
        None => u.gid,
    };
    Ok(Target {
        user: user.to_string(),
        uid: u.uid.as_raw(),
        gid: gid.as_raw(),
    })
}

/// What [`drop_to`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dropped {
    /// Root was dropped.
    Dropped,
    /// ctdns already ran as the target user; nothing to drop.
    AlreadyTarget,
}

/// Drop from root to `target`: `setgroups([])`, `setgid`, `setuid`, then verify.
pub fn drop_to(target: &Target) -> Result<Dropped, PrivilegeError> {
    let euid = nix::unistd::geteuid();
    if !euid.is_root() {
        if euid.as_raw() == target.uid && nix::unistd::getuid().as_raw() == target.uid {
            return Ok(Dropped::AlreadyTarget);
        }
        return Err(PrivilegeError::NotRoot {
            name: target.user.clone(),
            uid: target.uid,
            current: euid.as_raw(),
        });
    }
    let step = |step: &'static str| move |source| PrivilegeError::Drop { step, source };
    nix::unistd::setgroups(&[]).map_err(step("setgroups"))?;
    nix::unistd::setgid(Gid::from_raw(target.gid)).map_err(step("setgid"))?;
    nix::unistd::setuid(Uid::from_raw(target.uid)).map_err(step("setuid"))?;
    verify(target)?;
    Ok(Dropped::Dropped)
}

fn verify(target: &Target) -> Result<(), PrivilegeError> {
    let (uid, euid) = (nix::unistd::getuid(), nix::unistd::geteuid());
    let (gid, egid) = (nix::unistd::getgid(), nix::unistd::getegid());
    if uid.is_root() || euid.is_root() {
        return Err(PrivilegeError::NotDropped(format!(
            "still root (uid {uid}, euid {euid})"
        )));
    }
    if uid.as_raw() != target.uid || euid.as_raw() != target.uid {
        return Err(PrivilegeError::NotDropped(format!(
            "uid {uid} / euid {euid}, expected {}",
            target.uid
        )));
    }
    if gid.as_raw() != target.gid || egid.as_raw() != target.gid {
        return Err(PrivilegeError::NotDropped(format!(
            "gid {gid} / egid {egid}, expected {}",
            target.gid
        )));
    }
    if nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(PrivilegeError::NotDropped(
            "setuid(0) still succeeds: root could be regained".into(),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(list: &[&str]) -> Vec<SocketAddr> {
        list.iter().map(|a| a.parse().unwrap()).collect()
    }

    #[test]
    fn root_on_a_public_address_needs_user_or_allow_root() {
        let public = addrs(&["127.0.0.1:53", "0.0.0.0:53"]);
        let e = check_root_listen(&public, None, false, true).unwrap_err();
        assert!(
            matches!(e, PrivilegeError::RootOnPublicAddress { addr } if addr.port() == 53 && addr.ip().is_unspecified()),
            "{e}"
        );
        assert!(e.to_string().contains("allow_root"), "{e}");
        assert!(e.is_config_error());
        assert!(check_root_listen(&public, Some("nobody"), false, true).is_ok());
        assert!(check_root_listen(&public, None, true, true).is_ok());
        assert!(check_root_listen(&public, None, false, false).is_ok());
        let local = addrs(&[
            "127.0.0.1:53",
            "[::1]:53",
            "127.0.0.53:53",
            "[::ffff:127.0.0.1]:53",
        ]);
        assert!(check_root_listen(&local, None, false, true).is_ok());
        for a in ["[::]:53", "192.0.2.1:53", "[2001:db8::1]:53"] {
            assert!(
                check_root_listen(&addrs(&[a]), None, false, true).is_err(),
                "{a}"
            );
        }
    }

    #[test]
    fn users_and_groups_resolve_by_name() {
        let t = resolve("nobody", None).unwrap();
        let nobody = User::from_name("nobody").unwrap().unwrap();
        assert_eq!(t.uid, nobody.uid.as_raw());
        assert_eq!(t.gid, nobody.gid.as_raw());
        let root_group = resolve("nobody", Some("root")).unwrap();
        assert_eq!(root_group.gid, 0);
        assert!(matches!(
            resolve("no-such-user-ctdns", None),
            Err(PrivilegeError::UnknownUser { .. })
        ));
        assert!(matches!(
            resolve("nobody", Some("no-such-group-ctdns")),
            Err(PrivilegeError::UnknownGroup { .. })
        ));
        let e = resolve("root", None).unwrap_err();
        assert!(matches!(e, PrivilegeError::UserIsRoot { .. }), "{e}");
        assert!(e.to_string().contains("`user`"), "{e}");
    }
}
