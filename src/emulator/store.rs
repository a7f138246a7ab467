//! Persistence: an ordered map of typed records, made durable by an append-only journal
//! with group commit, compacted into a snapshot.
//!
//! Why a journal: a benchmark creates about a thousand resources, so rewriting one state
//! file per write (O(n) per request) is out. One file per record is O(1) but costs a file
//! fsync plus a directory fsync per record, and requests serialize on them (~190 atomic
//! writes/s on this machine's disk). The journal costs one `fdatasync` per *batch*:
//! handlers append entries to an in-memory buffer under the state lock, and after the lock
//! is released each request waits until its entries are on disk (`Journal::sync_to`); the
//! first waiter writes and syncs everything buffered so far, so concurrent requests share
//! one fsync (group commit). A request is answered only after its entries are durable, so
//! `kill -9` loses no acknowledged write; a torn last line (a crash mid-append) is ignored
//! on load, since nothing it holds was acknowledged.
//!
//! Compaction: on open, and whenever the journal passes [`COMPACT_BYTES`], the whole map is
//! written to `snapshot.jsonl` atomically (temp file, fsync, rename, directory fsync) and
//! the journal starts empty.
//!
//! Blob contents are content-addressed files (`data/<sha256>`), written and synced before
//! the journal entry that points at them, so a blob record is the commit point of an upload.
//!
//! The folder belongs to one emulator at a time: an OS advisory lock on `lock` is held from
//! open to [`Store::close`]. Two writers appending to one journal is how acknowledged writes
//! were lost (a torn, NUL-filled journal). The folder also gets a `.gitignore` of `*`, and
//! every file is created owner-only (0600 on unix): the journal and snapshot hold the
//! token-signing key and stored registry passwords.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Record;

/// Journal size that triggers a compaction.
const COMPACT_BYTES: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the state folder `{path}` is in use by another amlspec emulator (`amlspec emulator --state` or `plan`/`apply --emulator`); stop the other emulator first, or give `amlspec emulator` another folder with --state"
    )]
    Locked { path: PathBuf },
    #[error("the emulator's state folder `{path}` is closed (the emulator was stopped)")]
    Closed { path: PathBuf },
    #[error("failed to create state directory `{path}`")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("failed to read state file `{path}`")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("state file `{path}` is not valid at line {line}: {message}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("failed to write state file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// One journal or snapshot line: a record put, or a delete when `record` is absent.
#[derive(Serialize, Deserialize)]
struct Entry {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    record: Option<Record>,
}

#[derive(Default)]
struct Pending {
    buf: Vec<u8>,
    /// Sequence number of the last entry in `buf` (or of the last entry ever buffered).
    seq: u64,
}

struct JournalFile {
    file: fs::File,
    bytes: u64,
}

/// The durable half of a persistent store; shared so requests can wait for durability
/// without holding the state lock.
pub(crate) struct Journal {
    dir: PathBuf,
    pending: Mutex<Pending>,
    /// `None` once the store is closed: nothing may reach the folder after its lock is gone.
    file: Mutex<Option<JournalFile>>,
    durable: AtomicU64,
}

impl Journal {
    fn path(dir: &Path) -> PathBuf {
        dir.join("journal.jsonl")
    }

    fn append(&self, entry: &Entry) -> u64 {
        let mut line = serde_json::to_vec(entry).unwrap_or_default();
        line.push(b'\n');
        let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        p.buf.extend_from_slice(&line);
        p.seq += 1;
        p.seq
    }

    /// The sequence number of the newest buffered entry.
    pub(crate) fn last_seq(&self) -> u64 {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).seq
    }

    /// Returns once every entry up to `seq` is on disk. Concurrent callers share one write
    /// and one `fdatasync`.
    pub(crate) fn sync_to(&self, seq: u64) -> Result<(), StoreError> {
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if self.durable.load(Ordering::Acquire) >= seq {
            return Ok(());
        }
        let Some(file) = guard.as_mut() else {
            return Err(StoreError::Closed {
                path: self.dir.clone(),
            });
        };
        let (buf, upto) = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            (std::mem::take(&mut p.buf), p.seq)
        };
        let err = |source| StoreError::Write {
            path: Self::path(&self.dir),
            source,
        };
        file.file.write_all(&buf).map_err(err)?;
        file.file.sync_data().map_err(err)?;
        file.bytes += buf.len() as u64;
        self.durable.store(upto, Ordering::Release);
        Ok(())
    }
}

