//! Deleting table files that no catalog version still needs, once no reader needs them.
//!
//! A commit that replaces segments (VACUUM), deletion vectors (DELETE, UPDATE) or whole
//! tables (DROP, TRUNCATE) *retires* the old files at the new catalog version `v`: every
//! version from `v` on no longer names them. Statements and transactions *pin* the
//! version they read. Retired files are deleted when no pin older than `v` remains, so a
//! long query keeps reading a consistent snapshot however many commits happen meanwhile.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use basalt_storage::layout::{StorageRoot, table_prefix};
use futures::StreamExt;
use object_store::ObjectStoreExt;
use object_store::path::Path;
use tracing::{debug, warn};

use crate::catalog::{Catalog, CatalogState};

/// What a commit made unreachable.
#[derive(Debug, Clone)]
pub enum Garbage {
    /// Individual files (replaced segments, superseded deletion vectors).
    Files(Vec<String>),
    /// Every file of a dropped table.
    Table(u64),
}

#[derive(Debug, Default)]
struct GcState {
    /// Pinned catalog version → number of readers holding it.
    pins: BTreeMap<u64, usize>,
    /// Garbage and the version that retired it.
    pending: Vec<(u64, Garbage)>,
}

#[derive(Debug)]
pub struct FileGc {
    state: Mutex<GcState>,
    storage: StorageRoot,
}

/// A reader's hold on one catalog version; released on drop.
#[derive(Debug)]
pub struct Pin {
    gc: Arc<FileGc>,
    version: u64,
}

impl Drop for Pin {
    fn drop(&mut self) {
        let mut st = self.gc.state.lock().expect("gc lock");
        if let Some(n) = st.pins.get_mut(&self.version) {
            *n -= 1;
            if *n == 0 {
                st.pins.remove(&self.version);
            }
        }
        drop(st);
        self.gc.collect();
    }
}

impl FileGc {
    pub fn new(storage: StorageRoot) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::default(),
            storage,
        })
    }

    /// The newest catalog snapshot, pinned. Taken under the same lock `collect` uses, so
    /// a commit's garbage can never be judged unneeded between reading and pinning.
    pub fn pinned_snapshot(self: &Arc<Self>, catalog: &Catalog) -> (Arc<CatalogState>, Pin) {
        let mut st = self.state.lock().expect("gc lock");
        let snapshot = catalog.snapshot();
        *st.pins.entry(snapshot.version).or_default() += 1;
        let pin = Pin {
            gc: self.clone(),
            version: snapshot.version,
        };
        (snapshot, pin)
    }

    /// Record garbage made unreachable by the commit that produced catalog `version`.
    pub fn retire(&self, version: u64, garbage: Garbage) {
        self.state
            .lock()
            .expect("gc lock")
            .pending
            .push((version, garbage));
        self.collect();
    }

    /// Files written for a change that will never commit: no version names them, so they
    /// go once no reader pinned before now could be listing the storage root.
    pub fn discard(&self, catalog: &Catalog, files: Vec<String>) {
        if !files.is_empty() {
            self.retire(catalog.snapshot().version, Garbage::Files(files));
        }
    }

    /// Delete every pending item that no pinned reader can still see.
    fn collect(&self) {
        let ready: Vec<Garbage> = {
            let mut st = self.state.lock().expect("gc lock");
            let oldest_pin = st.pins.keys().next().copied();
            let (ready, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut st.pending)
                .into_iter()
                .partition(|(retired_at, _)| oldest_pin.is_none_or(|p| p >= *retired_at));
            st.pending = keep;
            ready.into_iter().map(|(_, g)| g).collect()
        };
        if ready.is_empty() {
            return;
        }
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.storage.store.clone();
        rt.spawn(async move {
            for g in ready {
                match g {
                    Garbage::Files(paths) => {
                        for p in paths {
                            debug!(file = %p, "deleting retired file");
                            if let Err(e) = store.delete(&Path::from(p.as_str())).await {
                                warn!("could not delete retired file {p}: {e}");
                            }
                        }
                    }
                    Garbage::Table(id) => {
                        let prefix = table_prefix(id);
                        let mut listing = store.list(Some(&prefix));
                        while let Some(Ok(meta)) = listing.next().await {
                            let _ = store.delete(&meta.location).await;
                        }
                    }
                }
            }
        });
    }

    /// Number of garbage items still waiting for readers (for tests and logs).
    pub fn pending(&self) -> usize {
        self.state.lock().expect("gc lock").pending.len()
    }
}

/// What `after` no longer references of what `before` did.
pub fn garbage_between(before: &CatalogState, after: &CatalogState) -> Vec<Garbage> {
    let mut out = Vec::new();
    for (id, old) in &before.tables {
        match after.tables.get(id) {
            None => out.push(Garbage::Table(*id)),
            Some(new) if !Arc::ptr_eq(old, new) => {
                let live: std::collections::HashSet<&str> = new.files().collect();
                let gone: Vec<String> = old
                    .files()
                    .filter(|f| !live.contains(f))
                    .map(str::to_string)
                    .collect();
                if !gone.is_empty() {
                    out.push(Garbage::Files(gone));
                }
            }
            Some(_) => {}
        }
    }
    out
}

/// Delete what a crash left behind: files under `tables/` that no table of `state` names
/// and that were last modified before `started_us` (microseconds since the epoch), so a
/// statement of the running leader that is still writing its files is never touched.
/// Returns how many files were deleted.
pub async fn sweep_orphans(
    storage: StorageRoot,
    state: Arc<CatalogState>,
    started_us: i64,
) -> usize {
    let live: std::collections::HashSet<&str> =
        state.tables.values().flat_map(|t| t.files()).collect();
    let store = storage.store.clone();
    let mut listing = store.list(Some(&Path::from("tables")));
    let mut orphans = vec![];
    while let Some(item) = listing.next().await {
        match item {
            Ok(meta)
                if !live.contains(meta.location.as_ref())
                    && meta.last_modified.timestamp_micros() < started_us =>
            {
                orphans.push(meta.location)
            }
            Ok(_) => {}
            Err(e) => {
                warn!("orphan sweep could not list the storage root: {e}");
                return 0;
            }
        }
    }
    let mut deleted = 0;
    for path in orphans {
        match store.delete(&path).await {
            Ok(()) => deleted += 1,
            Err(e) => warn!("could not delete orphan file {path}: {e}"),
        }
    }
    deleted
}
