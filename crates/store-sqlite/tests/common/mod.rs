#![allow(dead_code, clippy::unwrap_used)]

use buzzer_store::{JobFetch, JobInsert};
use buzzer_store_sqlite::{SqliteOptions, SqliteStore};
use buzzer_types::RawValue;

pub fn open(dir: &tempfile::TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("buzzer.db"), SqliteOptions::default()).unwrap()
}

pub fn store() -> (tempfile::TempDir, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&dir);
    (dir, store)
}

pub fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

pub fn job(queue: &str) -> JobInsert {
    buzzer_store_tests::job_insert(queue, raw(r#"{"n": 1}"#))
}

pub fn fetch(queues: &[&str], max_jobs: u32) -> JobFetch {
    JobFetch {
        queues: queues.iter().map(|q| q.to_string()).collect(),
        worker_id: "w1".into(),
        max_jobs,
        lease_ms: 30_000,
    }
}
