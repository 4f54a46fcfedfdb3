//! The blocking facade over `Store` for Ruby, Python and C: the same
//! operations, each run to completion on the engine runtime. Call it with
//! the interpreter lock released.

use crate::error::Result;
use crate::metrics::Stats;
use crate::runtime::block_on;
use crate::store::{Baseline, LegacyKey, LegacyValue, Loaded, SaveOutcome, Store};
use crate::value::SessionData;

#[derive(Clone)]
pub struct BlockingStore {
    store: Store,
}

impl BlockingStore {
    pub fn new(store: Store) -> Self {
        BlockingStore { store }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn with_idle_ttl(&self, idle_ttl: Option<std::time::Duration>) -> BlockingStore {
        BlockingStore { store: self.store.with_idle_ttl(idle_ttl) }
    }

    pub fn load(&self, id: &str) -> Result<Option<Loaded>> {
        self.store.load_blocking(id)
    }

    /// `load` that `interrupt` can cut short from another thread (see
    /// `Store::load_blocking_interruptible`).
    pub fn load_interruptible(&self, id: &str, interrupt: &crate::runtime::Interrupt) -> Result<Option<Loaded>> {
        self.store.load_blocking_interruptible(id, interrupt)
    }

    pub fn save(&self, id: &str, baseline: &mut Baseline, data: &SessionData) -> Result<SaveOutcome> {
        self.store.save_blocking(id, baseline, data)
    }

    /// `save` that `interrupt` can cut short from another thread (see
    /// `Store::save_blocking_interruptible`).
    pub fn save_interruptible(
        &self,
        id: &str,
        baseline: &mut Baseline,
        data: &SessionData,
        interrupt: &crate::runtime::Interrupt,
    ) -> Result<SaveOutcome> {
        self.store.save_blocking_interruptible(id, baseline, data, interrupt)
    }

    pub fn create(&self, data: &SessionData) -> Result<(String, Baseline)> {
        block_on(self.store.create(data))
    }

    pub fn insert(&self, id: &str, data: &SessionData) -> Result<Option<Baseline>> {
        block_on(self.store.insert(id, data))
    }

    pub fn destroy(&self, id: &str) -> Result<bool> {
        block_on(self.store.destroy(id))
    }

    pub fn touch(&self, id: &str) -> Result<bool> {
        block_on(self.store.touch(id))
    }

    pub fn exists(&self, id: &str) -> Result<bool> {
        block_on(self.store.exists(id))
    }

    pub fn renew(&self, id: &str) -> Result<Option<String>> {
        block_on(self.store.renew(id))
    }

    pub fn legacy_read(&self, id: &str, sources: &[LegacyKey]) -> Result<Option<LegacyValue>> {
        block_on(self.store.legacy_read(id, sources))
    }

    pub fn legacy_migrate(&self, id: &str, sources: &[LegacyKey], data: &SessionData) -> Result<Option<Baseline>> {
        block_on(self.store.legacy_migrate(id, sources, data))
    }

    pub fn legacy_delete(&self, id: &str, sources: &[LegacyKey]) -> Result<()> {
        block_on(self.store.legacy_delete(id, sources))
    }

    pub fn handles(&self) -> Result<Vec<String>> {
        block_on(self.store.handles())
    }

    pub fn count(&self) -> Result<usize> {
        block_on(self.store.count())
    }

    pub fn clear(&self) -> Result<usize> {
        block_on(self.store.clear())
    }

    pub fn peek_handle(&self, handle: &str) -> Result<Option<Loaded>> {
        block_on(self.store.peek_handle(handle))
    }

    pub fn destroy_handle(&self, handle: &str) -> Result<bool> {
        block_on(self.store.destroy_handle(handle))
    }

    pub fn stats(&self) -> Stats {
        self.store.stats()
    }
}
