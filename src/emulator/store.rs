//! Persistence: an ordered map of typed records, mirrored one file per record.
//!
//! Why one file per record: a benchmark creates about a thousand resources, and rewriting
//! one big state file per write would make every PUT O(n). A per-record file keeps each
//! write O(1) and needs no compaction pass, at the price of one directory entry per
//! resource (cheap at emulator scale). Every write is atomic and durable before the
//! caller acknowledges the request: write a temp file, fsync it, rename it over the
//! record's file, fsync the directory. `kill -9` at any moment leaves either the old or
//! the new record, never a torn one, and never loses an acknowledged write.
//!
//! Blob contents are content-addressed (`data/<sha256>`), written before the record that
//! points at them, so a blob record is the commit point of an upload.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::model::Record;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
    #[error("state file `{path}` is not valid: {message}")]
    Corrupt { path: PathBuf, message: String },
    #[error("failed to write state file `{path}`")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

#[derive(Serialize, Deserialize)]
struct RecordFile {
    key: String,
    record: Record,
}

pub(crate) struct Store {
    records: BTreeMap<String, Record>,
    /// Blob contents by sha256; only used in memory mode (on disk they live in `data/`).
    data: HashMap<String, Bytes>,
    dir: Option<PathBuf>,
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Store {
    pub(crate) fn in_memory() -> Store {
        Store {
            records: BTreeMap::new(),
            data: HashMap::new(),
            dir: None,
        }
    }

    /// Opens (or creates) a state directory and loads every record in it.
    pub(crate) fn open(dir: &Path) -> Result<Store, StoreError> {
        let records_dir = dir.join("records");
        let data_dir = dir.join("data");
        for d in [dir, &records_dir, &data_dir] {
            fs::create_dir_all(d).map_err(|source| StoreError::CreateDir {
                path: d.to_path_buf(),
                source,
            })?;
        }
        let mut records = BTreeMap::new();
        let entries = fs::read_dir(&records_dir).map_err(|source| StoreError::Read {
            path: records_dir.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| StoreError::Read {
                path: records_dir.clone(),
                source,
            })?;
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".tmp-") {
                // A write that was interrupted before its rename: never acknowledged.
                let _ = fs::remove_file(&path);
                continue;
            }
            let text = fs::read(&path).map_err(|source| StoreError::Read {
                path: path.clone(),
                source,
            })?;
            let file: RecordFile =
                serde_json::from_slice(&text).map_err(|e| StoreError::Corrupt {
                    path: path.clone(),
                    message: e.to_string(),
                })?;
            records.insert(file.key, file.record);
        }
        Ok(Store {
            records,
            data: HashMap::new(),
            dir: Some(dir.to_path_buf()),
        })
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

    pub(crate) fn put(&mut self, key: &str, record: Record) -> Result<(), StoreError> {
        if let Some(dir) = &self.dir {
            let file = RecordFile {
                key: key.to_string(),
                record,
            };
            let bytes = serde_json::to_vec(&file).map_err(|e| StoreError::Corrupt {
                path: dir.clone(),
                message: e.to_string(),
            })?;
            let path = dir
                .join("records")
                .join(format!("{}.json", sha256_hex(key.as_bytes())));
            write_atomic(&path, &bytes)?;
            self.records.insert(file.key, file.record);
        } else {
            self.records.insert(key.to_string(), record);
        }
        Ok(())
    }

    pub(crate) fn delete(&mut self, key: &str) -> Result<bool, StoreError> {
        let existed = self.records.remove(key).is_some();
        if existed && let Some(dir) = &self.dir {
            let records_dir = dir.join("records");
            let path = records_dir.join(format!("{}.json", sha256_hex(key.as_bytes())));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(source) => return Err(StoreError::Write { path, source }),
            }
            sync_dir(&records_dir)?;
        }
        Ok(existed)
    }

    /// Stores bytes by content hash and returns the hash.
    pub(crate) fn put_data(&mut self, bytes: Bytes) -> Result<String, StoreError> {
        let hash = sha256_hex(&bytes);
        match &self.dir {
            Some(dir) => {
                let path = dir.join("data").join(&hash);
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
        match &self.dir {
            Some(dir) => {
                let path = dir.join("data").join(hash);
                fs::read(&path)
                    .map(Bytes::from)
                    .map_err(|source| StoreError::Read { path, source })
            }
            None => Ok(self.data.get(hash).cloned().unwrap_or_default()),
        }
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
    let err = |source| StoreError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut file = fs::File::create(&tmp).map_err(err)?;
    file.write_all(bytes).map_err(err)?;
    file.sync_all().map_err(err)?;
    drop(file);
    fs::rename(&tmp, path).map_err(err)?;
    sync_dir(dir)
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

    #[test]
    fn survives_reopen_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put("meta:a", meta("1")).unwrap();
        store.put("meta:b", meta("2")).unwrap();
        store.put("meta:a", meta("3")).unwrap();
        store.delete("meta:b").unwrap();
        let hash = store.put_data(Bytes::from_static(b"hello")).unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.keys_with_prefix("meta:"), vec!["meta:a".to_string()]);
        match store.get("meta:a") {
            Some(Record::Meta(m)) => assert_eq!(m.value, serde_json::json!("3")),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(&store.get_data(&hash).unwrap()[..], b"hello");
    }

    #[test]
    fn interrupted_temp_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        store.put("meta:a", meta("1")).unwrap();
        fs::write(dir.path().join("records").join(".tmp-123"), b"{torn").unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.keys_with_prefix(""), vec!["meta:a".to_string()]);
    }
}
