//! An on-disk cache of compiled routers: wasmtime's serialized form of an
//! optimized (Cranelift) module or component, keyed by the SHA-256 of the router's bytes
//! and by the engine's compatibility fingerprint, so loading a router
//! optimized before (by this process or an earlier one) compiles nothing
//! and runs optimized code at once.
//!
//! A cache file holds native code that is run as-is, so the cache is only
//! as trustworthy as its folder: the folder must not be writable by anyone
//! but the process's user (checked on Unix), and every file carries a
//! SHA-256 of its contents, checked before use, so a torn or corrupted file
//! is recompiled instead of run.
//!
//! The folder is bounded: past `KEEP_FILES` files or `KEEP_BYTES`
//! bytes, the least recently used go when a new one is stored (a router
//! that comes back is compiled again). A file read back counts as used.

use std::fs;
use std::hash::{Hash, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Engine, Module, Precompiled};

use super::runtime::Code;

use crate::error::{Error, Result};
use crate::router::hex;

/// The length of the digest trailer at the end of every cache file.
const DIGEST_LEN: usize = 32;

/// The most compiled routers the folder keeps.
const KEEP_FILES: usize = 64;

/// The most bytes of compiled routers the folder keeps (a module is about
/// a megabyte, a component tens).
const KEEP_BYTES: u64 = 1 << 30;

/// A temporary file this old is a write that never finished.
const STALE_TEMPORARY: Duration = Duration::from_secs(3600);

/// Where compiled routers are kept.
#[derive(Debug)]
pub(crate) struct CompiledCache {
    dir: PathBuf,
    /// The engine's compatibility fingerprint, in hex: part of every file
    /// name, so another wasmtime version or configuration never reads it.
    engine_tag: String,
}

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.display().to_string(),
        source,
    }
}

impl CompiledCache {
    /// Opens (creating it, private to this user) the cache folder `dir`.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when it cannot be created; [`Error::Config`] when it is
    /// not a folder, or others than its owner may write to it.
    pub(crate) fn open(engine: &Engine, dir: &Path) -> Result<Self> {
        create_private_dir(dir).map_err(|e| io_error(dir, e))?;
        check_private(dir)?;
        let mut hasher = std::hash::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        Ok(CompiledCache {
            dir: dir.to_path_buf(),
            engine_tag: format!("{:016x}", hasher.finish()),
        })
    }

    fn path_for(&self, source_hash: &[u8; 32]) -> PathBuf {
        self.dir.join(format!("{}-{}.cwasm", hex(source_hash), self.engine_tag))
    }

    /// The module compiled from the bytes whose SHA-256 is `source_hash`,
    /// when a sound entry is there. A cache that cannot be read costs only
    /// a compile (with a warning).
    pub(crate) fn lookup(&self, engine: &Engine, source_hash: &[u8; 32]) -> Option<Code> {
        self.read(engine, &self.path_for(source_hash))
    }

    /// Stores `module`, compiled from the bytes whose SHA-256 is
    /// `source_hash`. A cache that cannot be written costs only the next
    /// compile (with a warning).
    pub(crate) fn store(&self, source_hash: &[u8; 32], code: &Code) {
        let path = self.path_for(source_hash);
        if let Err(e) = self.write(&path, code) {
            tracing::warn!(path = %path.display(), "could not store a compiled router: {e}");
            return;
        }
        prune(&self.dir, KEEP_FILES, KEEP_BYTES);
    }

