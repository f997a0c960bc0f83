//! Writing files without following planted links and without a window in which a secret
//! sits in a file with looser permissions than it will end with.
//!
//! Every file is first written under a fresh temporary name in the same directory, opened
//! with `O_CREAT | O_EXCL | O_NOFOLLOW` (a symlink or any other file already at that name
//! makes the open fail instead of being followed or truncated) and created with its final
//! mode, then moved into place: [`replace`] renames over the target (a symlink at the target
//! is replaced, never followed), [`publish_new`] hard-links to the target, which fails when
//! anything, a symlink included, already has that name.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Mode of private keys and evidence: read and write for the owner only.
pub const MODE_PRIVATE: u32 = 0o600;
/// Mode of public files (certificates, log lists): readable by everyone.
pub const MODE_PUBLIC: u32 = 0o644;

/// The suffix of every temporary file this module creates.
pub const TEMP_SUFFIX: &str = ".tmp";

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Create `path`, which must not exist, with `mode` (less the umask), never following a
/// symlink at `path`.
pub fn create_new(path: &Path, mode: u32) -> std::io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)
}

/// The temporary name used for `target`: `.<file name>.<pid>-<n>.tmp` in the same directory
/// (hidden, and recognisable by [`is_temp_name_for`]).
fn temp_path(target: &Path, n: u64) -> std::io::Result<PathBuf> {
    let name = target.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{} has no file name", target.display()),
        )
    })?;
    let name = format!(
        ".{}.{}-{n}{TEMP_SUFFIX}",
        name.to_string_lossy(),
        std::process::id()
    );
    Ok(target.with_file_name(name))
}

/// Whether `name` is a temporary name this module made for a file named `final_name`.
pub fn is_temp_name_for(name: &str, final_name: impl Fn(&str) -> bool) -> bool {
    let Some(rest) = name.strip_prefix('.') else {
        return false;
    };
    let Some(rest) = rest.strip_suffix(TEMP_SUFFIX) else {
        return false;
    };
    let Some((stem, unique)) = rest.rsplit_once('.') else {
        return false;
    };
    let Some((pid, n)) = unique.split_once('-') else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    digits(pid) && digits(n) && final_name(stem)
}

/// Write `bytes` to a new temporary file beside `target`, created with `mode`; returns its
/// path. The caller moves it into place (or removes it).
fn write_temp(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<PathBuf> {
    let mut last = None;
    for _ in 0..16 {
        let tmp = temp_path(target, COUNTER.fetch_add(1, Ordering::Relaxed))?;
        match create_new(&tmp, mode) {
            Ok(mut file) => {
                let written = file.write_all(bytes).and_then(|()| file.sync_all());
                if let Err(e) = written {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                return Ok(tmp);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free temporary name")))
}

/// Atomically replace `target` with a new file holding `bytes`, created with `mode` (the
/// mode holds from the first byte; an existing file, or a symlink, at `target` is replaced,
/// not written through).
pub fn replace(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = write_temp(target, bytes, mode)?;
    std::fs::rename(&tmp, target).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Publish a new file holding `bytes` at `target`, created with `mode`. Fails with
/// [`std::io::ErrorKind::AlreadyExists`] when anything (a symlink included) already has that
/// name; nothing is written through it.
pub fn publish_new(target: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let tmp = write_temp(target, bytes, mode)?;
    let linked = std::fs::hard_link(&tmp, target);
    let _ = std::fs::remove_file(&tmp);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn replace_does_not_write_through_a_symlink_and_sets_the_mode() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o644)).unwrap();
        let target = dir.path().join("key.pem");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        replace(&target, b"secret", MODE_PRIVATE).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(mode(&victim), 0o644);
        assert!(std::fs::symlink_metadata(&target).unwrap().is_file());
        assert_eq!(std::fs::read(&target).unwrap(), b"secret");
        assert_eq!(mode(&target), 0o600);
        // Replacing a regular file with looser permissions gives a fresh private file.
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        replace(&target, b"secret2", MODE_PRIVATE).unwrap();
        assert_eq!(mode(&target), 0o600);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn publish_new_refuses_an_existing_name_even_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let target = dir.path().join("a.pem");
        std::os::unix::fs::symlink(&victim, &target).unwrap();
        let e = publish_new(&target, b"chain", MODE_PRIVATE).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let fresh = dir.path().join("b.pem");
        publish_new(&fresh, b"chain", MODE_PRIVATE).unwrap();
        assert_eq!(std::fs::read(&fresh).unwrap(), b"chain");
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn create_new_does_not_follow_a_dangling_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("x");
        std::os::unix::fs::symlink(dir.path().join("created-through-link"), &target).unwrap();
        assert!(create_new(&target, MODE_PRIVATE).is_err());
        assert!(!dir.path().join("created-through-link").exists());
    }

    #[test]
    fn temp_names_are_recognised() {
        let target = Path::new("/d/2024-01-01T000000Z-0123456789abcdef.pem");
        let tmp = temp_path(target, 7).unwrap();
        let name = tmp.file_name().unwrap().to_str().unwrap();
        assert!(is_temp_name_for(name, |s| s == "2024-01-01T000000Z-0123456789abcdef.pem"));
        assert!(!is_temp_name_for(name, |_| false));
        assert!(!is_temp_name_for("precious.db", |_| true));
        assert!(!is_temp_name_for(".x.pem.12-a.tmp", |_| true));
    }
}
