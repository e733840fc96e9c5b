//! One engine per SQLite database: `serve` holds an exclusive advisory lock (flock) on a file
//! beside the database for as long as it runs. The kernel releases it when the process ends,
//! however it ends (kill -9 included), so a crashed server never blocks the next start.

use std::io::{Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};

/// Held while the server runs; dropping it releases the database for another server.
#[derive(Debug)]
pub struct EngineLock {
    _file: Option<std::fs::File>,
    pub path: Option<PathBuf>,
}

impl EngineLock {
    /// Locks the database behind `database_url`, or says who holds it. An in-memory database
    /// needs no lock.
    pub fn acquire(database_url: &str) -> anyhow::Result<Self> {
        let Some(db) = super::sqlite_file(database_url) else {
            return Ok(Self { _file: None, path: None });
        };
        let path = lock_path(&db);
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open the lock file {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                anyhow::bail!(
                    "another `switchyard serve`{} is already running on the database {}: stop it \
                     first. One server drives the campaigns of a SQLite database (its lock is {}); \
                     to run several replicas, use PostgreSQL",
                    if holder.is_empty() { String::new() } else { format!(" ({holder})") },
                    db.display(),
                    path.display()
                );
            }
            Err(std::fs::TryLockError::Error(e)) => {
                anyhow::bail!("cannot lock {}: {e}", path.display())
            }
        }
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "pid {}", std::process::id())?;
        file.flush()?;
        Ok(Self { _file: Some(file), path: Some(path) })
    }
}

fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(".lock");
    db.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_database_is_refused_naming_the_holder_and_a_dropped_one_is_free() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("s.db").display());
        let first = EngineLock::acquire(&url).expect("first lock");
        let err = EngineLock::acquire(&url).expect_err("second lock").to_string();
        assert!(err.contains("another `switchyard serve`"), "{err}");
        assert!(err.contains(&format!("pid {}", std::process::id())), "{err}");
        drop(first);
        EngineLock::acquire(&url).expect("free again after the holder went away");
        assert!(EngineLock::acquire("sqlite::memory:").is_ok());
    }
}