    /// A cached module, if the file is there, whole, and this engine's.
    fn read(&self, engine: &Engine, path: &Path) -> Option<Code> {
        let contents = match fs::read(path) {
            Ok(contents) => contents,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), "could not read a compiled router: {e}");
                return None;
            }
        };
        let Some(body_len) = contents.len().checked_sub(DIGEST_LEN) else {
            tracing::warn!(path = %path.display(), "a compiled router is truncated: compiling again");
            return None;
        };
        let (body, digest) = contents.split_at(body_len);
        if Sha256::digest(body)[..] != *digest {
            tracing::warn!(path = %path.display(), "a compiled router is corrupted: compiling again");
            return None;
        }
        match deserialize(engine, body) {
            Ok(code) => {
                mark_used(path);
                Some(code)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "a compiled router was refused ({e}): compiling again");
                None
            }
        }
    }

    /// Stores a module: written to a temporary file, then renamed into
    /// place, so a reader never sees half a file.
    fn write(&self, path: &Path, code: &Code) -> std::result::Result<(), String> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let serialized = match code {
            Code::Module(module) => module.serialize(),
            Code::Component(component) => component.serialize(),
        };
        let mut body = serialized.map_err(|e| e.to_string())?;
        let digest = Sha256::digest(&body);
        body.extend_from_slice(&digest);
        let temp = path.with_extension(format!(
            "tmp.{}.{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let written = fs::File::create(&temp)
            .and_then(|mut file| file.write_all(&body).and_then(|()| file.sync_all()))
            .and_then(|()| fs::rename(&temp, path));
        if let Err(e) = written {
            let _ = fs::remove_file(&temp);
            return Err(e.to_string());
        }
        Ok(())
    }
}

/// Marks a cache file as just used (its modification time), so that
/// pruning keeps it over files not read for longer.
fn mark_used(path: &Path) {
    let marked = fs::File::options()
        .write(true)
        .open(path)
        .and_then(|file| file.set_modified(SystemTime::now()));
    if let Err(e) = marked {
        tracing::debug!(path = %path.display(), "could not mark a compiled router as used: {e}");
    }
}

/// Removes the least recently used compiled routers in `dir` past
/// `keep_files` files or `keep_bytes` bytes (the most recent one always
/// stays), and temporary files of writes that never finished. Files of
/// another wasmtime version or configuration are never read again, so they
/// are the first to go. Other files are left alone. A file another process
/// is reading stays readable to it; one it was about to read is compiled
/// again.
fn prune(dir: &Path, keep_files: usize, keep_bytes: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let now = SystemTime::now();
    let mut compiled = Vec::new();
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else { continue };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !meta.is_file() {
            continue;
        }
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if name.contains(".tmp.") {
            if now.duration_since(modified).is_ok_and(|age| age > STALE_TEMPORARY) {
                remove(&entry.path());
            }
        } else if name.ends_with(".cwasm") {
            compiled.push((modified, meta.len(), entry.path()));
        }
    }
    // The most recently used first.
    compiled.sort_by_key(|&(modified, _, _)| std::cmp::Reverse(modified));
    let mut bytes = 0u64;
    for (kept, (_, len, path)) in compiled.into_iter().enumerate() {
        bytes = bytes.saturating_add(len);
        if kept > 0 && (kept >= keep_files || bytes > keep_bytes) {
            remove(&path);
        }
    }
}

fn remove(path: &Path) {
    match fs::remove_file(path) {
        Ok(()) => tracing::debug!(path = %path.display(), "removed a compiled router not used lately"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(path = %path.display(), "could not remove an old compiled router: {e}"),
    }
}

/// Turns a cache file's body back into a module or a component (wasmtime's
/// header says which).
///
/// This is the host's only `unsafe` code. wasmtime cannot check that
/// serialized bytes hold the code it once produced: it checks their format,
/// its own version and the engine's settings, and then runs the native code
/// they contain.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, body: &[u8]) -> wasmtime::Result<Code> {
    let kind = Engine::detect_precompiled(body);
    // SAFETY: `body` was written by `CompiledCache::write`, from
    // `Module::serialize` or `Component::serialize` of code this engine's
    // configuration compiled (the file name carries the engine's
    // compatibility fingerprint, and wasmtime checks version, settings and
    // kind again). Nobody else writes the folder: `CompiledCache::open`
    // refuses a folder that others may write to, and the digest checked by
    // the caller rules out a torn or corrupted file. `deserialize` copies
    // the bytes, so nothing changes them while wasmtime uses them.
    unsafe {
        match kind {
            Some(Precompiled::Component) => Component::deserialize(engine, body).map(Code::Component),
            _ => Module::deserialize(engine, body).map(Code::Module),
        }
    }
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    fs::DirBuilder::new().recursive(true).mode(0o700).create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    fs::create_dir_all(dir)
}