pub(crate) struct Store {
    records: BTreeMap<String, Record>,
    /// Blob contents by sha256; only used in memory mode (on disk they live in `data/`).
    data: HashMap<String, Bytes>,
    journal: Option<Arc<Journal>>,
    /// The locked `lock` file of a state folder; dropping it releases the folder.
    lock: Option<fs::File>,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Reads JSON lines; a torn final line (no newline, or unparsable at the end) is dropped.
fn read_entries(path: &Path, records: &mut BTreeMap<String, Record>) -> Result<(), StoreError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let lines: Vec<Vec<u8>> = io::BufReader::new(file)
        .split(b'\n')
        .collect::<Result<_, _>>()
        .map_err(|source| StoreError::Read {
            path: path.to_path_buf(),
            source,
        })?;
    let count = lines.len();
    for (i, line) in lines.into_iter().enumerate() {
        if line.is_empty() {
            continue;
        }
        match serde_json::from_slice::<Entry>(&line) {
            Ok(Entry {
                key,
                record: Some(r),
            }) => {
                records.insert(key, r);
            }
            Ok(Entry { key, record: None }) => {
                records.remove(&key);
            }
            // A crash in the middle of an append: that entry was never acknowledged.
            Err(_) if i + 1 == count => {}
            Err(e) => {
                return Err(StoreError::Corrupt {
                    path: path.to_path_buf(),
                    line: i + 1,
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

impl Store {
    pub(crate) fn in_memory() -> Store {
        Store {
            records: BTreeMap::new(),
            data: HashMap::new(),
            journal: None,
            lock: None,
        }
    }

    /// Opens (or creates) a state directory: takes its lock, then reads snapshot plus
    /// journal and compacts.
    pub(crate) fn open(dir: &Path) -> Result<Store, StoreError> {
        let data_dir = dir.join("data");
        for d in [dir, &data_dir] {
            fs::create_dir_all(d).map_err(|source| StoreError::CreateDir {
                path: d.to_path_buf(),
                source,
            })?;
        }
        let lock = lock_folder(dir)?;
        let ignore = dir.join(".gitignore");
        if !ignore.exists() {
            fs::write(&ignore, "*\n").map_err(|source| StoreError::Write {
                path: ignore.clone(),
                source,
            })?;
        }
        for name in ["snapshot.jsonl", "journal.jsonl"] {
            make_private(&dir.join(name))?;
        }
        let mut records = BTreeMap::new();
        read_entries(&dir.join("snapshot.jsonl"), &mut records)?;
        read_entries(&Journal::path(dir), &mut records)?;
        // Append to what is there until compaction has made it redundant.
        let file = open_journal(dir, false)?;
        let mut store = Store {
            records,
            data: HashMap::new(),
            journal: Some(Arc::new(Journal {
                dir: dir.to_path_buf(),
                pending: Mutex::new(Pending::default()),
                file: Mutex::new(Some(JournalFile { file, bytes: 0 })),
                durable: AtomicU64::new(0),
            })),
            lock: Some(lock),
        };
        store.compact()?;
        Ok(store)
    }

    /// Writes what is buffered, then lets go of the folder: later writes fail, so a request
    /// still in flight cannot touch a folder another emulator may own by then.
    pub(crate) fn close(&mut self) -> Result<(), StoreError> {
        let Some(j) = self.journal.clone() else {
            return Ok(());
        };
        if self.lock.is_none() {
            return Ok(());
        }
        let result = j.sync_to(j.last_seq());
        *j.file.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.lock = None;
        result
    }

    fn check_open(&self) -> Result<(), StoreError> {
        match &self.journal {
            Some(j) if j.file.lock().unwrap_or_else(|e| e.into_inner()).is_none() => {
                Err(StoreError::Closed {
                    path: j.dir.clone(),
                })
            }
            _ => Ok(()),
        }
    }

    /// The journal to wait on after a mutation (persistent stores only).
    pub(crate) fn journal(&self) -> Option<Arc<Journal>> {
        self.journal.clone()
    }

    pub(crate) fn get(&self, key: &str) -> Option<&Record> {
        self.records.get(key)
    }

    /// Records whose key starts with `prefix`, in key order.
    pub(crate) fn scan<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Record)> + 'a {
        self.records
            .range(prefix.to_string()..)
            .take_while(move |(k, _)| k.starts_with(prefix))
    }

    pub(crate) fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.scan(prefix).map(|(k, _)| k.clone()).collect()
    }

    /// Stores a record; durable once [`Journal::sync_to`] has passed this write.
    pub(crate) fn put(&mut self, key: &str, record: Record) -> Result<(), StoreError> {
        self.check_open()?;
        if let Some(j) = &self.journal {
            j.append(&Entry {
                key: key.to_string(),
                record: Some(record.clone()),
            });
        }
        self.records.insert(key.to_string(), record);
        self.maybe_compact()
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        self.check_open()?;
        let existed = self.records.remove(key).is_some();
        if existed && let Some(j) = &self.journal {
            j.append(&Entry {
                key: key.to_string(),
                record: None,
            });
        }
        Ok(existed)
    }

    fn maybe_compact(&mut self) -> Result<(), StoreError> {
        let Some(j) = &self.journal else {
            return Ok(());
        };
        let big = {
            let pending = j
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .buf
                .len() as u64;
            let written = j
                .file
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()
                .map_or(0, |f| f.bytes);
            pending + written > COMPACT_BYTES
        };
        if big { self.compact() } else { Ok(()) }
    }

    /// Writes every record to a fresh snapshot and empties the journal. The caller holds
    /// the state lock, so the map is exactly what the journal describes.
    fn compact(&mut self) -> Result<(), StoreError> {
        let Some(j) = &self.journal else {
            return Ok(());
        };
        let mut out = Vec::new();
        for (key, record) in &self.records {
            serde_json::to_writer(
                &mut out,
                &Entry {
                    key: key.clone(),
                    record: Some(record.clone()),
                },
            )
            .map_err(|e| StoreError::Corrupt {
                path: j.dir.clone(),
                line: 0,
                message: e.to_string(),
            })?;
            out.push(b'\n');
        }
        let mut file = j.file.lock().unwrap_or_else(|e| e.into_inner());
        if file.is_none() {
            return Err(StoreError::Closed {
                path: j.dir.clone(),
            });
        }
        write_atomic(&j.dir.join("snapshot.jsonl"), &out)?;
        // The snapshot holds everything buffered so far: drop it, start an empty journal.
        let upto = {
            let mut p = j.pending.lock().unwrap_or_else(|e| e.into_inner());
            p.buf.clear();
            p.seq
        };
        *file = Some(JournalFile {
            file: open_journal(&j.dir, true)?,
            bytes: 0,
        });
        sync_dir(&j.dir)?;
        j.durable.store(upto, Ordering::Release);
        Ok(())
    }

    /// Stores bytes by content hash and returns the hash (durable on return).
    pub(crate) fn put_data(&mut self, bytes: Bytes) -> Result<String, StoreError> {
        self.check_open()?;
        let hash = sha256_hex(&bytes);
        match &self.journal {
            Some(j) => {
                let path = j.dir.join("data").join(&hash);
                if !path.exists() {
                    write_atomic(&path, &bytes)?;
                }
            }
            None => {
                self.data.insert(hash.clone(), bytes);
            }
        }
        Ok(hash)
    }

    pub(crate) fn get_data(&self, hash: &str) -> Result<Bytes, StoreError> {
        match &self.journal {
            Some(j) => {
                let path = j.dir.join("data").join(hash);
                fs::read(&path)
                    .map(Bytes::from)
                    .map_err(|source| StoreError::Read { path, source })
            }
            None => Ok(self.data.get(hash).cloned().unwrap_or_default()),
        }
    }
}

/// Options that create a file readable and writable by its owner only.
fn private_options() -> fs::OpenOptions {
    #[allow(unused_mut)]
    let mut options = fs::OpenOptions::new();
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
}

/// Makes an existing file owner-only (state folders written by older versions were not).
fn make_private(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o077 != 0 => {
                fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(|source| {
                    StoreError::Write {
                        path: path.to_path_buf(),
                        source,
                    }
                })?;
            }
            _ => {}
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Takes the folder's advisory lock (`flock` on unix, `LockFileEx` on Windows); the OS
/// releases it when the file is closed, also when the process dies.
fn lock_folder(dir: &Path) -> Result<fs::File, StoreError> {
    let path = dir.join("lock");
    let file = private_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|source| StoreError::Write {
            path: path.clone(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(fs::TryLockError::Error(source)) => Err(StoreError::Write { path, source }),
    }
}

fn open_journal(dir: &Path, truncate: bool) -> Result<fs::File, StoreError> {
    let path = Journal::path(dir);
    let mut options = private_options();
    options.create(true);
    if truncate {
        options.write(true).truncate(true);
    } else {
        options.append(true);
    }
    options
        .open(&path)
        .map_err(|source| StoreError::Write { path, source })
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = private_options()
        .write(true)
        .create_new(true)
        .open(&tmp)
        .map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)?;
    sync_dir(dir)
}

/// Writes a small file owner-only (0600 on unix), replacing what was there.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.sync_all()
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| StoreError::Write {
            path: dir.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::model::{MetaRecord, Record};

    fn meta(v: &str) -> Record {
        Record::Meta(MetaRecord {
            value: serde_json::json!(v),
        })
    }

    fn sync(store: &Store) {
        let j = store.journal().unwrap();
        j.sync_to(j.last_seq()).unwrap();
    }

    #[test]
    fn survives_reopen_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put("meta:a", meta("1")).unwrap();
        store.put("meta:b", meta("2")).unwrap();
        store.put("meta:a", meta("3")).unwrap();
        store.delete("meta:b").unwrap();
        let hash = store.put_data(Bytes::from_static(b"hello")).unwrap();
        sync(&store);
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.keys_with_prefix("meta:"), vec!["meta:a".to_string()]);
        match store.get("meta:a") {
            Some(Record::Meta(m)) => assert_eq!(m.value, serde_json::json!("3")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(&store.get_data(&hash).unwrap()[..], b"hello");
        // Opening compacted the journal into the snapshot.
        assert_eq!(
            fs::metadata(dir.path().join("journal.jsonl"))
                .unwrap()
                .len(),
            0
        );
    }

    #[test]
    fn a_torn_last_line_is_ignored_and_a_torn_middle_is_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put("meta:a", meta("1")).unwrap();
        sync(&store);
        drop(store);
        let journal = dir.path().join("journal.jsonl");
        let mut text = fs::read(&journal).unwrap();
        text.extend_from_slice(br#"{"key":"meta:b","rec"#);
        fs::write(&journal, &text).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.keys_with_prefix(""), vec!["meta:a".to_string()]);
        drop(store);
        fs::write(&journal, b"{broken\n{\"key\":\"meta:c\"}\n").unwrap();
        assert!(matches!(
            Store::open(dir.path()),
            Err(StoreError::Corrupt { line: 1, .. })
        ));
    }

    #[test]
    fn unsynced_writes_are_not_on_disk_and_synced_ones_are() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put("meta:a", meta("1")).unwrap();
        let j = store.journal().unwrap();
        let first = j.last_seq();
        store.put("meta:b", meta("2")).unwrap();
        j.sync_to(first).unwrap();
        // Group commit: syncing to the first write flushed the second too.
        let on_disk = fs::read_to_string(dir.path().join("journal.jsonl")).unwrap();
        assert_eq!(on_disk.lines().count(), 2);
    }
}