#[cfg(unix)]
fn check_private(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let meta = fs::metadata(dir).map_err(|e| io_error(dir, e))?;
    let refuse = |message: String| Error::Config {
        origin: dir.display().to_string(),
        message,
    };
    if !meta.is_dir() {
        return Err(refuse("the compiled router cache must be a folder".into()));
    }
    let mode = meta.permissions().mode();
    if mode & 0o022 != 0 {
        return Err(refuse(format!(
            "the compiled router cache may be written by others (mode {:o}): its files are run as native code; \
             make it private with `chmod 700 {}`",
            mode & 0o777,
            dir.display()
        )));
    }
    // The folder must be this user's: std has no `geteuid`, so compare with
    // the owner of a file this process creates there.
    let probe = dir.join(format!(".owner-check.{}", std::process::id()));
    let owner = fs::File::create(&probe)
        .and_then(|file| file.metadata())
        .map(|m| m.uid());
    let _ = fs::remove_file(&probe);
    match owner {
        Ok(uid) if uid == meta.uid() => Ok(()),
        Ok(_) => Err(refuse(
            "the compiled router cache belongs to another user: its files are run as native code; \
             use a folder of this user's"
                .into(),
        )),
        Err(e) => Err(io_error(dir, e)),
    }
}

#[cfg(not(unix))]
fn check_private(_dir: &Path) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh folder with `files` (name, bytes, minutes since last used).
    fn folder(test: &str, files: &[(&str, usize, u64)]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("dbroute-prune-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        for &(name, len, minutes) in files {
            let file = fs::File::create(dir.join(name)).unwrap();
            file.set_len(len as u64).unwrap();
            file.set_modified(SystemTime::now() - Duration::from_secs(60 * minutes))
                .unwrap();
        }
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        fs::remove_dir_all(dir).unwrap();
        names
    }

    #[test]
    fn the_least_recently_used_go_past_the_count() {
        let dir = folder(
            "count",
            &[
                ("a.cwasm", 10, 50),
                ("b.cwasm", 10, 1),
                ("c.cwasm", 10, 30),
                ("d.cwasm", 10, 2),
                ("notes.txt", 10, 99),
            ],
        );
        prune(&dir, 2, u64::MAX);
        assert_eq!(names(&dir), ["b.cwasm", "d.cwasm", "notes.txt"]);
    }

    #[test]
    fn the_least_recently_used_go_past_the_bytes_but_the_newest_stays() {
        let dir = folder("bytes", &[("a.cwasm", 10, 3), ("b.cwasm", 10, 2), ("c.cwasm", 10, 1)]);
        prune(&dir, 10, 25);
        assert_eq!(names(&dir), ["b.cwasm", "c.cwasm"]);
        let dir = folder("huge", &[("old.cwasm", 10, 2), ("new.cwasm", 100, 1)]);
        prune(&dir, 10, 25);
        assert_eq!(names(&dir), ["new.cwasm"], "the newest stays even over the bytes");
    }

    #[test]
    fn only_stale_temporary_files_are_removed() {
        let dir = folder(
            "temporary",
            &[
                ("a.cwasm.tmp.1.0", 10, 120),
                ("b.cwasm.tmp.1.1", 10, 1),
                ("c.cwasm", 10, 1),
            ],
        );
        prune(&dir, 10, u64::MAX);
        assert_eq!(names(&dir), ["b.cwasm.tmp.1.1", "c.cwasm"]);
    }
}
